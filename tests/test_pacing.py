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
