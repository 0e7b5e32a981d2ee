"""Atomic file writes: a temp file in the same folder, fsync, then os.replace, so a
reader (or a crash) sees the old file or the complete new one, never half a file."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from app.core.errors import InputError


def _default_mode() -> int:
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_writer(path: str | Path, *, text: bool = False, mode: int | None = None) -> Iterator[IO]:
    """Yield a stream whose content replaces ``path`` only when the block succeeds.

    ``mode`` sets the file's permissions (default: the usual umask-based ones; mkstemp
    alone would leave every file private).
    """
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with contextlib.suppress(AttributeError, OSError):  # no POSIX modes (Windows)
            os.fchmod(fd, _default_mode() if mode is None else mode)
        flags = {"mode": "w", "encoding": "utf-8", "newline": ""} if text else {"mode": "wb"}
        with os.fdopen(fd, **flags) as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def user_file(path: Path, what: str | None = None, noun: str = "a file") -> Iterator[None]:
    """Turn the OS errors of opening a file the user named into one-line InputErrors that
    start with ``what`` (default: the path) and name the path if ``what`` does not."""
    label = str(path) if what is None else what
    where = "" if str(path) in label else f" ({path})"
    try:
        yield
    except FileNotFoundError:
        raise InputError(f"{label}: no such file{where}") from None
    except IsADirectoryError:
        raise InputError(f"{label}: is a directory, not {noun}{where}") from None
    except PermissionError:
        raise InputError(f"{label}: permission denied{where}") from None


def write_atomic(path: str | Path, data: bytes, *, mode: int | None = None) -> None:
    with atomic_writer(path, mode=mode) as stream:
        stream.write(data)
