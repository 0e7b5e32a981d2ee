"""Printing that a closed pipe cannot break.

``socketeer program ... | head -1`` closes the reader early: what the command does to the
parts, its records and its exit code must not depend on whether anybody still reads its
output. Once stdout is gone, further output is dropped.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.engine.results import DeviceResult

_closed = False


def say(text: str) -> None:
    """Print one line to stdout (flushed); nothing once the reader has gone."""
    global _closed
    if _closed:
        return
    try:
        print(text, flush=True)
    except BrokenPipeError:
        _closed = True
        drop_stdout()


def drop_stdout() -> None:
    """The reader has gone: point stdout at the null device, or Python would complain
    again when it flushes stdout at exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def result_line(result: DeviceResult) -> str:
    """A cycle's result in one line: the runner's own PASS message, else the status, the
    failed step and the reason."""
    if result.passed:
        return result.message
    step = f" at {result.failed_step}" if result.failed_step else ""
    return f"{result.status.upper()}{step}: {result.message}"
