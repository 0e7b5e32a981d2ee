"""StatisticsView: the numbers behind the charts, reset, and coalesced redraws."""

from __future__ import annotations

import pytest

from app.ui.stats_view import REDRAW_INTERVAL_MS, STEP_GAP_MS, SessionStats, StatisticsView


@pytest.fixture
def view(qtbot) -> StatisticsView:
    widget = StatisticsView()
    qtbot.addWidget(widget)
    return widget


def _feed(view: StatisticsView) -> None:
    # Session starts at t=100 (first cycle starts there); last device done at t=460.
    view.add_result(site=1, passed=True, cycle_s=10.0, finished_at=110.0)
    view.add_result(site=2, passed=True, cycle_s=20.0, finished_at=130.0)
    view.add_result(site=1, passed=False, cycle_s=5.0, finished_at=200.0)
    view.add_result(site=2, passed=True, cycle_s=30.0, finished_at=460.0)


def test_summary_numbers(view: StatisticsView) -> None:
    _feed(view)
    s = view.summary()
    assert (s["total"], s["passed"], s["failed"]) == (4, 3, 1)
    assert s["yield_pct"] == pytest.approx(75.0)
    assert s["sites"] == {
        1: {"passed": 1, "failed": 1, "total": 2, "yield_pct": 50.0},
        2: {"passed": 2, "failed": 0, "total": 2, "yield_pct": 100.0},
    }
    assert s["mean_cycle_s"] == pytest.approx(20.0)  # passed cycles only
    assert s["elapsed_s"] == pytest.approx(360.0)
    assert s["devices_per_hour"] == pytest.approx(40.0)  # 4 devices in 6 minutes


def test_charts_show_the_summary(view: StatisticsView) -> None:
    _feed(view)
    view.redraw()
    assert list(view.yield_bars.opts["x"]) == [1, 2]
    assert list(view.yield_bars.opts["height"]) == [50.0, 100.0]
    assert [label.textItem.toPlainText() for label in view.yield_labels] == ["1/2", "2/2"]
    assert sum(view.cycle_bars.opts["height"]) == 3
    assert view.mean_line.value() == pytest.approx(20.0)
    assert "75.0 %" in view.summary_label.text()


def test_reset_clears_everything(view: StatisticsView) -> None:
    _feed(view)
    view.reset()
    s = view.summary()
    assert s["total"] == 0
    assert s["sites"] == {}
    assert s["yield_pct"] is None
    assert s["mean_cycle_s"] is None
    assert s["devices_per_hour"] is None
    view.redraw()
    assert view.yield_labels == []
    assert "No devices" in view.summary_label.text()


def test_many_adds_redraw_once(qtbot, view: StatisticsView) -> None:
    before = view.redraw_count
    for i in range(200):
        view.add_result(site=i % 8, passed=i % 10 != 0, cycle_s=12.0, finished_at=100.0 + i)
    assert view.redraw_count == before  # nothing drawn synchronously
    assert view.redraw_pending
    qtbot.waitUntil(lambda: view.redraw_count == before + 1, timeout=REDRAW_INTERVAL_MS * 10)
    assert not view.redraw_pending
    assert view.summary()["total"] == 200
    assert "200" in view.summary_label.text()
    # the other charts follow a step apart (each paints in its own pass), all with the data
    qtbot.waitUntil(lambda: view.rate_curve.getData()[0] is not None, timeout=STEP_GAP_MS * 10)
    assert view.mean_line.value() == pytest.approx(12.0)


def test_throughput_over_sliding_window() -> None:
    stats = SessionStats(window_s=600.0, session_start=0.0)
    for i in range(1, 41):  # one device every 30 s for 20 minutes
        stats.add(site=1, passed=True, cycle_s=25.0, finished_at=30.0 * i)
    minutes, rate = stats.throughput_curve()
    assert minutes[0] == pytest.approx(1.0)  # nothing before a minute of session time
    assert minutes[-1] == pytest.approx(20.0)
    assert rate == pytest.approx([120.0] * len(rate))
    assert stats.devices_per_hour() == pytest.approx(120.0)


def test_a_short_fast_session_still_draws_every_plot_in_fitting_units(
    view: StatisticsView,
) -> None:
    """48 devices in 3 s (the demo): the throughput curve has points, time in seconds,
    cycle times in ms (never pyqtgraph's '(x0.001)')."""
    for i in range(48):
        view.add_result(site=i % 8 + 1, passed=True, cycle_s=0.25, finished_at=0.3 + i * 0.06)
    view.redraw()
    x, y = view.rate_curve.getData()
    assert x is not None and len(x) > 10 and view.rate_unit == "s"
    assert float(x.max()) == pytest.approx(3.07, abs=0.01)  # seconds, not minutes
    assert float(y[-1]) == pytest.approx(48 * 3600 / (0.3 + 47 * 0.06 - 0.05), rel=0.05)
    assert view.cycle_unit == "ms"
    assert view.cycle_plot.getAxis("bottom").labelText == "Cycle time (ms)"
    assert view.mean_line.value() == pytest.approx(250.0)
    assert not view.cycle_plot.getAxis("bottom").autoSIPrefix


def test_a_long_shift_is_drawn_in_hours(view: StatisticsView) -> None:
    for i in range(600):
        view.add_result(site=1, passed=True, cycle_s=30.0, finished_at=30.0 * (i + 1))
    view.redraw()
    x, _ = view.rate_curve.getData()
    assert view.rate_unit == "h" and float(x.max()) == pytest.approx(5.0)
    assert view.cycle_unit == "s"


@pytest.mark.parametrize("sites", [1, 8, 16, 64])
def test_yield_per_site_at_every_station_size(view: StatisticsView, sites: int) -> None:
    for site in range(1, sites + 1):
        view.add_result(site=site, passed=site % 5 != 0, cycle_s=1.0, finished_at=float(site))
    view.redraw()
    assert list(view.yield_bars.opts["x"]) == list(range(1, sites + 1))
    heights = list(view.yield_bars.opts["height"])
    assert heights == [0.0 if s % 5 == 0 else 100.0 for s in range(1, sites + 1)]
    ticks = view.yield_plot.getAxis("bottom")._tickLevels[0]
    assert len(ticks) <= 16 and ticks[0] == (1, "1")
    labels = [label.textItem.toPlainText() for label in view.yield_labels]
    expected = [f"{int(s % 5 != 0)}/1" for s in range(1, sites + 1)] if sites <= 8 else []
    assert labels == expected  # beyond 8 sites the labels would overlap: bars and axis only
