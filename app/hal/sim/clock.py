"""Virtual time for the simulator.

Each simulated site keeps a virtual clock. Chip operations (erase, page program, write
cycles) and bus transfers advance it; the clock keeps virtual time no slower than real
time, and in real-time modes sleeps whenever virtual time runs ahead of the wall clock
by more than a small slack. The host therefore sees each result no earlier than a real
programmer with on-board status polling would deliver it, while the simulator sleeps in
a few large steps instead of one imprecise short sleep per page.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from app.hal import pacing
from app.hal.errors import ProgrammerUrlError

_SLACK_S = 0.002


@dataclass(frozen=True)
class Timing:
    """How long chip operations take: ``which`` of the DB figures, times ``scale``.

    ``which`` is "instant", "typ" or "max"; ``scale`` stretches (or shrinks) real time.
    """

    which: str = "instant"
    scale: float = 1.0

    @classmethod
    def parse(cls, text: str) -> Timing:
        if text in ("instant", "typ", "max"):
            return cls(text)
        match = re.fullmatch(r"scale:([0-9]*\.?[0-9]+)", text)
        if match and float(match.group(1)) > 0:
            return cls("typ", float(match.group(1)))
        raise ProgrammerUrlError(
            f"timing={text!r}: expected instant, typ, max or scale:F (F > 0, applied to typ)"
        )

    @property
    def realtime(self) -> bool:
        return self.which != "instant"

    def duration(self, typ_ms: float, max_ms: float) -> float:
        """Seconds a chip operation takes under this timing."""
        if self.which == "instant":
            return 0.0
        ms = typ_ms if self.which == "typ" else max_ms
        return ms * self.scale / 1000.0


class SimClock:
    def __init__(self, timing: Timing) -> None:
        self.timing = timing
        self._origin = time.perf_counter()
        self._virtual = 0.0
        #: what now() reads instead, while a simulated core runs behind the clock
        self.pinned: Callable[[], float] | None = None

    def now(self) -> float:
        """Virtual seconds since the clock started (never behind real time when realtime).
        While a simulated core catches up (``pinned``), the core's own time."""
        if self.pinned is not None:
            return self.pinned()
        if self.timing.realtime:
            self._virtual = max(self._virtual, time.perf_counter() - self._origin)
        return self._virtual

    def advance(self, seconds: float) -> None:
        self._virtual = self.now() + seconds
        self.sync()

    def advance_to(self, when: float) -> None:
        if when > self.now():
            self._virtual = when
        self.sync()

    def sync(self) -> None:
        """Sleep until the wall clock has caught up to within the slack of virtual time."""
        if not self.timing.realtime:
            return
        ahead = self._virtual - (time.perf_counter() - self._origin)
        if ahead > _SLACK_S:
            with pacing.waiting():
                time.sleep(ahead)

    def settle(self) -> None:
        """Sleep off any remaining lead (end of an operation as the host sees it)."""
        if not self.timing.realtime:
            return
        ahead = self._virtual - (time.perf_counter() - self._origin)
        if ahead > 0:
            with pacing.waiting():
                time.sleep(ahead)
