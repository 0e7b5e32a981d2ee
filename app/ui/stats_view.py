"""Session statistics for the production screen: yield per site, cycle times, throughput.

``SessionStats`` does the arithmetic (no Qt, cheap to test); ``StatisticsView`` only
draws it. Results can arrive many times a second from several sites, so redraws are
coalesced by a single-shot timer to at most two a second.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QColor, QFont, QResizeEvent
from PySide6.QtWidgets import QGridLayout, QLabel, QVBoxLayout, QWidget

from app.engine.results import FAIL, PASS
from app.engine.tally import Tally
from app.hal import pacing

REDRAW_INTERVAL_MS = 500
#: between the charts of one timed redraw (each paints in its own pass)
STEP_GAP_MS = 40
DEFAULT_WINDOW_S = 600.0  # sliding window for devices/hour
#: a throughput point needs this much session time behind it (or a tenth of the session,
#: if that is shorter: a demo of a few seconds still draws its curve)
MIN_RATE_SPAN_S = 60.0
#: per-site count labels over the yield bars up to this many sites (more would overlap)
MAX_YIELD_LABELS = 8
#: room a per-site count label needs over its bar (pixels)
YIELD_LABEL_WIDTH = 30
#: below this width the plots stand one above the other
STACK_BELOW_WIDTH = 560

GOOD = QColor("#2e9d4a")
FAIR = QColor("#e0a400")
POOR = QColor("#d43a2f")
INK = QColor("#202020")
LINE = QColor("#1f5fbf")


@dataclass
class SessionStats:
    """Counts, cycle times and completion times of one production session.

    ``session_start`` (time.monotonic() seconds) defaults to the start of the first
    cycle seen, i.e. its ``finished_at - cycle_s``.
    """

    window_s: float = DEFAULT_WINDOW_S
    session_start: float | None = None
    sites: dict[int, Tally] = field(default_factory=dict)
    pass_cycles_s: list[float] = field(default_factory=list)
    finished_at: list[float] = field(default_factory=list)

    def add(self, site: int, passed: bool, cycle_s: float, finished_at: float) -> None:
        """One production result (the window adds only counts_for_production ones)."""
        self.sites[site] = self.sites.get(site, Tally()).add(PASS if passed else FAIL)
        if passed:
            self.pass_cycles_s.append(cycle_s)
        self.finished_at.append(finished_at)
        start = finished_at - cycle_s
        if self.session_start is None or start < self.session_start:
            self.session_start = start

    @property
    def total(self) -> int:
        return len(self.finished_at)

    @property
    def passed(self) -> int:
        return sum(c.passed for c in self.sites.values())

    @property
    def elapsed_s(self) -> float:
        if not self.finished_at or self.session_start is None:
            return 0.0
        return max(self.finished_at) - self.session_start

    def devices_per_hour(self) -> float | None:
        """Completed devices (pass or fail) per hour over the whole session."""
        elapsed = self.elapsed_s
        return self.total * 3600.0 / elapsed if elapsed > 0 else None

    def throughput_curve(self) -> tuple[np.ndarray, np.ndarray]:
        """(minutes since session start, devices/hour over the trailing window).

        Evaluated at each completion. Early in the session the window is the elapsed
        time so far; points with less than MIN_RATE_SPAN_S (or a tenth of the session,
        if shorter) behind them are left out, because one device in the first second is
        not 3,600 devices/hour in any useful sense.
        """
        if not self.finished_at or self.session_start is None:
            return np.empty(0), np.empty(0)
        t = np.sort(np.asarray(self.finished_at, dtype=float)) - self.session_start
        done = np.arange(1, len(t) + 1) - np.searchsorted(t, t - self.window_s, side="right")
        span = np.minimum(t, self.window_s)
        keep = span >= min(MIN_RATE_SPAN_S, self.window_s, 0.1 * float(t[-1]))
        keep &= span > 0
        return t[keep] / 60.0, done[keep] * 3600.0 / span[keep]

    def summary(self) -> dict:
        """Plain numbers for tests, the status bar and reports (yield as Tally has it)."""
        whole = sum(self.sites.values(), Tally())
        return {
            "total": whole.judged,
            "passed": whole.passed,
            "failed": whole.rejected,
            "yield_pct": whole.yield_percent,
            "sites": {
                site: {
                    "passed": c.passed,
                    "failed": c.rejected,
                    "total": c.judged,
                    "yield_pct": c.yield_percent,
                }
                for site, c in sorted(self.sites.items())
            },
            "mean_cycle_s": float(np.mean(self.pass_cycles_s)) if self.pass_cycles_s else None,
            "elapsed_s": self.elapsed_s,
            "devices_per_hour": self.devices_per_hour(),
        }


def _time_unit(elapsed_s: float) -> tuple[str, float]:
    """(unit, how many of it per minute) for a session time axis of ``elapsed_s``."""
    if elapsed_s < 120:
        return "s", 60.0
    if elapsed_s < 3 * 3600:
        return "min", 1.0
    return "h", 1 / 60


def _yield_colour(pct: float) -> QColor:
    return GOOD if pct >= 95.0 else FAIR if pct >= 80.0 else POOR


def _make_plot(title: str, x_label: str, y_label: str) -> pg.PlotWidget:
    """A static, light-themed plot: no mouse pan/zoom or context menu on a factory
    screen, where a stray touch must not leave a chart zoomed into nothing."""
    plot = pg.PlotWidget(background="w")
    item = plot.getPlotItem()
    item.setTitle(title, color=INK.name(), size="11pt")
    item.setMenuEnabled(False)
    item.hideButtons()
    item.setMouseEnabled(x=False, y=False)
    item.showGrid(x=False, y=True, alpha=0.25)
    font = QFont()
    font.setPointSize(9)
    for side, text in (("bottom", x_label), ("left", y_label)):
        axis = item.getAxis(side)
        axis.setPen(pg.mkPen(INK))
        axis.setTextPen(pg.mkPen(INK))
        axis.setTickFont(font)
        axis.setLabel(text, color=INK.name(), **{"font-size": "10pt"})
        axis.enableAutoSIPrefix(False)  # units are chosen here (s or ms), never "(x0.001)"
    return plot


class StatisticsView(QWidget):
    """Three charts and a one-line summary over the results of this session."""

    def __init__(self, parent: QWidget | None = None, window_s: float = DEFAULT_WINDOW_S) -> None:
        super().__init__(parent)
        self._stats = SessionStats(window_s=window_s)
        self.redraw_count = 0  # for tests and diagnostics
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(REDRAW_INTERVAL_MS)
        self._timer.timeout.connect(self._redraw_in_steps)

        self.summary_label = QLabel()
        self.summary_label.setTextFormat(Qt.TextFormat.RichText)
        self.summary_label.setWordWrap(True)  # a long line must not widen the pane
        # Two lines' room, always: a summary that grows a line would resize the charts,
        # and a chart resize re-lays out its axes (tens of ms) while sites run.
        lines = self.summary_label.fontMetrics().lineSpacing()
        self.summary_label.setFixedHeight(2 * lines + 4)
        self.summary_label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.yield_plot = _make_plot("Yield per site", "Site", "Pass (%)")
        self.cycle_plot = _make_plot("Cycle time (passed)", "Cycle time (s)", "Devices")
        self.cycle_unit = "s"
        self.rate_unit = "min"
        self.rate_plot = _make_plot(
            f"Throughput ({window_s / 60:g} min window)", "Session time (min)", "Devices / hour"
        )
        self._build_items()
        for plot in (self.yield_plot, self.cycle_plot, self.rate_plot):
            plot.viewport().installEventFilter(self)

        self._grid = QGridLayout()
        self._grid.setSpacing(6)
        self._stacked: bool | None = None
        self._arrange(stacked=False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.summary_label)
        layout.addLayout(self._grid, 1)
        self.redraw()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Paint:
            pacing.hold()  # a chart paints in Python too
        return False

    def _arrange(self, *, stacked: bool) -> None:
        """Two plots over the throughput plot; one above the other in a narrow pane."""
        if stacked == self._stacked:
            return
        self._stacked = stacked
        for plot in (self.yield_plot, self.cycle_plot, self.rate_plot):
            self._grid.removeWidget(plot)
        if stacked:
            for row, plot in enumerate((self.yield_plot, self.cycle_plot, self.rate_plot)):
                self._grid.addWidget(plot, row, 0)
        else:
            self._grid.addWidget(self.yield_plot, 0, 0)
            self._grid.addWidget(self.cycle_plot, 0, 1)
            self._grid.addWidget(self.rate_plot, 1, 0, 1, 2)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._arrange(stacked=event.size().width() < STACK_BELOW_WIDTH)
        if self._stats.sites:
            self._schedule()  # labels shown or hidden by the room they have

    def _build_items(self) -> None:
        self.yield_bars = pg.BarGraphItem(x=[], height=[], width=0.6)
        self.yield_plot.addItem(self.yield_bars)
        self.yield_plot.setYRange(0, 122, padding=0)  # room for the count labels over 100 %
        self.yield_plot.getAxis("left").setTicks([[(v, str(v)) for v in range(0, 101, 20)]])
        self.yield_labels: list[pg.TextItem] = []
        self.cycle_bars = pg.BarGraphItem(
            x0=[], x1=[], height=[], brush=pg.mkBrush("#6d9bd8"), pen=pg.mkPen("#3a6aa8")
        )
        self.cycle_plot.addItem(self.cycle_bars)
        self.mean_line = pg.InfiniteLine(
            angle=90,
            pen=pg.mkPen(INK, style=Qt.PenStyle.DashLine),
            label="mean {value:.1f} s",
            labelOpts={"position": 0.9, "color": INK, "fill": pg.mkBrush(255, 255, 255, 200)},
        )
        self.cycle_plot.addItem(self.mean_line)
        self.rate_curve = pg.PlotDataItem(
            pen=pg.mkPen(LINE, width=2), antialias=True, symbol="o", symbolSize=4,
            symbolBrush=LINE, symbolPen=None,
        )  # fmt: skip
        self.rate_plot.addItem(self.rate_curve)

    # -- public API ---------------------------------------------------------------------

    def add_result(self, site: int, passed: bool, cycle_s: float, finished_at: float) -> None:
        """Record one device cycle; ``finished_at`` is time.monotonic() seconds."""
        self._stats.add(site, passed, cycle_s, finished_at)
        self._schedule()

    def reset(self, session_start: float | None = None) -> None:
        """Start a new session (its start defaults to the first cycle's start)."""
        self._stats = SessionStats(window_s=self._stats.window_s, session_start=session_start)
        self._schedule()

    def summary(self) -> dict:
        return self._stats.summary()

    @property
    def redraw_pending(self) -> bool:
        return self._timer.isActive()

    def redraw(self) -> None:
        """Redraw everything now."""
        self._timer.stop()
        self.redraw_count += 1
        summary = self._stats.summary()
        for step in self._steps(summary):
            step()

    def _steps(self, summary: dict) -> list[Callable[[], None]]:
        return [
            lambda: self._draw_summary(summary),
            lambda: self._draw_yield(summary["sites"]),
            lambda: self._draw_cycles(summary["mean_cycle_s"]),
            self._draw_rate,
        ]

    def draw_pending(self) -> None:
        """Draw what the coalescing timer would draw, now (a run just ended)."""
        if self._timer.isActive():
            self._timer.stop()
            self._redraw_in_steps()

    def _redraw_in_steps(self) -> None:
        """The coalescing timer's redraw: the summary with the yield chart, then the
        other two charts STEP_GAP_MS apart, so each chart paints in its own pass
        (together they paint for ~30 ms: longer than a frame, with sites running)."""
        self.redraw_count += 1
        steps = self._steps(self._stats.summary())
        pacing.hold()  # charts draw in Python: running sites pause for it (app.hal.pacing)
        steps[0]()
        steps[1]()
        for n, step in enumerate(steps[2:], start=1):
            QTimer.singleShot(n * STEP_GAP_MS, self, step)

    # -- drawing ------------------------------------------------------------------------

    def _schedule(self) -> None:
        # not restarted while running: a steady stream still redraws every interval
        if not self._timer.isActive():
            self._timer.start()

    def _draw_summary(self, s: dict) -> None:
        if not s["total"]:
            self.summary_label.setText("<b>No devices yet.</b>")
            return
        parts = [
            f"<b>{s['total']}</b> devices",
            f"<span style='color:{GOOD.name()}'><b>{s['passed']}</b> pass</span>",
            f"<span style='color:{POOR.name()}'><b>{s['failed']}</b> fail</span>",
            f"yield <b>{s['yield_pct']:.1f} %</b>",
        ]
        if s["mean_cycle_s"] is not None:
            parts.append(f"mean cycle <b>{s['mean_cycle_s']:.1f} s</b>")
        if s["devices_per_hour"] is not None:
            parts.append(f"<b>{s['devices_per_hour']:.0f}</b> devices/h")
        self.summary_label.setText(" &nbsp;·&nbsp; ".join(parts))

    def _draw_yield(self, sites: dict[int, dict]) -> None:
        for label in self.yield_labels:
            self.yield_plot.removeItem(label)
        self.yield_labels = []
        xs = list(sites)
        pcts = [s["yield_pct"] for s in sites.values()]
        colours = [_yield_colour(p) for p in pcts]
        # pyqtgraph 0.14 fails on empty pens/brushes lists; None means "use the shared one"
        self.yield_bars.setOpts(
            x=xs,
            height=pcts,
            brushes=[pg.mkBrush(c) for c in colours] or None,
            pens=[pg.mkPen(c.darker(130)) for c in colours] or None,
        )
        room = self.yield_plot.width() / max(1, len(sites))
        fits = len(sites) <= MAX_YIELD_LABELS and room >= YIELD_LABEL_WIDTH
        for x, s in sites.items() if fits else ():
            label = pg.TextItem(f"{s['passed']}/{s['total']}", color=INK, anchor=(0.5, 1.0))
            label.setPos(x, s["yield_pct"])
            self.yield_plot.addItem(label)
            self.yield_labels.append(label)
        axis = self.yield_plot.getAxis("bottom")
        step = max(1, len(xs) // 16)  # every site up to 16, then every other, ...
        axis.setTicks([[(x, str(x)) for x in xs[::step]]] if xs else None)
        if xs:
            self.yield_plot.setXRange(min(xs) - 0.7, max(xs) + 0.7, padding=0)

    def _draw_cycles(self, mean: float | None) -> None:
        cycles = np.asarray(self._stats.pass_cycles_s, dtype=float)
        if not len(cycles):
            self.cycle_bars.setOpts(x0=[], x1=[], height=[])
            self.mean_line.hide()
            return
        unit, scale = ("ms", 1000.0) if float(cycles.max()) < 1.0 else ("s", 1.0)
        cycles = cycles * scale
        lo, hi = float(cycles.min()), float(cycles.max())
        if hi - lo < 1e-9:
            lo, hi = lo - 0.5, hi + 0.5
        bins = int(min(30, max(5, np.sqrt(len(cycles)) * 2)))
        counts, edges = np.histogram(cycles, bins=bins, range=(lo, hi))
        self.cycle_bars.setOpts(x0=edges[:-1], x1=edges[1:], height=counts)
        self.cycle_unit = unit
        self.cycle_plot.getAxis("bottom").setLabel(
            f"Cycle time ({unit})", color=INK.name(), **{"font-size": "10pt"}
        )
        self.mean_line.label.setFormat(f"mean {{value:.1f}} {unit}")
        self.mean_line.show()  # the label only reformats while the line is visible
        self.mean_line.setValue((mean or 0.0) * scale)

    def _draw_rate(self) -> None:
        minutes, y = self._stats.throughput_curve()
        unit, per_minute = _time_unit(self._stats.elapsed_s)
        x = minutes * per_minute
        self.rate_curve.setData(x, y)
        self.rate_unit = unit
        self.rate_plot.getAxis("bottom").setLabel(
            f"Session time ({unit})", color=INK.name(), **{"font-size": "10pt"}
        )
        # anchored at zero: a rate axis starting at 380 makes a 5 % dip look like a crash
        top = float(y.max()) * 1.15 if len(y) else 1.0
        right = max(float(x.max()) if len(x) else 0.0, 1.0)
        self.rate_plot.setYRange(0, top, padding=0)
        self.rate_plot.setXRange(0, right, padding=0.02)
