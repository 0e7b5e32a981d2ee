"""Errors raised by buses and programmers (all derive from IOError, as pyftdi's do)."""

from __future__ import annotations

from app.core.errors import SocketeerError


class HalError(SocketeerError, IOError):
    """A programmer or bus problem. Exit code 3 on the CLI."""

    exit_code = 3


class LinkError(HalError):
    """The link to the programmer (USB, serial) failed or dropped mid-operation."""


class BusTimeout(HalError):
    """The part stayed busy (or did not acknowledge) longer than its maximum time."""


class I2cNack(HalError):
    """An I2C address or data byte was not acknowledged."""


class ProgrammerUrlError(HalError):
    """A programmer URL is malformed or names an unknown scheme/option."""

    exit_code = 2
