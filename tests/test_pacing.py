"""Compute-bound site threads give the window's thread its turn (app.hal.pacing)."""

from __future__ import annotations

import threading
import time

import pytest

from app.hal import pacing


@pytest.fixture(autouse=True)
def no_window():
    pacing.stop()
    yield
    pacing.stop()


def test_without_a_window_nobody_waits() -> None:
    assert pacing.give_way() is False


def test_a_fresh_beat_lets_sites_go_on() -> None:
    pacing.heartbeat()
    assert pacing.give_way() is False


def test_an_overdue_beat_holds_the_site_until_the_window_beats() -> None:
    pacing.heartbeat()
    time.sleep(pacing.STALE_S * 2)
    beat_at: list[float] = []

    def window() -> None:
        time.sleep(0.01)
        beat_at.append(time.monotonic())
        pacing.heartbeat()

    threading.Thread(target=window).start()
    assert pacing.give_way() is True
    assert beat_at and time.monotonic() >= beat_at[0]  # released by the beat


def test_a_window_that_stopped_beating_costs_at_most_the_bound() -> None:
    pacing.heartbeat()
    time.sleep(pacing.STALE_S * 2)
    started = time.monotonic()
    assert pacing.give_way() is True
    assert time.monotonic() - started < pacing.MAX_WAIT_S + 0.5


def test_with_a_window_sites_compute_one_at_a_time_but_wait_together() -> None:
    inside: list[int] = []
    most = [0]
    lock = threading.Lock()
    stop_beating = threading.Event()

    def window() -> None:
        while not stop_beating.is_set():
            pacing.heartbeat()
            time.sleep(0.001)

    def site(waits: bool) -> None:
        for _ in range(20):
            with pacing.turn():
                with lock:
                    inside.append(1)
                    most[0] = max(most[0], len(inside))
                if waits:
                    with pacing.waiting():  # a chip's busy time: the turn is free
                        time.sleep(0.002)
                with lock:
                    inside.pop()

    beat = threading.Thread(target=window)
    beat.start()
    try:
        sites = [threading.Thread(target=site, args=(False,)) for _ in range(4)]
        for t in sites:
            t.start()
        for t in sites:
            t.join()
        assert most[0] == 1, "two sites computed at once"
        sites = [threading.Thread(target=site, args=(True,)) for _ in range(4)]
        for t in sites:
            t.start()
        for t in sites:
            t.join()
        assert most[0] > 1, "sites waiting out busy time must overlap"
    finally:
        stop_beating.set()
        beat.join()


def test_without_a_window_a_turn_is_free() -> None:
    with pacing.turn(), pacing.turn():  # nested and unlocked: nothing to wait for
        assert not pacing._turn.locked()


def test_heavy_window_work_holds_the_sites_until_its_next_beat() -> None:
    pacing.heartbeat()
    pacing.hold()
    threading.Timer(0.01, pacing.heartbeat).start()
    assert pacing.give_way() is True
