"""Busy waits that follow the chip, not the datasheet: one status-poll schedule for every
backend that polls (the simulator, serprog, FTDI's host-side polls).

A datasheet's typical time is a promise about a population of parts, not about the part
in the socket: many finish sooner. So the first status read goes out with the command
itself (free on a batching link), and the schedule learns how long the part really takes,
per kind of operation ("page program", "erase 64K", ...), during the run:

- the next read after a busy answer is at ``FIRST_FRACTION`` of the expected time (the
  learned time of this kind, the datasheet's typical time until one is learned), then
  every ``STEP_FRACTION`` of the time waited so far (at most ``MAX_STEP_S``), so a wait
  overshoots the part by a few per cent at most;
- a part that answers ready at its first scheduled read lowers the learned time to that
  read (the schedule tries earlier next time); a slower part raises it halfway;
- no read is scheduled past the deadline (``WaitReady.timeout_s``, the datasheet maximum
  plus a margin); the read after the deadline decides: busy there is a BusTimeout. A host
  that was merely slow (a stalled thread) decides nothing.

What is learned belongs to one part: backends ``reset`` the poller when a site powers up
for a cycle (a new part may be in the socket).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from app.hal.bus import WaitReady
from app.hal.errors import BusTimeout


class BusyWait(Protocol):
    """What a schedule needs of a wait step (app.hal.bus.WaitReady or ReadyWait)."""

    @property
    def timeout_s(self) -> float: ...

    @property
    def hint_s(self) -> float: ...

    @property
    def kind(self) -> str: ...


#: the first scheduled read after a busy answer, as a fraction of the expected time
FIRST_FRACTION = 0.85
#: later reads: this fraction of the time waited so far (or of the expected time)
STEP_FRACTION = 0.02
#: never more than this between two reads (a chip erase, a part far past typical)
MAX_STEP_S = 0.01


def next_poll(elapsed_s: float, expected_s: float, timeout_s: float) -> float:
    """When to read the status next (seconds since the operation started), after a read
    at ``elapsed_s`` found the part busy. Never later than ``timeout_s``; at or past it,
    the answer is "now" (the one read after the deadline)."""
    first = FIRST_FRACTION * expected_s
    if elapsed_s < first:
        at = first
    else:
        at = elapsed_s + min(MAX_STEP_S, STEP_FRACTION * max(expected_s, elapsed_s))
    return min(at, timeout_s) if elapsed_s < timeout_s else elapsed_s


def kind_of(step: BusyWait) -> str:
    """What the schedule learns under: the step's kind, else its typical time."""
    return step.kind or f"typ {step.hint_s:g} s"


@dataclass
class BusyPoller:
    """The learned busy times of the part on one bus, per kind of operation."""

    learned: dict[str, float] = field(default_factory=dict)
    waits: int = 0  # for tests and benchmarks: waits, and status reads they took
    polls: int = 0

    def reset(self) -> None:
        """A new part (or the same part after a power cycle): forget what was learned."""
        self.learned.clear()

    def expected(self, step: BusyWait) -> float:
        """The time this kind of operation is expected to take on this part."""
        return self.learned.get(kind_of(step), step.hint_s)

    def next_poll(self, step: BusyWait, elapsed_s: float) -> float:
        return next_poll(elapsed_s, self.expected(step), step.timeout_s)

    def learn(self, step: BusyWait, observed_s: float, polls: int) -> None:
        """The part was seen ready by the ``polls``-th status read, sent ``observed_s``
        after the operation started. Backends pass when the read was *sent*, not when
        its answer came back: learning the answer's time would add the link's round trip
        to every estimate, and the schedule would settle at that overhead / (1 -
        FIRST_FRACTION) instead of at the part's own time."""
        self.waits += 1
        self.polls += polls
        key = kind_of(step)
        old = self.learned.get(key)
        if old is None or observed_s <= old:
            self.learned[key] = max(0.0, observed_s)
        else:
            self.learned[key] = old + (observed_s - old) / 2


def wait_on_host(
    poller: BusyPoller,
    step: WaitReady,
    status: int,
    read_status: Callable[[], int],
    now: Callable[[], float],
    sleep: Callable[[float], None],
) -> int:
    """Poll an SPI status register from the host until ``step`` is satisfied; ``status``
    is the first read (sent with the command). Returns the last status read. Raises
    BusTimeout when a read sent after ``step.timeout_s`` still finds the part busy."""
    started = now()
    elapsed, polls = 0.0, 1
    while status & step.mask != step.value:
        if elapsed > step.timeout_s:
            raise BusTimeout(
                f"part still busy after {step.timeout_s * 1000:.0f} ms"
                f" (status 0x{status:02X}, waiting for mask 0x{step.mask:02X}"
                f" = 0x{step.value:02X})"
            )
        # A host that was merely slow must not fail a good part: past the deadline the
        # status is read once more, and that read decides.
        elapsed = now() - started
        sleep(max(0.0, poller.next_poll(step, elapsed) - elapsed))
        elapsed = now() - started
        status = read_status()
        polls += 1
    poller.learn(step, elapsed, polls)
    return status
