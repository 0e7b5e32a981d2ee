"""The busy-wait schedule (app.hal.busy_poll): where its status reads fall, what it
learns, and what that costs, judged in virtual time (no sleeping, no wall clock)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.image import MemoryImage
from app.engine.site_runner import CycleSpec
from app.engine.station import Station
from app.hal.bus import WaitReady
from app.hal.busy_poll import FIRST_FRACTION, MAX_STEP_S, BusyPoller, next_poll
from app.hal.programmer import open_programmer

PAGE = WaitReady(timeout_s=0.0036 + 0.05, hint_s=0.0007, kind="page program")
ERASE = WaitReady(timeout_s=2.45, hint_s=0.150, kind="erase 64K")


def run_waits(poller: BusyPoller, step: WaitReady, busy_s: float, count: int) -> float:
    """``count`` operations of ``busy_s`` each, polled on the schedule in virtual time
    (each status read costs ``READ_S``); returns the total time spent waiting."""
    total = 0.0
    for _ in range(count):
        at, polls = 0.0, 1
        while at < busy_s:
            at = max(poller.next_poll(step, at), at + READ_S)
            polls += 1
        poller.learn(step, at, polls)
        total += at
    return total


READ_S = 20e-6


@settings(max_examples=300, deadline=None)
@given(
    st.floats(0, 5),  # elapsed
    st.floats(0, 3),  # expected
    st.floats(1e-4, 4),  # timeout
)
def test_the_schedule_never_reads_past_the_deadline_and_never_goes_back(
    elapsed: float, expected: float, timeout: float
) -> None:
    at = next_poll(elapsed, expected, timeout)
    assert at >= elapsed
    if elapsed < timeout:
        assert at <= timeout  # no read is planned past the datasheet maximum
        assert at - elapsed <= max(MAX_STEP_S, FIRST_FRACTION * expected) + 1e-9
        if elapsed < FIRST_FRACTION * expected:  # early reads wait for the learned time
            assert at >= min(FIRST_FRACTION * expected, timeout)
    else:
        assert at == elapsed  # past the deadline: the one more read, now


@settings(max_examples=100, deadline=None)
@given(st.floats(0.1, 3.0), st.sampled_from([PAGE, ERASE]))
def test_the_schedule_learns_the_part_and_overshoots_it_little(
    factor: float, step: WaitReady
) -> None:
    busy = step.hint_s * factor
    if busy * 1.2 + 0.05 > step.timeout_s:
        return  # beyond the maximum: that is a timeout, not a schedule
    poller = BusyPoller()
    run_waits(poller, step, busy, 30)  # learning
    spent = run_waits(poller, step, busy, 10) / 10
    # each wait ends within a few per cent of the part's own time (plus one read)
    assert busy <= spent <= busy * 1.03 + 2 * READ_S
    assert abs(poller.learned[step.kind] - busy) <= busy * 0.03 + 2 * READ_S
    assert poller.polls / poller.waits < 20


def test_a_part_faster_than_typical_finishes_sooner_and_typical_is_not_slower() -> None:
    pages = 4096
    typ = run_waits(BusyPoller(), PAGE, PAGE.hint_s, pages)
    fast = run_waits(BusyPoller(), PAGE, PAGE.hint_s * 0.5, pages)
    assert fast < 0.55 * typ
    # today's fixed wait: sleep the typical time, then read (the floor of that scheme)
    assert typ <= pages * PAGE.hint_s * 1.02


def test_learning_is_per_kind_and_reset_per_part() -> None:
    poller = BusyPoller()
    run_waits(poller, PAGE, 0.0003, 5)
    run_waits(poller, ERASE, 0.120, 3)
    assert set(poller.learned) == {"page program", "erase 64K"}
    assert poller.learned["page program"] < 0.0004 < 0.1 < poller.learned["erase 64K"]
    assert poller.expected(WaitReady(hint_s=0.045, kind="erase 4K")) == 0.045  # not learned
    poller.reset()
    assert poller.expected(PAGE) == PAGE.hint_s


def test_the_simulator_polls_on_the_same_schedule(database) -> None:
    """The simulator's bus learns the part's time through the same poller, and a new
    cycle (power up) starts learning anew."""
    device = database.get("winbond.w25x10cl")
    programmer = open_programmer("sim://?sites=1&timing=scale:0.1", device=device)
    image = MemoryImage.from_bytes(bytes(range(256)) * 32)  # 32 pages, one 4 KiB erase x2
    station = Station(programmer, lambda _e: None)
    assert station.run(CycleSpec("program", device, image)).all_passed
    bus = programmer.sites[0].spi
    typical = device.facts.page_program.ms_typ / 1000  # type: ignore[attr-defined]
    learned = bus.poller.learned["page program"]
    assert 0.1 * typical <= learned <= 0.1 * typical * 1.05  # virtual time: exact-ish
    assert bus.poller.polls / bus.poller.waits < 10
    programmer.sites[0].power(False)
    programmer.sites[0].power(True)
    assert bus.poller.learned == {}
