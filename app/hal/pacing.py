"""Site threads that compute give the window's thread its turn.

A real programmer's site spends its cycle waiting on its link, with the interpreter
free. A simulated site computes in Python: sixteen of them on instant timing keep every
other thread waiting for the interpreter lock, and the window's thread, which takes that
lock again after every call into Qt, waits hundreds of milliseconds for each event.

So the window beats (:func:`heartbeat`) from its event loop while sites run, and a
compute-bound site runs each bus transfer in a :func:`turn`: it takes the one compute
turn (the other sites wait for it without the interpreter lock), and gives way when the
last beat is older than ``STALE_S`` (it waits, also without the lock, for the next beat;
at most ``MAX_WAIT_S``, so a window that stopped beating costs little). The window's
thread so competes with one site for the interpreter, not sixteen. A site waiting out a
chip's busy time inside its turn frees the turn meanwhile (:func:`waiting`), so sites
still wait in parallel. Without a window (command line, tests) nobody beats and a turn
costs nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

#: a beat older than this means the window's thread is waiting for its turn
STALE_S = 0.003
#: the longest a site waits for a beat (a window busy elsewhere, or just closed)
MAX_WAIT_S = 0.050

_beat = threading.Event()
_last_beat: float | None = None
_turn = threading.Lock()
_holding = threading.local()  # .turn: this thread holds the turn


def heartbeat() -> None:
    """The window's event loop ran just now (call it from a timer while sites run)."""
    global _last_beat
    _last_beat = time.monotonic()
    _beat.set()


def hold() -> None:
    """The window starts heavy work (a batch of events, a chart redraw or paint): sites
    wait for its next beat before their next transfer."""
    global _last_beat
    if _last_beat is not None:
        _last_beat = float("-inf")
        _beat.clear()


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


@contextmanager
def turn() -> Iterator[None]:
    """One site's compute-bound step (a simulated bus transfer)."""
    if _last_beat is None or getattr(_holding, "turn", False):
        yield
        return
    with _turn:  # the other sites wait here, off the interpreter lock
        _holding.turn = True
        give_way()
        try:
            yield
        finally:
            _holding.turn = False


@contextmanager
def waiting() -> Iterator[None]:
    """A wait inside a turn (a simulated chip's busy time): other sites go meanwhile."""
    if not getattr(_holding, "turn", False):
        yield
        return
    _holding.turn = False
    _turn.release()
    try:
        yield
    finally:
        _turn.acquire()
        _holding.turn = True
        give_way()  # back to computing: after the window's next beat if it is busy
