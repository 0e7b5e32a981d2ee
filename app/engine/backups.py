"""Automatic backups: what an in-system part held before Socketeer first wrote to it.

A service technician reprograms parts on boards through a clip; a wrong image or a bad
contact must never cost the board's original contents. So before the first erase or
write of an in-system part (unless the engineer's job turns it off), the site reads the
whole part twice, and only when both reads agree is the data kept here, named by part,
unique ID (where the part has one), time and SHA-256:

    <data dir>/backups/20261203T164512.345Z_s1_winbond.w25q128jv_<uid|no-uid>_<sha12>.bin
    ... and a .json record beside it (device, part, size, SHA-256, unique ID, time, site)

Both files are written atomically, the data first: a record always has its data. A
backup is restored with ``socketeer backups restore NAME`` (app.commands.backups).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.core.errors import InputError
from app.core.fileio import write_atomic
from app.devicedb.models import Device
from app.engine.production_log import data_dir

FORMAT = "socketeer-backup/1"
FOLDER = "backups"


def backups_dir() -> Path:
    return data_dir() / FOLDER


@dataclass(frozen=True)
class Backup:
    """One backup: its data file and what its record says."""

    path: Path  # the .bin file
    device_id: str
    vendor: str
    part: str
    size_bytes: int
    sha256: str
    unique_id: str | None
    created: str  # ISO 8601, UTC
    site: int

    @property
    def name(self) -> str:
        return self.path.stem

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "name": self.name,
            "file": str(self.path),
            "device_id": self.device_id,
            "vendor": self.vendor,
            "part": self.part,
            "size_bytes": self.size_bytes,
            "sha256": self.sha256,
            "unique_id": self.unique_id,
            "created": self.created,
            "site": self.site,
        }

    def data(self) -> bytes:
        """The backed-up bytes; InputError if the file is gone or no longer matches."""
        try:
            data = self.path.read_bytes()
        except OSError as err:
            raise InputError(f"backup {self.name}: cannot read {self.path}: {err}") from None
        if hashlib.sha256(data).hexdigest() != self.sha256 or len(data) != self.size_bytes:
            raise InputError(
                f"backup {self.name}: {self.path} does not match its record (SHA-256 or size"
                " changed): it was altered or damaged"
            )
        return data


def save_backup(
    device: Device,
    data: bytes,
    *,
    unique_id: str | None,
    site: int,
    folder: Path | None = None,
    now: datetime | None = None,
) -> Backup:
    """Keep ``data`` (the whole part, read twice and agreeing) as a backup."""
    when = (now or datetime.now(UTC)).astimezone(UTC)
    digest = hashlib.sha256(data).hexdigest()
    stamp = when.strftime("%Y%m%dT%H%M%S") + f".{when.microsecond // 1000:03d}Z"
    name = f"{stamp}_s{site}_{device.id}_{(unique_id or 'no-uid').lower()}_{digest[:12]}"
    target = folder or backups_dir()
    target.mkdir(parents=True, exist_ok=True)
    backup = Backup(
        path=target / f"{name}.bin",
        device_id=device.id,
        vendor=device.vendor,
        part=device.part,
        size_bytes=len(data),
        sha256=digest,
        unique_id=unique_id,
        created=when.isoformat(timespec="microseconds"),
        site=site,
    )
    write_atomic(backup.path, data)
    record = json.dumps(backup.to_json(), indent=2) + "\n"
    write_atomic(backup.path.with_suffix(".json"), record.encode("utf-8"))
    return backup


def _from_record(path: Path) -> Backup:
    doc = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f"not a {FORMAT} record")
    return Backup(
        path=path.with_suffix(".bin"),
        device_id=str(doc["device_id"]),
        vendor=str(doc["vendor"]),
        part=str(doc["part"]),
        size_bytes=int(doc["size_bytes"]),
        sha256=str(doc["sha256"]),
        unique_id=doc.get("unique_id"),
        created=str(doc["created"]),
        site=int(doc["site"]),
    )


def list_backups(folder: Path | None = None) -> tuple[list[Backup], list[str]]:
    """The backups, newest first, and one problem line per record that cannot be read."""
    source = folder or backups_dir()
    found: list[Backup] = []
    problems: list[str] = []
    for record in sorted(source.glob("*.json")) if source.is_dir() else []:
        try:
            backup = _from_record(record)
        except (OSError, ValueError, KeyError, TypeError) as err:
            problems.append(f"{record}: unreadable backup record: {err}")
            continue
        if not backup.path.is_file():
            problems.append(f"{record}: its data file {backup.path.name} is missing")
            continue
        found.append(backup)
    found.sort(key=lambda b: (b.created, b.name), reverse=True)
    return found, problems


def find_backup(name: str, folder: Path | None = None) -> Backup:
    """The backup called ``name`` (or the one whose name starts with it)."""
    backups, _ = list_backups(folder)
    exact = [b for b in backups if b.name == name or b.path.name == name]
    matches = exact or [b for b in backups if b.name.startswith(name)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise InputError(f"no backup named {name!r} (socketeer backups list shows them)")
    raise InputError(
        f"{name!r} names {len(matches)} backups: {', '.join(b.name for b in matches[:5])}"
    )
