"""Site threads that compute give the window's thread its turn.

A real programmer's site spends its cycle waiting on its link, with the interpreter
free. A simulated site computes in Python: sixteen of them on instant timing keep every
other thread waiting for the interpreter lock, and the window's thread, which takes that
lock again after every call into Qt, waits hundreds of milliseconds for each event.

So the window beats (:func:`heartbeat`) from its event loop while sites run, and a
compute-bound site thread calls :func:`give_way` between bus transfers: when the last
beat is older than ``STALE_S`` it waits, without the lock, for the next beat (at most
``MAX_WAIT_S``, so a window that stopped beating costs little). Without a window
(command line, tests) nobody beats and give_way returns at once.
"""

from __future__ import annotations

import threading
import time

#: a beat older than this means the window's thread is waiting for its turn
STALE_S = 0.003
#: the longest a site waits for a beat (a window busy elsewhere, or just closed)
MAX_WAIT_S = 0.050

_beat = threading.Event()
_last_beat: float | None = None


def heartbeat() -> None:
    """The window's event loop ran just now (call it from a timer while sites run)."""
    global _last_beat
    _last_beat = time.monotonic()
    _beat.set()


def stop() -> None:
    """No window is beating any more: site threads no longer wait."""
    global _last_beat
    _last_beat = None
    _beat.set()


def give_way() -> bool:
    """Wait for the window's next beat if it is overdue; True when it waited."""
    last = _last_beat
    if last is None or time.monotonic() - last <= STALE_S:
        return False
    _beat.clear()
    last = _last_beat  # a beat (or stop) just before the clear would be missed
    if last is None or time.monotonic() - last <= STALE_S:
        return False
    _beat.wait(MAX_WAIT_S)
    return True
