"""Files the user names: reading them safely and writing them atomically, with every OS
error said in one line that names the path.

Writes go to a temp file in the same folder, fsync, then os.replace, so a reader (or a
crash) sees the old file or the complete new one, never half a file. Reads refuse what
is not a regular file (a FIFO would block forever, /dev/zero never ends) and files
larger than the caller's bound.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import IO, Any, BinaryIO, Literal, TextIO, overload

from app.core.errors import InputError

#: what an OS error means to the user, by errno (strerror for the rest)
_REASONS = {
    errno.ENOENT: "no such file or folder",
    errno.ENOTDIR: "a part of the path is not a folder",
    errno.EISDIR: "is a folder",
    errno.EACCES: "permission denied",
    errno.EPERM: "not permitted",
    errno.ELOOP: "too many symbolic links (a link loop?)",
    errno.ENAMETOOLONG: "the name is too long",
    errno.ENOSPC: "no space left on the device",
    errno.EROFS: "the file system is read-only",
    errno.EDQUOT: "disk quota exceeded",
    errno.EEXIST: "already exists",
    errno.EBUSY: "busy (in use by another program)",
}


def os_error_reason(err: OSError) -> str:
    """An OS error in a few words (no errno numbers, no Python names)."""
    if err.errno in _REASONS:
        return _REASONS[err.errno]
    return (err.strerror or str(err)).lower()


def _default_mode() -> int:
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


@overload
def atomic_writer(
    path: str | Path, *, text: Literal[True], mode: int | None = None
) -> AbstractContextManager[TextIO]: ...


@overload
def atomic_writer(
    path: str | Path, *, text: Literal[False] = False, mode: int | None = None
) -> AbstractContextManager[BinaryIO]: ...


def atomic_writer(
    path: str | Path, *, text: bool = False, mode: int | None = None
) -> AbstractContextManager[IO[Any]]:
    """A stream (text with ``text``, else binary) whose content replaces ``path`` only
    when the block succeeds.

    ``mode`` sets the file's permissions (default: the usual umask-based ones; mkstemp
    alone would leave every file private).
    """
    return _atomic_writer(Path(path), text, mode)


@contextlib.contextmanager
def _atomic_writer(path: Path, text: bool, mode: int | None) -> Iterator[IO[Any]]:
    directory = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as err:
        if directory.exists() and not directory.is_dir():
            reason = f"{directory} is a file, not a folder"
        elif not directory.is_dir():
            reason = f"folder {directory} does not exist"
        else:
            reason = f"cannot create a file in {directory}: {os_error_reason(err)}"
        raise InputError(f"cannot write {path}: {reason}") from None
    try:
        with contextlib.suppress(AttributeError, OSError):  # no POSIX modes (Windows)
            os.fchmod(fd, _default_mode() if mode is None else mode)
        opened = os.fdopen(fd, "w", encoding="utf-8", newline="") if text else os.fdopen(fd, "wb")
        with opened as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp_name, path)
    except OSError as err:
        Path(tmp_name).unlink(missing_ok=True)
        raise InputError(f"cannot write {path}: {os_error_reason(err)}") from None
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
    except OSError as err:
        raise InputError(f"{label}: {os_error_reason(err)}{where}") from None


@contextlib.contextmanager
def open_user_file(
    path: Path, *, max_bytes: int, what: str | None = None, noun: str = "a file"
) -> Iterator[BinaryIO]:
    """``path`` opened for reading, refused unless it is a regular file of at most
    ``max_bytes`` (both checked before the open, which would block on a FIFO)."""
    label = str(path) if what is None else what
    with user_file(path, what, noun):
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(errno.EISDIR, "is a directory", str(path))
        if not stat.S_ISREG(info.st_mode):
            raise InputError(f"{label}: not a regular file (a device, pipe or socket)")
        if info.st_size > max_bytes:
            raise InputError(
                f"{label}: {info.st_size:,} bytes is more than the {max_bytes:,} bytes"
                f" Socketeer reads as {noun}"
            )
        with path.open("rb") as stream:
            yield stream


def write_atomic(path: str | Path, data: bytes, *, mode: int | None = None) -> None:
    with atomic_writer(path, mode=mode) as stream:
        stream.write(data)
