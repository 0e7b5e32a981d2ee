"""Typed errors shared by every layer.

Each error carries enough context (file, line, address, field) to tell the user what
was wrong and where; the CLI prints ``str(err)`` as one line and exits with ``exit_code``.
"""

from __future__ import annotations


class SocketeerError(Exception):
    """Base class of every error Socketeer reports to a user (never a traceback)."""

    exit_code = 2


class UsageError(SocketeerError):
    """A command-line argument or option value is wrong."""


class InputError(SocketeerError):
    """A file or value given by the user cannot be used."""


class ImageFormatError(InputError):
    """A firmware image file is malformed. Names the file and the 1-based line."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None) -> None:
        self.path = path
        self.line = line
        self.reason = message
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        elif line is not None:
            where = f"line {line}: "
        super().__init__(f"{where}{message}")


class ImageRangeError(InputError):
    """Image data lies outside an allowed address range, or segments overlap."""


class DeviceDbError(InputError):
    """The device database (or an overlay file) is invalid. Names file and JSON path."""
