"""Serial numbers for a production run: where they come from and how they are encoded.

A job's ``SerialConfig`` says which kind of source hands out numbers and where the bytes go
in each device's image. ``SerialSource.value(index)`` maps a 0-based sequence index to
one ``SerialValue``; the ledger (``app.engine.ledger``) decides which index a device gets
and records what happened to it, so that no number is ever handed out twice.

Kinds:

- ``incremental``: ``start + index * step``, encoded into ``width`` bytes (binary, BCD) or
  characters (ASCII), after an optional ASCII ``prefix``; ``limit`` is the last allowed value.
- ``list``: the index-th non-blank line of a text file, read once when the source is built
  (so the index -> serial mapping stays fixed for the whole run). A line starting with
  ``hex:`` gives raw bytes; any other line is its ASCII text. Duplicate serials are refused.
- ``command``: an external program prints the bytes as one line of hex digits.

List and command serials occupy a fixed ``length`` in the image (the range a checksum
must exclude); a shorter serial is written as is and leaves the rest of the range alone.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from app.core.errors import InputError
from app.core.image import MemoryImage

KINDS = ("incremental", "list", "command")
POLICIES = ("reuse", "void")
ENCODINGS = ("ascii-dec", "ascii-hex", "bcd", "bin-le", "bin-be")
#: the values one byte/character of each encoding holds
_RADIX = {"ascii-dec": 10, "ascii-hex": 16, "bcd": 100, "bin-le": 256, "bin-be": 256}
COMMAND_TIMEOUT_S = 10.0
MAX_WIDTH = 256  # bytes/characters; far beyond any real serial area, keeps typos cheap
_SHOWN_OUTPUT = 200  # characters of a failing command's output quoted in an error


class SerialConfigError(InputError):
    """A serialization setting is invalid; ``field`` names it."""

    def __init__(self, field_name: str, problem: str) -> None:
        self.field = field_name
        super().__init__(f"serialization.{field_name}: {problem}")


class SerialsExhausted(InputError):
    """The list has no more lines, or the next number would pass ``limit``."""


# -- encodings ------------------------------------------------------------------------


def max_encodable(encoding: str, width: int) -> int:
    """The largest number ``encoding`` can hold in ``width`` bytes/characters."""
    radix = _RADIX.get(encoding)
    if radix is None:
        raise InputError(f"unknown serial encoding {encoding!r} (one of {', '.join(ENCODINGS)})")
    values: int = radix**width  # typeshed types int ** int as Any (a negative power is a float)
    return values - 1


def _unit(encoding: str) -> str:
    return "character(s)" if encoding.startswith("ascii") else "byte(s)"


def encode_number(value: int, encoding: str, width: int) -> bytes:
    """``value`` as exactly ``width`` bytes; InputError naming value and width if it won't fit.

    ascii-dec: zero-padded decimal digits; ascii-hex: zero-padded upper-case hex digits;
    bcd: packed BCD, most significant digit first; bin-le / bin-be: unsigned binary.
    """
    top = max_encodable(encoding, width)
    if value < 0 or value > top:
        raise InputError(
            f"serial {value} does not fit {width} {_unit(encoding)} as {encoding} (0..{top})"
        )
    if encoding == "ascii-dec":
        return str(value).zfill(width).encode("ascii")
    if encoding == "ascii-hex":
        return f"{value:0{width}X}".encode("ascii")
    if encoding == "bcd":
        # Decimal digits are valid hex nibbles: "1234" -> b"\x12\x34".
        return bytes.fromhex(str(value).zfill(2 * width))
    return value.to_bytes(width, "little" if encoding == "bin-le" else "big")


def decode_number(data: bytes, encoding: str) -> int:
    """Inverse of ``encode_number`` (width is ``len(data)``); InputError on invalid bytes."""
    max_encodable(encoding, 1)  # validates the encoding name
    if encoding in ("bin-le", "bin-be"):
        return int.from_bytes(data, "little" if encoding == "bin-le" else "big")
    text = data.hex() if encoding == "bcd" else data.decode("ascii", errors="replace")
    pattern = r"[0-9A-F]+" if encoding == "ascii-hex" else r"[0-9]+"
    if not re.fullmatch(pattern, text):
        raise InputError(f"{data.hex(' ').upper()} is not a valid {encoding} serial")
    return int(text, 16 if encoding == "ascii-hex" else 10)


def _number_text(value: int, encoding: str, width: int) -> str:
    """How an incremental serial reads in the ledger and the log (without the prefix)."""
    if encoding == "ascii-hex":
        return f"{value:0{width}X}"
    if encoding == "ascii-dec":
        return str(value).zfill(width)
    if encoding == "bcd":
        return str(value).zfill(2 * width)
    return str(value)


# -- configuration --------------------------------------------------------------------

_APPLIES = {
    "incremental": {"start", "step", "width", "encoding", "prefix", "limit"},
    "list": {"list_path", "length"},
    "command": {"command", "length"},
}
_COMMON = {"kind", "address", "policy"}


@dataclass(frozen=True)
class SerialConfig:
    """How a job numbers its devices (see the module docstring for the kinds).

    Fields that do not apply to ``kind`` must keep their defaults, so a config always
    survives ``from_json(config.to_json())`` unchanged.
    """

    kind: str
    address: int
    policy: str = "reuse"
    start: int = 0
    step: int = 1
    width: int = 4
    encoding: str = "ascii-dec"
    prefix: str = ""
    limit: int | None = None
    list_path: str | None = None
    command: tuple[str, ...] | None = None
    length: int | None = None

    def __post_init__(self) -> None:
        _check_choice("kind", self.kind, KINDS)
        _check_int("address", self.address, minimum=0)
        _check_choice("policy", self.policy, POLICIES)
        for f in fields(self):
            if f.name in _COMMON or f.name in _APPLIES[self.kind]:
                continue
            if getattr(self, f.name) != f.default:
                raise SerialConfigError(
                    f.name, f"does not apply to kind {self.kind!r} (leave it out)"
                )
        if self.kind == "incremental":
            self._check_incremental()
        else:
            _check_int("length", self.length, minimum=1, required=f"kind {self.kind!r}")
            _check_int("length", self.length, maximum=MAX_WIDTH)
        if self.kind == "list" and (not isinstance(self.list_path, str) or not self.list_path):
            raise SerialConfigError("list_path", "kind 'list' needs the path of a text file")
        if self.kind == "command":
            argv = self.command
            if (
                not isinstance(argv, tuple)
                or not argv
                or not all(isinstance(a, str) for a in argv)
                or not argv[0]
            ):
                raise SerialConfigError(
                    "command",
                    f"kind 'command' needs a non-empty argv list of strings, got {argv!r}",
                )

    def _check_incremental(self) -> None:
        _check_int("start", self.start, minimum=0)
        _check_int("step", self.step, minimum=1)
        _check_int("width", self.width, minimum=1, maximum=MAX_WIDTH)
        _check_choice("encoding", self.encoding, ENCODINGS)
        if not isinstance(self.prefix, str) or not self.prefix.isascii():
            raise SerialConfigError("prefix", f"must be ASCII text, got {self.prefix!r}")
        top = max_encodable(self.encoding, self.width)
        if self.start > top:
            raise SerialConfigError(
                "start",
                f"{self.start} does not fit {self.width} {_unit(self.encoding)}"
                f" as {self.encoding} (0..{top})",
            )
        if self.limit is not None:
            _check_int("limit", self.limit, minimum=self.start)
            if self.limit > top:
                raise SerialConfigError(
                    "limit",
                    f"{self.limit} does not fit {self.width} {_unit(self.encoding)}"
                    f" as {self.encoding} (0..{top})",
                )

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict holding only the fields that apply to ``kind``."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name not in _COMMON and f.name not in _APPLIES[self.kind]:
                continue
            value = getattr(self, f.name)
            if f.name in ("prefix", "limit") and value == f.default:
                continue
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SerialConfig:
        """Build from a JSON object; integers may also be given as strings like "0x1F00"."""
        if not isinstance(data, dict):
            raise InputError(f"serialization: expected a JSON object, got {type(data).__name__}")
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise SerialConfigError(unknown[0], f"unknown field (known: {', '.join(known)})")
        for name in ("kind", "address"):
            if name not in data:
                raise SerialConfigError(name, "is required")
        _check_choice("kind", data["kind"], KINDS)
        for name in data:
            if name not in _COMMON and name not in _APPLIES[data["kind"]]:
                raise SerialConfigError(name, f"does not apply to kind {data['kind']!r}")
        kwargs: dict[str, Any] = {}
        for name, value in data.items():
            if name in ("address", "start", "step", "width", "limit", "length"):
                value = _json_int(name, value)
            elif name == "command" and isinstance(value, list):
                value = tuple(value)
            kwargs[name] = value
        return cls(**kwargs)


def _json_int(name: str, value: object) -> object:
    if isinstance(value, str):
        try:
            return int(value, 0)
        except ValueError:
            raise SerialConfigError(name, f"expected an integer, got {value!r}") from None
    return value


def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise SerialConfigError(name, f"must be one of {', '.join(choices)}; got {value!r}")


def _check_int(
    name: str,
    value: object,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    required: str | None = None,
) -> None:
    if value is None and required is not None:
        raise SerialConfigError(name, f"is required for {required}")
    if isinstance(value, bool) or not isinstance(value, int):
        raise SerialConfigError(name, f"expected an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise SerialConfigError(name, f"must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise SerialConfigError(name, f"must be <= {maximum}, got {value}")


def serial_range(config: SerialConfig) -> tuple[int, int]:
    """The half-open [address, end) the serial occupies (what a checksum must exclude)."""
    if config.kind == "incremental":
        return config.address, config.address + len(config.prefix) + config.width
    return config.address, config.address + (config.length or 0)


# -- sources --------------------------------------------------------------------------


@dataclass(frozen=True)
class SerialValue:
    """One serial: its sequence index, how it reads, and the bytes patched into the image."""

    index: int
    text: str
    data: bytes = field(repr=False)


def load_serial_list(path: Path, length: int) -> list[tuple[str, bytes]]:
    """The (text, bytes) of each non-blank line of ``path``; errors name file and line."""
    try:
        content = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"serial list {path}: cannot read it: {exc}") from exc
    entries: list[tuple[str, bytes]] = []
    seen: dict[bytes, int] = {}
    for lineno, raw in enumerate(content.splitlines(), start=1):
        text = raw.strip()
        if not text:
            continue
        where = f"{path}:{lineno}"
        if text.lower().startswith("hex:"):
            digits = text[4:].strip()
            try:
                data = bytes.fromhex(digits)
            except ValueError:
                raise InputError(f"{where}: {text!r} is not valid hex bytes") from None
            if not data:
                raise InputError(f"{where}: 'hex:' line holds no bytes")
        elif text.isascii():
            data = text.encode("ascii")
        else:
            raise InputError(f"{where}: serial {text!r} is not ASCII (use 'hex:' for raw bytes)")
        if len(data) > length:
            raise InputError(f"{where}: serial {text!r} is {len(data)} bytes, longer than {length}")
        if data in seen:
            raise InputError(f"{where}: serial {text!r} repeats line {seen[data]}")
        seen[data] = lineno
        entries.append((text, data))
    return entries


class SerialSource:
    """Maps a 0-based sequence index to a serial, as the config says.

    ``value()`` is deterministic for incremental and list sources; a command may not be,
    which is why the ledger stores every issued serial's bytes and re-uses those.
    """

    def __init__(
        self,
        config: SerialConfig,
        *,
        base_dir: Path | None = None,
        command_timeout_s: float = COMMAND_TIMEOUT_S,
    ) -> None:
        self.config = config
        self.command_timeout_s = command_timeout_s
        self._list: list[tuple[str, bytes]] = []
        self.list_path: Path | None = None
        if config.kind == "list":
            path = Path(config.list_path or "")
            if base_dir is not None and not path.is_absolute():
                path = base_dir / path
            self.list_path = path
            self._list = load_serial_list(path, config.length or 0)

    @property
    def size(self) -> int:
        """How many bytes of the image a serial may occupy."""
        start, end = serial_range(self.config)
        return end - start

    def value(self, index: int, *, site: int | None = None) -> SerialValue:
        """The serial with sequence number ``index``; ``site`` is passed to a command."""
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise ValueError(f"serial index must be an integer >= 0, got {index!r}")
        cfg = self.config
        if cfg.kind == "incremental":
            number = cfg.start + index * cfg.step
            if cfg.limit is not None and number > cfg.limit:
                raise SerialsExhausted(
                    f"serial {number} (index {index}) is past the limit {cfg.limit}:"
                    " no serial numbers left"
                )
            data = cfg.prefix.encode("ascii") + encode_number(number, cfg.encoding, cfg.width)
            return SerialValue(
                index, cfg.prefix + _number_text(number, cfg.encoding, cfg.width), data
            )
        if cfg.kind == "list":
            if index >= len(self._list):
                raise SerialsExhausted(
                    f"serial list {self.list_path} holds {len(self._list)} serial(s);"
                    f" index {index} is past its end: no serial numbers left"
                )
            text, data = self._list[index]
            return SerialValue(index, text, data)
        return self._run_command(index, site)

    def _run_command(self, index: int, site: int | None) -> SerialValue:
        argv = list(self.config.command or ())
        shown = shlex.join(argv)
        env = dict(os.environ)
        env["SOCKETEER_SERIAL_INDEX"] = str(index)
        env["SOCKETEER_SITE"] = "" if site is None else str(site)
        posix = os.name == "posix"
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                text=True,
                errors="replace",
                start_new_session=posix,  # so a timeout can kill the command's children too
            )
        except OSError as exc:
            raise InputError(f"serial command {shown}: cannot start it: {exc}") from exc
        try:
            out, err = proc.communicate(timeout=self.command_timeout_s)
        except subprocess.TimeoutExpired:
            _kill(proc, posix)
            try:
                out, err = proc.communicate(timeout=2.0)
            except subprocess.TimeoutExpired:
                out, err = "", ""
            raise InputError(
                f"serial command {shown} (index {index}) did not finish within"
                f" {self.command_timeout_s:g} s; it printed {_clip(out + err)!r}"
            ) from None
        if proc.returncode != 0:
            raise InputError(
                f"serial command {shown} (index {index}) exited with status {proc.returncode};"
                f" it printed {_clip(out + err)!r}"
            )
        lines = [line.strip() for line in out.splitlines() if line.strip()]
        digits = lines[0] if len(lines) == 1 else ""
        if not re.fullmatch(r"(?:[0-9A-Fa-f]{2})+", digits):
            raise InputError(
                f"serial command {shown} (index {index}) printed {_clip(out)!r};"
                " expected one line of hex digits (whole bytes)"
            )
        data = bytes.fromhex(digits)
        if len(data) > self.size:
            raise InputError(
                f"serial command {shown} (index {index}) printed {len(data)} bytes;"
                f" the serial length is {self.size}"
            )
        return SerialValue(index, digits.upper(), data)


def _kill(proc: subprocess.Popen[str], posix: bool) -> None:
    try:
        if posix:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
    except OSError:
        pass  # already gone


def _clip(text: str) -> str:
    text = text.strip()
    return text if len(text) <= _SHOWN_OUTPUT else text[:_SHOWN_OUTPUT] + "..."


# -- images ---------------------------------------------------------------------------


def patch_serial(image: MemoryImage, address: int, data: bytes) -> MemoryImage:
    """A copy of ``image`` with ``data`` written at ``address`` (replacing what was there)."""
    out = image.copy()
    out.add(address, data, source="serial number", last_wins=True)
    return out
