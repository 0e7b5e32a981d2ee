"""A cache of the validated device database, so a command does not parse and validate
hundreds of entries on every start.

The cache is keyed by everything the database is made from: every device file, package
table and schema (path, size and modification time), the code that reads them (this
package's own modules, by the same stamps: every class the pickle holds is defined there,
a test checks it) and the Python version.
Paths enter the key and the database absolute, so one entry serves every working folder
(names are shown relative to the folder only when printed). Any change makes
a new key, so the database is read and validated again; only a database without errors
is cached. `socketeer devices validate` always validates. A cache that cannot be read or
written is ignored: it only saves time.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import sys
import time
from collections.abc import Iterable
from contextlib import suppress
from pathlib import Path

import platformdirs

from app.core.fileio import write_atomic
from app.devicedb.database import DeviceDatabase
from app.devicedb.files import discover, schema_dir

ENV_CACHE_DIR = "SOCKETEER_CACHE_DIR"
#: databases kept (each ~0.7 MiB): the installed one with and without the overlay, and
#: a couple of other installations or checkouts
KEEP = 4
#: bump when the pickled shape changes in a way file stamps cannot see (2: devices
#: pickled one by one, unpickled when asked for)
FORMAT = 2


def cache_dir() -> Path:
    """$SOCKETEER_CACHE_DIR, else the user cache folder (platformdirs)."""
    env = os.environ.get(ENV_CACHE_DIR)
    return Path(env) if env else Path(platformdirs.user_cache_dir("socketeer", appauthor=False))


def cache_key(roots: Iterable[Path]) -> str:
    """The key of the database made from ``roots`` (folders or files), by this code."""
    found = discover(list(roots))
    stamped = [*found.device_files, *found.package_files, *sorted(schema_dir().glob("*.json"))]
    stamped += sorted(Path(__file__).parent.glob("*.py"))
    digest = hashlib.sha256()
    for part in (str(FORMAT), sys.version):
        digest.update(part.encode() + b"\0")
    for missing in found.missing:
        digest.update(b"missing\0" + str(missing.absolute()).encode() + b"\0")
    for path in stamped:
        info = path.stat()
        digest.update(f"{path.absolute()}\0{info.st_size}\0{info.st_mtime_ns}\0".encode())
    return digest.hexdigest()[:32]


def load(key: str) -> DeviceDatabase | None:
    """The cached database of ``key``, or None (absent, unreadable or of another shape)."""
    path = cache_dir() / f"devicedb-{key}.pickle"
    try:
        with path.open("rb") as stream:
            database = pickle.load(stream)
        _mark_used(path)  # kept when store() makes room
    except Exception:  # a damaged or foreign cache is a miss, never an error
        return None
    return database if isinstance(database, DeviceDatabase) else None


def forget(key: str) -> None:
    """Drop the entry of ``key`` (found damaged); failures are ignored."""
    with suppress(OSError):
        (cache_dir() / f"devicedb-{key}.pickle").unlink(missing_ok=True)


def store(key: str, database: DeviceDatabase) -> None:
    """Keep ``database`` under ``key`` with the KEEP - 1 newest other entries (with and
    without the user overlay, another installation); failures are ignored."""
    folder = cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        entries = sorted(_entries(folder), key=lambda p: p.stat().st_mtime_ns)
        for old in entries[: max(0, len(entries) - (KEEP - 1))]:
            old.unlink(missing_ok=True)
        path = folder / f"devicedb-{key}.pickle"
        write_atomic(path, pickle.dumps(database, protocol=5))
        _mark_used(path)
    except Exception:  # the cache only saves time
        return


def _entries(folder: Path) -> list[Path]:
    return list(folder.glob("devicedb-*.pickle"))


def _mark_used(path: Path) -> None:
    """Give ``path`` the newest modification time of its folder, strictly: the clock the
    file system stamps with can be coarser than two loads, and a tie would let store()
    drop the entry used last."""
    newest = max((p.stat().st_mtime_ns for p in _entries(path.parent) if p != path), default=0)
    stamp = max(time.time_ns(), newest + 1)
    os.utime(path, ns=(stamp, stamp))
