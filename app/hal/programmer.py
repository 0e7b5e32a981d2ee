"""Sites and programmers, and the registry that opens a programmer from a URL.

A backend module registers its URL scheme with ``@register_scheme("sim")`` and is
named in ``BACKENDS``, which opening a URL uses to import only that scheme's backend
(pyserial, pyusb and pyftdi load when a URL needs them, not for the simulator).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypeVar, runtime_checkable
from urllib.parse import parse_qs, urlsplit

from app.hal.bus import BootloaderLink, DebugAccess, I2cBus, MicrowireBus, SpiBus
from app.hal.errors import ProgrammerUrlError

Indication = Literal["idle", "busy", "pass", "fail"]


@runtime_checkable
class Site(Protocol):
    """One programming position: its buses, power, socket detect and LEDs.

    Everything the engine and the front ends use is declared here, so a backend says
    what it can do instead of being probed. Properties are read-only for the caller;
    a backend may back them with plain attributes.
    """

    @property
    def index(self) -> int:
        """1-based, as printed on the programmer (a station renumbers its boards')."""
        ...

    @property
    def adapter_id(self) -> str | None:
        """The socket adapter fitted; None when unknown (no adapter check)."""
        ...

    @property
    def spi(self) -> SpiBus | None: ...

    @property
    def i2c(self) -> I2cBus | None: ...

    @property
    def uart(self) -> BootloaderLink | None:
        """A serial link to a target's ROM bootloader (with its reset/BOOT0 lines)."""
        ...

    @property
    def microwire(self) -> MicrowireBus | None:
        """The 93xx three-wire bus (on the SPI pins, CS active high), where the
        backend can clock single bits."""
        ...

    @property
    def swd(self) -> DebugAccess | None:
        """A microcontroller's debug port (SWD probe), where the site has one."""
        ...

    @property
    def in_system(self) -> bool:
        """The part sits on an assembled board (clip, header): no socket to check."""
        ...

    @property
    def board_powered(self) -> bool:
        """In-system, the board powers the part: power() only enables the drivers."""
        ...

    @property
    def link_lost(self) -> bool:
        """The USB/serial link failed; reconnect() before the next cycle."""
        ...

    @property
    def insertions(self) -> int:
        """Parts the backend saw inserted into the socket since it was opened. 0 means
        "not counted here": backends without insertion sensing (a detect pin reports
        presence, not insertions) leave it at 0, and socket wear is counted per
        production cycle by the engine (app.engine.socket_wear)."""
        ...

    def power(self, on: bool, voltage_mv: int | None = None) -> None: ...

    def part_present(self) -> bool: ...

    def indicate(self, state: Indication) -> None: ...

    def reconnect(self) -> bool:
        """Reopen a lost link (same board, same site numbers); False while it is gone.
        A backend that cannot reopen its link returns ``not link_lost``."""
        ...


@dataclass(frozen=True)
class Capabilities:
    buses: frozenset[str]  # "spi", "i2c", "uart", "microwire", "swd"
    max_spi_clock_hz: int = 0
    power_control: bool = False
    socket_detect: bool = False
    #: the level the signal lines may be driven at when the user has not said (the black
    #: CH341A board: 5 V); the station warns before a run with a part rated below it.
    #: None: known (a vcc= option, whose parts rated below it the site refuses) or safe.
    unstated_drive_mv: int | None = None


@runtime_checkable
class Programmer(Protocol):
    """A programmer opened from a URL: N sites."""

    @property
    def url(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def capabilities(self) -> Capabilities: ...

    @property
    def sites(self) -> Sequence[Site]: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class ParsedUrl:
    scheme: str
    path: str
    options: Mapping[str, str] = field(default_factory=dict)


def check_options(parsed: ParsedUrl, known: Iterable[str]) -> None:
    """Refuse options the backend does not know (a typo must not be ignored)."""
    known = set(known)
    unknown = set(parsed.options) - known
    if unknown:
        raise ProgrammerUrlError(
            f"unknown {parsed.scheme} option(s) {', '.join(sorted(unknown))}"
            f" (known: {', '.join(sorted(known))})"
        )


def choice(parsed: ParsedUrl, key: str, default: str, allowed: tuple[str, ...]) -> str:
    """A keyword option (case-insensitive), ``default`` when absent."""
    value = parsed.options.get(key, default).strip().lower()
    if value not in allowed:
        raise ProgrammerUrlError(
            f"{parsed.scheme} option {key}={parsed.options[key]!r}: expected {' or '.join(allowed)}"
        )
    return value


def int_option(parsed: ParsedUrl, key: str, default: int, lo: int, hi: int, base: int = 10) -> int:
    """An integer option within [lo, hi]; ``base`` 0 also takes 0x.. and 0b.. forms."""
    text = parsed.options.get(key)
    if text is None:
        return default
    try:
        value = int(text, base)
    except ValueError:
        raise ProgrammerUrlError(f"{parsed.scheme} option {key}={text!r} is not a number") from None
    if not lo <= value <= hi:
        raise ProgrammerUrlError(f"{parsed.scheme} option {key}={value} must be within {lo}..{hi}")
    return value


def connection_options(
    parsed: ParsedUrl, *, in_system: bool, board_powered: bool
) -> tuple[bool, bool]:
    """The options every backend takes, with the backend's defaults:
    ``connection=socket|in-system`` and ``power=programmer|board``."""
    connections = ("in-system", "socket") if in_system else ("socket", "in-system")
    powers = ("board", "programmer") if board_powered else ("programmer", "board")
    connection = choice(parsed, "connection", connections[0], connections)
    power = choice(parsed, "power", powers[0], powers)
    return connection == "in-system", power == "board"


Opener = Callable[[ParsedUrl, Mapping[str, object]], Programmer]
_SCHEMES: dict[str, Opener] = {}
#: each URL scheme's backend module (it registers the scheme when imported)
BACKENDS = {
    "sim": "app.hal.sim",
    "ftdi": "app.hal.ftdi",
    "serprog": "app.hal.serprog",
    "uart": "app.hal.uart",
    "ch341a": "app.hal.ch341a",
    "ch347": "app.hal.ch347",
    "cmsis-dap": "app.hal.cmsis_dap_programmer",
    "stlink": "app.hal.stlink_programmer",
}
_O = TypeVar("_O", bound=Opener)


def register_scheme(scheme: str) -> Callable[[_O], _O]:
    def decorate(opener: _O) -> _O:
        _SCHEMES[scheme] = opener
        return opener

    return decorate


def parse_url(url: str) -> ParsedUrl:
    parts = urlsplit(url)
    if not parts.scheme:
        raise ProgrammerUrlError(f"programmer URL {url!r} has no scheme (e.g. sim://?sites=4)")
    options: dict[str, str] = {}
    for key, values in parse_qs(parts.query, keep_blank_values=True).items():
        if len(values) > 1:
            raise ProgrammerUrlError(f"programmer URL {url!r}: option {key!r} given twice")
        options[key] = values[0]
    return ParsedUrl(parts.scheme, parts.netloc + parts.path, options)


def open_programmer(url: str, **context: object) -> Programmer:
    """Open the programmer a URL names. ``context`` passes e.g. the job's device id.

    Several URLs joined by " ; " make one station of several boards: their sites are
    numbered 1..N in URL order (each board bound by its own URL, e.g. a USB serial
    number, so the numbering survives re-plugging).
    """
    parts = [part.strip() for part in url.split(";") if part.strip()]
    if len(parts) > 1:
        from app.hal.station_programmer import StationProgrammer

        opened: list[Programmer] = []
        try:
            for part in parts:
                opened.append(_open_one(part, context))
        except BaseException:
            for programmer in opened:
                programmer.close()
            raise
        return StationProgrammer(url, opened)
    return _open_one(url, context)


def _open_one(url: str, context: Mapping[str, object]) -> Programmer:
    parsed = parse_url(url)
    if parsed.scheme in BACKENDS and parsed.scheme not in _SCHEMES:
        importlib.import_module(BACKENDS[parsed.scheme])
    opener = _SCHEMES.get(parsed.scheme)
    if opener is None:
        known = ", ".join(sorted(BACKENDS))
        raise ProgrammerUrlError(
            f"unknown programmer scheme {parsed.scheme!r} in {url!r} (known: {known})"
        )
    return opener(parsed, context)
