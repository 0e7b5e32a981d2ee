"""Production job: what to program, saved as JSON; locking; one-file packages.

A job file names the device, the image (by path *and* the SHA-256 of the image file's
bytes), the operations, the programmer, the serialization and the expected checksum.

Locking is how an engineer releases a job to operators. ``lock_job`` records who
approved it, the first article's read-back, a SHA-256 digest of every leaf of the job's
content keyed by its JSON path (``field_digests``) and a seal::

    seal = sha256(canonical(content) + b"\\0" + image file bytes
                  + b"\\0" + canonical(approval record))

``content`` is the job without its lock; the approval record is the lock without
``seal`` and ``field_digests`` (approved_by, approved_at, image_sha256, first_article),
so the approval and first-article record cannot be edited without breaking the seal
either. The field digests are not needed for security (the seal covers the content);
they exist so that a refusal can say *which* field was edited.

The seal is tamper-*evidence*, not a signature: it has no secret, so somebody who edits
a job and recomputes every hash with this module gets a job that loads. It stops
accidental edits, edits by hand and swapped image files, which is what a production line
needs from it; signing with an engineer key would be the next step.

An exported package is the same JSON with the image bytes embedded (base64, under
``image_data``) and the marker ``socketeer-job-package/1``; it is checked the same way.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from app.core.checksums import ALGORITHMS, ChecksumSpec
from app.core.errors import InputError, UsageError
from app.core.fileio import user_file, write_atomic
from app.core.formats import FORMATS, detect_format, parse_image_bytes
from app.core.image import MemoryImage

JOB_FORMAT = "socketeer-job/1"
PACKAGE_FORMAT = "socketeer-job-package/1"

#: Switchable operations; identify and program always run.
OPERATIONS = ("erase", "blank_check", "verify", "protect", "unprotect", "skip_matching")
DEFAULT_OPERATIONS: Mapping[str, bool] = {
    "erase": True,
    "blank_check": False,
    "verify": True,
    "protect": False,
    "unprotect": False,
    "skip_matching": False,
}
ERASE_MODES = ("auto", "full", "none")

#: Top-level keys that describe the file, not the job (not part of the sealed content).
_ENVELOPE = ("format", "lock", "image_data")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MAX_LISTED = 10


class JobIntegrityError(InputError):
    """A job no longer matches what was recorded: its image, or (locked) its content or seal.

    ``kind`` is "fields", "image", "seal" or "digests"; ``fields`` names the JSON paths
    that differ (kind "fields" or "digests").
    """

    def __init__(self, message: str, *, kind: str, fields: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.kind = kind
        self.fields = fields


class FirstArticleMismatch(InputError):
    """The first article's checksum is not the expected one: the job cannot be locked."""


# -- model ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageRef:
    """The image a job programs.

    ``path`` is as written in the job file (relative to the job file's folder when it
    could be made so, with forward slashes); ``sha256`` is of the image *file's* bytes;
    ``base`` is the load address of a raw binary (None for the other formats).
    """

    path: str
    sha256: str
    format: str
    base: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": self.sha256, "format": self.format, "base": self.base}


@dataclass(frozen=True)
class ExpectedChecksum:
    """The checksum the programmed data must have (what the first article is checked against).

    ``fill`` None means over the data only; ``range`` None means the image's own span.
    ``exclude_serial`` leaves the serial-number area out (the serialization config supplies
    that range, so it is passed to :meth:`spec`).
    """

    algo: str
    value: str
    fill: int | None = None
    range: tuple[int, int] | None = None
    exclude_serial: bool = False

    def spec(self, exclude: tuple[tuple[int, int], ...] = ()) -> ChecksumSpec:
        start, end = self.range if self.range is not None else (None, None)
        return ChecksumSpec(
            self.algo, self.fill, start, end, exclude if self.exclude_serial else ()
        )

    def matches(self, value: str) -> bool:
        return same_checksum(self.value, value)

    def to_dict(self) -> dict[str, Any]:
        return {
            "algo": self.algo,
            "value": self.value,
            "fill": self.fill,
            "range": None if self.range is None else list(self.range),
            "exclude_serial": self.exclude_serial,
        }


@dataclass(frozen=True)
class FirstArticle:
    """The first device of a job, read back and checked before the job was locked."""

    checksum_algo: str
    checksum: str
    expected: str | None
    chip_id: str | None
    unique_id: str | None
    site: int | None
    at: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "checksum_algo": self.checksum_algo,
            "checksum": self.checksum,
            "expected": self.expected,
            "chip_id": self.chip_id,
            "unique_id": self.unique_id,
            "site": self.site,
            "at": self.at,
        }


@dataclass(frozen=True)
class Lock:
    """An engineer's approval; see the module docstring for what is sealed."""

    approved_by: str
    approved_at: str
    seal: str
    field_digests: dict[str, str]
    image_sha256: str
    first_article: FirstArticle

    def approval_record(self) -> dict[str, Any]:
        """The part of the lock the seal covers."""
        return {
            "approved_by": self.approved_by,
            "approved_at": self.approved_at,
            "image_sha256": self.image_sha256,
            "first_article": self.first_article.to_dict(),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "approved_by": self.approved_by,
            "approved_at": self.approved_at,
            "seal": self.seal,
            "image_sha256": self.image_sha256,
            "first_article": self.first_article.to_dict(),
            "field_digests": dict(self.field_digests),
        }


def utc_now_iso() -> str:
    """Now, as the job files write times: ``2026-11-22T08:00:00Z``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Job:
    """What to program. Treat as immutable: derive changed copies with ``dataclasses.replace``.

    ``operations`` always holds every key of OPERATIONS (missing ones take the defaults).
    The effective erase is :attr:`erase` (``erase_mode`` only applies when
    ``operations["erase"]`` is on). ``serialization`` is the serialization config as a
    plain dict (validated by app.engine.serialization).
    """

    name: str
    device_id: str
    image: ImageRef
    operations: dict[str, bool] = field(default_factory=lambda: dict(DEFAULT_OPERATIONS))
    erase_mode: str = "auto"
    programmer: str = "sim://"
    serialization: dict[str, Any] | None = None
    checksum: ExpectedChecksum | None = None
    count_limit: int | None = None
    notes: str = ""
    created_by: str = ""
    created_at: str = field(default_factory=utc_now_iso)
    lock: Lock | None = None

    def __post_init__(self) -> None:
        unknown = set(self.operations) - set(OPERATIONS)
        if unknown:
            raise ValueError(f"unknown operation(s) {sorted(unknown)} (known: {OPERATIONS})")
        object.__setattr__(self, "operations", {**DEFAULT_OPERATIONS, **self.operations})
        if self.erase_mode not in ERASE_MODES:
            raise ValueError(f"erase_mode {self.erase_mode!r} is not one of {ERASE_MODES}")
        if self.operations["erase"] and self.erase_mode == "none":
            raise ValueError("erase_mode 'none' contradicts operations.erase = true")
        if self.serialization is not None:
            # A private JSON copy: tuples become lists and so on, exactly as a saved and
            # reloaded job has them (the field digests depend on it).
            try:
                plain = json.loads(json.dumps(self.serialization, allow_nan=False))
            except (TypeError, ValueError) as err:
                raise ValueError(f"serialization is not plain JSON data: {err}") from None
            object.__setattr__(self, "serialization", plain)

    @property
    def locked(self) -> bool:
        return self.lock is not None

    @property
    def erase(self) -> str:
        """The erase the cycle does: "auto" (sectors as needed), "full" (chip) or "none"."""
        return self.erase_mode if self.operations["erase"] else "none"

    def content(self) -> dict[str, Any]:
        """The job without its lock, as JSON-ready data: what the seal and digests cover."""
        return {
            "name": self.name,
            "device_id": self.device_id,
            "image": self.image.to_dict(),
            "operations": {key: self.operations[key] for key in OPERATIONS},
            "erase_mode": self.erase_mode,
            "programmer": self.programmer,
            "serialization": self.serialization,
            "checksum": None if self.checksum is None else self.checksum.to_dict(),
            "count_limit": self.count_limit,
            "notes": self.notes,
            "created_by": self.created_by,
            "created_at": self.created_at,
        }

    def to_dict(self) -> dict[str, Any]:
        return {**self.content(), "lock": None if self.lock is None else self.lock.to_dict()}


@dataclass
class LoadedJob:
    """A job checked against its image. ``image_path`` is None for a package."""

    job: Job
    image: MemoryImage
    image_bytes: bytes
    path: Path
    image_path: Path | None = None
    packaged: bool = False


class ReferencedImage(NamedTuple):
    ref: ImageRef
    image: MemoryImage
    data: bytes


# -- hashing -------------------------------------------------------------------------


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8 (not ASCII-escaped); NaN/Infinity refused."""
    text = json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return text.encode("utf-8")


def sha256_hex(data: bytes | bytearray | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


def json_path(parts: tuple[str | int, ...]) -> str:
    """``("operations", "verify")`` -> ``operations.verify``; ``("a", 0)`` -> ``a[0]``."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENT.fullmatch(part):
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part, ensure_ascii=False)}]"
    return out


def iter_leaves(value: Any, prefix: tuple[str | int, ...] = ()) -> Iterator[tuple[tuple, Any]]:
    """(path parts, value) of every leaf; an empty object or array is a leaf itself."""
    if isinstance(value, dict) and value:
        for key, item in value.items():
            yield from iter_leaves(item, (*prefix, key))
    elif isinstance(value, list) and value:
        for index, item in enumerate(value):
            yield from iter_leaves(item, (*prefix, index))
    else:
        yield prefix, value


def field_digests(content: Mapping[str, Any]) -> dict[str, str]:
    """{JSON path: SHA-256 of the canonical JSON of that leaf} over the whole content."""
    return {json_path(parts): sha256_hex(canonical_json(v)) for parts, v in iter_leaves(content)}


def compute_seal(
    content: Mapping[str, Any], image_bytes: bytes, approval_record: Mapping[str, Any]
) -> str:
    digest = hashlib.sha256(canonical_json(content))
    digest.update(b"\0")
    digest.update(image_bytes)
    digest.update(b"\0")
    digest.update(canonical_json(approval_record))
    return digest.hexdigest()


def same_checksum(a: str, b: str) -> bool:
    """Checksums compare as numbers: ``0x00ABCD`` equals ``0xabcd``; SHA-256 hex by value."""

    def number(text: str) -> int | str:
        t = text.strip().lower()
        t = t[2:] if t.startswith("0x") else t
        try:
            return int(t, 16)
        except ValueError:
            return t

    return number(a) == number(b)


# -- validation of parsed JSON (errors name the file and the JSON path) ------------------


class _Checker:
    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, path: str, problem: str) -> InputError:
        return InputError(f"{self.where}: field '{path}' {problem}")

    def obj(self, value: Any, path: str, allowed: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, f"must be an object (found {_show(value)})")
        for key in value:
            if key not in allowed:
                raise InputError(f"{self.where}: unknown field '{_join(path, key)}'")
        return value

    def get(self, obj: Mapping[str, Any], path: str, key: str, *, default: Any = ...) -> Any:
        if key in obj:
            return obj[key]
        if default is ...:
            raise InputError(f"{self.where}: missing field '{_join(path, key)}'")
        return default

    def str_(self, obj: Mapping, path: str, key: str, *, nonempty: bool = False, **kw: Any) -> str:
        value = self.get(obj, path, key, **kw)
        if not isinstance(value, str):
            raise self.fail(_join(path, key), f"must be a string (found {_show(value)})")
        if nonempty and not value.strip():
            raise self.fail(_join(path, key), "must not be empty")
        return value

    def nullable_str(self, obj: Mapping, path: str, key: str) -> str | None:
        value = self.get(obj, path, key, default=None)
        if value is not None and not isinstance(value, str):
            raise self.fail(_join(path, key), f"must be a string or null (found {_show(value)})")
        return value

    def bool_(self, obj: Mapping, path: str, key: str, **kw: Any) -> bool:
        value = self.get(obj, path, key, **kw)
        if not isinstance(value, bool):
            raise self.fail(_join(path, key), f"must be true or false (found {_show(value)})")
        return value

    def int_(
        self, obj: Mapping, path: str, key: str, *, lo: int = 0, hi: int | None = None, **kw: Any
    ) -> int | None:
        value = self.get(obj, path, key, **kw)
        if value is None and "default" in kw:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(_join(path, key), f"must be an integer (found {_show(value)})")
        if value < lo or (hi is not None and value > hi):
            upper = "" if hi is None else f" and <= {hi}"
            raise self.fail(_join(path, key), f"must be >= {lo}{upper} (found {value})")
        return value

    def sha(self, obj: Mapping, path: str, key: str) -> str:
        value = self.str_(obj, path, key)
        if not _HEX64.fullmatch(value):
            raise self.fail(_join(path, key), "must be 64 lower-case hex digits (a SHA-256)")
        return value

    def time(self, obj: Mapping, path: str, key: str, **kw: Any) -> str:
        value = self.str_(obj, path, key, **kw)
        if value:
            try:
                datetime.fromisoformat(value)
            except ValueError:
                raise self.fail(_join(path, key), f"is not an ISO 8601 time ({value!r})") from None
        return value


def _join(path: str, key: str | int) -> str:
    """``_join("checksum", "range")`` -> ``checksum.range``; ``_join("", "name")`` -> ``name``."""
    return path + json_path(("_", key))[1:] if path else json_path((key,))


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False) if _jsonable(value) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


_JOB_KEYS = (
    "name",
    "device_id",
    "image",
    "operations",
    "erase_mode",
    "programmer",
    "serialization",
    "checksum",
    "count_limit",
    "notes",
    "created_by",
    "created_at",
)


def job_from_dict(raw: Mapping[str, Any], where: str = "job") -> Job:
    """Build a Job from parsed JSON (envelope keys ignored); InputError names file and field."""
    c = _Checker(where)
    content = {k: v for k, v in raw.items() if k not in _ENVELOPE}
    c.obj(content, "", _JOB_KEYS)

    img = c.obj(c.get(content, "", "image"), "image", ("path", "sha256", "format", "base"))
    fmt = c.str_(img, "image", "format")
    if fmt not in FORMATS:
        raise c.fail("image.format", f"must be one of {', '.join(FORMATS)} (found {fmt!r})")
    base = c.int_(img, "image", "base", default=None)
    if fmt == "bin" and base is None:
        base = 0
    elif fmt != "bin" and base is not None:
        raise c.fail("image.base", f"applies to binary images only (format is {fmt!r}); use null")
    image = ImageRef(
        c.str_(img, "image", "path", nonempty=True), c.sha(img, "image", "sha256"), fmt, base
    )

    ops_raw = c.obj(c.get(content, "", "operations"), "operations", OPERATIONS)
    operations = {key: c.bool_(ops_raw, "operations", key) for key in OPERATIONS}
    erase_mode = c.str_(content, "", "erase_mode")
    if erase_mode not in ERASE_MODES:
        raise c.fail(
            "erase_mode", f"must be one of {', '.join(ERASE_MODES)} (found {erase_mode!r})"
        )
    if erase_mode == "none" and operations["erase"]:
        raise c.fail("erase_mode", "is 'none' but operations.erase is true")

    serialization = c.get(content, "", "serialization", default=None)
    if serialization is not None and not isinstance(serialization, dict):
        raise c.fail("serialization", f"must be an object or null (found {_show(serialization)})")

    checksum = None
    chk_raw = c.get(content, "", "checksum", default=None)
    if chk_raw is not None:
        chk = c.obj(chk_raw, "checksum", ("algo", "value", "fill", "range", "exclude_serial"))
        algo = c.str_(chk, "checksum", "algo")
        if algo not in ALGORITHMS:
            raise c.fail(
                "checksum.algo", f"must be one of {', '.join(ALGORITHMS)} (found {algo!r})"
            )
        rng = c.get(chk, "checksum", "range", default=None)
        span: tuple[int, int] | None = None
        if rng is not None:
            ok = (
                isinstance(rng, list)
                and len(rng) == 2
                and all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in rng)
                and rng[0] <= rng[1]
            )
            if not ok:
                raise c.fail(
                    "checksum.range",
                    f"must be [start, end] with 0 <= start <= end (found {_show(rng)})",
                )
            span = (rng[0], rng[1])
        checksum = ExpectedChecksum(
            algo,
            c.str_(chk, "checksum", "value", nonempty=True),
            c.int_(chk, "checksum", "fill", hi=0xFF, default=None),
            span,
            c.bool_(chk, "checksum", "exclude_serial", default=False),
        )

    return Job(
        name=c.str_(content, "", "name", nonempty=True),
        device_id=c.str_(content, "", "device_id", nonempty=True),
        image=image,
        operations=operations,
        erase_mode=erase_mode,
        programmer=c.str_(content, "", "programmer", nonempty=True),
        serialization=serialization,
        checksum=checksum,
        count_limit=c.int_(content, "", "count_limit", lo=1, default=None),
        notes=c.str_(content, "", "notes", default=""),
        created_by=c.str_(content, "", "created_by", default=""),
        created_at=c.time(content, "", "created_at", default=""),
    )


def _first_article_from_dict(raw: Any, c: _Checker, path: str) -> FirstArticle:
    fa = c.obj(
        raw, path, ("checksum_algo", "checksum", "expected", "chip_id", "unique_id", "site", "at")
    )
    algo = c.str_(fa, path, "checksum_algo")
    if algo not in ALGORITHMS:
        raise c.fail(_join(path, "checksum_algo"), f"must be one of {', '.join(ALGORITHMS)}")
    return FirstArticle(
        checksum_algo=algo,
        checksum=c.str_(fa, path, "checksum", nonempty=True),
        expected=c.nullable_str(fa, path, "expected"),
        chip_id=c.nullable_str(fa, path, "chip_id"),
        unique_id=c.nullable_str(fa, path, "unique_id"),
        site=c.int_(fa, path, "site", lo=1, default=None),
        at=c.time(fa, path, "at"),
    )


def lock_from_dict(raw: Any, where: str = "job") -> Lock:
    c = _Checker(where)
    lk = c.obj(
        raw,
        "lock",
        ("approved_by", "approved_at", "seal", "field_digests", "image_sha256", "first_article"),
    )
    approved_by = c.str_(lk, "lock", "approved_by", nonempty=True)
    approved_at = c.time(lk, "lock", "approved_at")
    seal = c.sha(lk, "lock", "seal")
    image_sha256 = c.sha(lk, "lock", "image_sha256")
    first_article = _first_article_from_dict(
        c.get(lk, "lock", "first_article"), c, "lock.first_article"
    )
    digests = c.get(lk, "lock", "field_digests")
    if not isinstance(digests, dict) or not all(
        isinstance(v, str) and _HEX64.fullmatch(v) for v in digests.values()
    ):
        raise c.fail("lock.field_digests", "must map JSON paths to SHA-256 hex digests")
    return Lock(approved_by, approved_at, seal, dict(digests), image_sha256, first_article)


# -- images --------------------------------------------------------------------------


def _read_file(path: Path, what: str) -> bytes:
    """The file's bytes; InputError starting with ``what`` (plus the resolved path if new)."""
    with user_file(path, what):
        return path.read_bytes()


def reference_image(
    image_file: str | Path, job_file: str | Path, fmt: str | None = None, base: int = 0
) -> ReferencedImage:
    """Read an image for a new job: its ref (path relative to ``job_file``'s folder when
    possible), its parsed image and the file's bytes."""
    image_file = Path(image_file)
    data = _read_file(image_file, str(image_file))
    fmt = fmt or detect_format(image_file, data[:4096])
    image = parse_image_bytes(data, fmt, base, str(image_file))
    job_dir = Path(job_file).absolute().parent
    try:
        written = Path(os.path.relpath(image_file.absolute(), job_dir)).as_posix()
    except ValueError:  # another drive on Windows: no relative path exists
        written = str(image_file.absolute())
    ref = ImageRef(written, sha256_hex(data), fmt, base if fmt == "bin" else None)
    return ReferencedImage(ref, image, data)


def resolve_image_path(job_path: str | Path, image_path: str) -> Path:
    path = Path(image_path)
    return path if path.is_absolute() else Path(job_path).parent / path


# -- files ---------------------------------------------------------------------------


def _dump(doc: Mapping[str, Any]) -> bytes:
    return (json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")


def save_job(job: Job, path: str | Path) -> None:
    """Write the job as readable JSON (2-space indent), atomically.

    A locked job whose content was changed after locking is refused (ValueError): it
    would be written only to be refused when loaded. Unlock it first.
    """
    if job.lock is not None:
        diffs = _diff_digests(job.lock.field_digests, field_digests(job.content()))
        if diffs:
            raise ValueError(
                f"{path}: {_fields_phrase(diffs)} since the job was {_locked_by(job.lock)};"
                " unlock it before saving a changed job"
            )
    write_atomic(Path(path), _dump({"format": JOB_FORMAT, **job.to_dict()}))


def export_job(loaded: LoadedJob, out_path: str | Path) -> None:
    """Write job + image as one portable file (the image embedded, base64)."""
    actual = sha256_hex(loaded.image_bytes)
    if actual != loaded.job.image.sha256:
        raise InputError(
            f"{loaded.path}: the image bytes do not match the job"
            f" (SHA-256 {actual} != {loaded.job.image.sha256})"
        )
    doc = {
        "format": PACKAGE_FORMAT,
        **loaded.job.to_dict(),
        "image_data": base64.b64encode(loaded.image_bytes).decode("ascii"),
    }
    write_atomic(Path(out_path), _dump(doc))


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # A duplicated key would let a reviewer read one value while the loader uses another.
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _read_json(path: Path) -> dict[str, Any]:
    raw = _read_file(path, str(path))
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise InputError(f"{path}: not UTF-8 text (byte {err.start})") from None
    try:
        doc = json.loads(text, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as err:
        raise InputError(
            f"{path}:{err.lineno}: invalid JSON ({err.msg}, column {err.colno})"
        ) from None
    except ValueError as err:  # duplicate key
        raise InputError(f"{path}: invalid job file: {err}") from None
    if not isinstance(doc, dict):
        raise InputError(f"{path}: a job file holds one JSON object (found {type(doc).__name__})")
    return doc


def load_job(path: str | Path, *, check_lock: bool = True) -> LoadedJob:
    """Read a job file or package and check it against its image.

    Always: the image's SHA-256 must be the recorded one. For a locked job, every field
    digest and the seal are checked too (unless ``check_lock`` is False, which only an
    engineer unlocking a job should use), before the content is even validated, so an
    edit is reported as an edit. Refusals are JobIntegrityError naming what differs;
    malformed files are InputError naming the file and the JSON path.
    """
    path = Path(path)
    where = str(path)
    doc = _read_json(path)
    marker = doc.get("format")
    if marker not in (JOB_FORMAT, PACKAGE_FORMAT):
        found = "no 'format' marker" if marker is None else f"format {_show(marker)}"
        raise InputError(
            f"{where}: not a Socketeer job ({found}; expected {JOB_FORMAT!r} or {PACKAGE_FORMAT!r})"
        )
    packaged = marker == PACKAGE_FORMAT
    if not packaged and "image_data" in doc:
        raise InputError(f"{where}: unknown field 'image_data' (only packages embed the image)")
    lock_raw = doc.get("lock")
    lock = None if lock_raw is None else lock_from_dict(lock_raw, where)
    content = {k: v for k, v in doc.items() if k not in _ENVELOPE}

    if lock is not None and check_lock:
        image_bytes, image_path = _verify_lock(where, content, doc, lock, path, packaged)
        job = replace(job_from_dict(content, where), lock=lock)
    else:
        job = job_from_dict(content, where)
        if lock is not None:
            job = replace(job, lock=lock)
        image_bytes, image_path, shown = _image_bytes(job.image.path, doc, path, packaged)
        actual = sha256_hex(image_bytes)
        if actual != job.image.sha256:
            raise JobIntegrityError(
                f"{where}: image {shown} does not match the job"
                f" (SHA-256 {actual} != recorded {job.image.sha256})",
                kind="image",
            )
    source = str(image_path) if image_path is not None else f"{where}:image_data"
    image = parse_image_bytes(image_bytes, job.image.format, job.image.base, source)
    return LoadedJob(job, image, image_bytes, path, image_path, packaged)


def _image_bytes(
    image_path: str, doc: Mapping[str, Any], path: Path, packaged: bool
) -> tuple[bytes, Path | None, str]:
    """(bytes, resolved file or None for a package, name to show in messages)."""
    if packaged:
        encoded = doc.get("image_data")
        if not isinstance(encoded, str):
            raise InputError(f"{path}: missing field 'image_data' (the package's image)")
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise InputError(f"{path}: field 'image_data' is not valid base64") from None
        return data, None, f"{image_path} (embedded)"
    resolved = resolve_image_path(path, image_path)
    return _read_file(resolved, f"{path}: image {image_path}"), resolved, image_path


def _locked_by(lock: Lock) -> str:
    return f"locked by {lock.approved_by} at {lock.approved_at}"


def _diff_digests(recorded: Mapping[str, str], current: Mapping[str, str]) -> list[tuple[str, str]]:
    """(JSON path, "changed" | "added" | "removed") for every leaf that differs."""

    def under(child: str, parent: str) -> bool:
        return child.startswith(parent) and child[len(parent) : len(parent) + 1] in (".", "[")

    changed = {p for p in recorded.keys() & current.keys() if recorded[p] != current[p]}
    added = set(current) - set(recorded)
    removed = set(recorded) - set(current)
    # A leaf that became an object (or the reverse) shows up as the leaf plus its
    # children on the other side: name just the leaf, as changed.
    retyped = {p for p in removed if any(under(q, p) for q in added)}
    retyped |= {p for p in added if any(under(q, p) for q in removed)}
    added = {p for p in added - retyped if not any(under(p, r) for r in retyped)}
    removed = {p for p in removed - retyped if not any(under(p, r) for r in retyped)}
    order = list(current) + [p for p in recorded if p not in current]
    out: list[tuple[str, str]] = []
    for verb, paths in (("changed", changed | retyped), ("added", added), ("removed", removed)):
        out.extend((p, verb) for p in order if p in paths)
    return out


def _listed(paths: list[str]) -> str:
    shown = ", ".join(f"'{p}'" for p in paths[:_MAX_LISTED])
    more = f" and {len(paths) - _MAX_LISTED} more" if len(paths) > _MAX_LISTED else ""
    return f"{'field' if len(paths) == 1 else 'fields'} {shown}{more}"


def _fields_phrase(diffs: list[tuple[str, str]]) -> str:
    """``field 'a' changed`` / ``fields 'a', 'b' changed and field 'c' added``."""
    by_verb: dict[str, list[str]] = {}
    for p, verb in diffs:
        by_verb.setdefault(verb, []).append(p)
    return " and ".join(f"{_listed(paths)} {verb}" for verb, paths in by_verb.items())


def _verify_lock(
    where: str,
    content: dict[str, Any],
    doc: Mapping[str, Any],
    lock: Lock,
    path: Path,
    packaged: bool,
) -> tuple[bytes, Path | None]:
    """Check a locked job's raw content, image and seal; return the image bytes read."""
    diffs = _diff_digests(lock.field_digests, field_digests(content))
    raw_image = content.get("image")
    raw_path = raw_image.get("path") if isinstance(raw_image, dict) else None
    raw_sha = raw_image.get("sha256") if isinstance(raw_image, dict) else None
    if not diffs:  # the content is as locked (unless the digests were forged too)
        data, image_path, shown = _image_bytes(str(raw_path), doc, path, packaged)
        if compute_seal(content, data, lock.approval_record()) == lock.seal:
            return data, image_path
        actual = sha256_hex(data)
        if actual != raw_sha:
            raise JobIntegrityError(
                f"{where}: image {shown} changed since the job was {_locked_by(lock)}"
                f" (SHA-256 {actual} != locked {raw_sha})",
                kind="image",
            )
        raise JobIntegrityError(
            f"{where}: the job's seal does not match its content (the lock record, its"
            " field digests or the seal were edited)",
            kind="seal",
        )
    fields = tuple(p for p, _ in diffs)
    # Tell an edited content from edited digests: if the seal still matches the content
    # as it stands, only the digest list was touched.
    extra = ""
    if isinstance(raw_path, str):
        try:
            data, _, shown = _image_bytes(raw_path, doc, path, packaged)
        except InputError:
            pass
        else:
            if compute_seal(content, data, lock.approval_record()) == lock.seal:
                raise JobIntegrityError(
                    f"{where}: the lock's field digests were edited (the digests of"
                    f" {_listed(list(fields))} no longer match the content, which still"
                    " matches the seal)",
                    kind="digests",
                    fields=fields,
                )
            actual = sha256_hex(data)
            if actual != lock.image_sha256:
                extra = (
                    f"; image {shown} changed too (SHA-256 {actual} != locked {lock.image_sha256})"
                )
    raise JobIntegrityError(
        f"{where}: {_fields_phrase(diffs)} since it was {_locked_by(lock)}{extra}",
        kind="fields",
        fields=fields,
    )


# -- locking -------------------------------------------------------------------------


def lock_job(
    job: Job,
    image_bytes: bytes,
    approved_by: str,
    first_article: Mapping[str, Any],
    *,
    now: str | None = None,
) -> Job:
    """A copy of ``job`` locked by ``approved_by``.

    ``first_article``: checksum (required), checksum_algo (default: the job's expected
    algorithm), expected, chip_id, unique_id, site, at (default now). Refused
    (FirstArticleMismatch) when the first article's checksum is not the job's expected one
    (or, for a job without one, not the ``expected`` the first article carries).
    """
    if job.lock is not None:
        raise InputError(f"the job is already {_locked_by(job.lock)}; unlock it first")
    if not approved_by.strip():
        raise UsageError("a lock needs the approving engineer's name")
    actual = sha256_hex(image_bytes)
    if actual != job.image.sha256:
        raise InputError(
            f"image {job.image.path}: these bytes are not the job's image"
            f" (SHA-256 {actual} != {job.image.sha256})"
        )
    now = now or utc_now_iso()
    fa_raw = dict(first_article)
    if job.checksum is not None:
        fa_raw.setdefault("checksum_algo", job.checksum.algo)
    fa_raw.setdefault("at", now)
    fa_raw.setdefault("expected", None if job.checksum is None else job.checksum.value)
    fa = _first_article_from_dict(fa_raw, _Checker("first article"), "first_article")
    if job.checksum is not None:
        if fa.checksum_algo != job.checksum.algo:
            raise FirstArticleMismatch(
                f"first article checksum is {fa.checksum_algo}, the job expects"
                f" {job.checksum.algo}; the job stays unlocked"
            )
        expected = job.checksum.value
    else:
        expected = fa.expected
    if expected is not None:
        if not same_checksum(fa.checksum, expected):
            raise FirstArticleMismatch(
                f"first article {fa.checksum_algo} {fa.checksum} does not match the expected"
                f" {expected}; the job stays unlocked"
            )
        fa = replace(fa, expected=expected)
    content = job.content()
    unsealed = Lock(approved_by, now, "", field_digests(content), actual, fa)
    seal = compute_seal(content, image_bytes, unsealed.approval_record())
    return replace(job, lock=replace(unsealed, seal=seal))


def unlock_job(job: Job) -> Job:
    """A copy without the lock (the caller checks that an engineer asked for it)."""
    return replace(job, lock=None)
