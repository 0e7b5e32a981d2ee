"""The job model: what to program, and an engineer's lock, as frozen dataclasses.

``to_dict`` gives the JSON-ready form a job file holds; ``from_dict`` builds the object
back from data that :mod:`app.core.job_validation` has already checked (it trusts its
input: malformed data raises KeyError or TypeError, never a readable message).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from app.core.checksums import ChecksumSpec

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
#: Operations a job may leave out (older jobs do): their defaults. The job's content (and
#: so its seal) holds one only when it differs from the default.
OPTIONAL_OPERATIONS: Mapping[str, bool] = {"backup": True}
ERASE_MODES = ("auto", "full", "none")

#: Top-level keys that describe the file, not the job (not part of the sealed content).
ENVELOPE = ("format", "lock", "image_data")


def utc_now_iso() -> str:
    """Now, as the job files write times: ``2026-11-22T08:00:00Z``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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


def job_content(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A job document without its envelope (format marker, lock, embedded image)."""
    return {key: value for key, value in doc.items() if key not in ENVELOPE}


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

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> ImageRef:
        base = raw.get("base")
        if raw["format"] == "bin" and base is None:
            base = 0
        return cls(raw["path"], raw["sha256"], raw["format"], base)


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

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> ExpectedChecksum:
        span = raw.get("range")
        return cls(
            raw["algo"],
            raw["value"],
            raw.get("fill"),
            None if span is None else (span[0], span[1]),
            raw.get("exclude_serial", False),
        )


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

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> FirstArticle:
        return cls(
            raw["checksum_algo"],
            raw["checksum"],
            raw.get("expected"),
            raw.get("chip_id"),
            raw.get("unique_id"),
            raw.get("site"),
            raw["at"],
        )


@dataclass(frozen=True)
class Lock:
    """An engineer's approval; app.core.job_seal says what the seal covers."""

    approved_by: str
    approved_at: str
    seal: str
    field_digests: dict[str, str]
    image_sha256: str
    first_article: FirstArticle

    def approval_record(self) -> dict[str, Any]:
        """The part of the lock the seal covers (all of it but the seal and the digests)."""
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

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Lock:
        return cls(
            raw["approved_by"],
            raw["approved_at"],
            raw["seal"],
            dict(raw["field_digests"]),
            raw["image_sha256"],
            FirstArticle.from_dict(raw["first_article"]),
        )

    @property
    def locked_by(self) -> str:
        """``locked by alice at 2026-11-22T08:00:00Z``, as refusals say it."""
        return f"locked by {self.approved_by} at {self.approved_at}"


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
        unknown = set(self.operations) - set(OPERATIONS) - set(OPTIONAL_OPERATIONS)
        if unknown:
            raise ValueError(f"unknown operation(s) {sorted(unknown)} (known: {OPERATIONS})")
        merged = {**DEFAULT_OPERATIONS, **OPTIONAL_OPERATIONS, **self.operations}
        object.__setattr__(self, "operations", merged)
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
            "operations": {key: self.operations[key] for key in OPERATIONS}
            | {k: v for k, v in self.operations.items() if OPTIONAL_OPERATIONS.get(k, v) != v},
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

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Job:
        """The job of a checked document (its envelope, the lock included, is read too)."""
        checksum = doc.get("checksum")
        lock = doc.get("lock")
        return cls(
            name=doc["name"],
            device_id=doc["device_id"],
            image=ImageRef.from_dict(doc["image"]),
            operations=dict(doc["operations"]),
            erase_mode=doc["erase_mode"],
            programmer=doc["programmer"],
            serialization=doc.get("serialization"),
            checksum=None if checksum is None else ExpectedChecksum.from_dict(checksum),
            count_limit=doc.get("count_limit"),
            notes=doc.get("notes", ""),
            created_by=doc.get("created_by", ""),
            created_at=doc.get("created_at", ""),
            lock=None if lock is None else Lock.from_dict(lock),
        )
