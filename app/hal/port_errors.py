"""The exceptions a serial port can raise, whatever the platform.

pyserial raises SerialException (an OSError) for most failures, but on POSIX the
termios calls it makes while opening or reconfiguring a port can raise ``termios.error``
(not an OSError): a pseudo-terminal left with settings it refuses, an adapter that
rejects a parity. Every one of them is a problem with the link, never a crash.
"""

from __future__ import annotations

try:
    import termios
except ImportError:  # Windows
    PORT_ERRORS: tuple[type[BaseException], ...] = (OSError,)
else:
    PORT_ERRORS = (OSError, termios.error)


def port_error_text(err: BaseException) -> str:
    """``err`` in words: termios errors arrive as an (errno, message) pair."""
    if err.args and len(err.args) == 2 and isinstance(err.args[0], int):
        return str(err.args[1]).lower()
    return str(err)


def port_errno(err: BaseException) -> int | None:
    """The errno of a port error: an OSError's own, or the first of a termios error's
    (errno, message) pair; None when it carries none."""
    if isinstance(err, OSError):
        return err.errno
    if err.args and isinstance(err.args[0], int):
        return err.args[0]
    return None
