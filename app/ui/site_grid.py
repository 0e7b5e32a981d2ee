"""Site grid: one tile per site, its state colour, phase, progress, last result, counts.

Sixteen sites change state and progress many times a second, so a tile's updates cost
microseconds: it paints its own frame and progress strip and takes its colours from a
palette. Style sheets (which re-polish every child, ~1-7 ms a change) and QProgressBar
(which repaints at once on every setValue, ~0.7 ms) stalled the window with 16 sites.
"""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFocusEvent,
    QFont,
    QKeyEvent,
    QPainter,
    QPaintEvent,
    QPalette,
    QPen,
    QPixmap,
)
from PySide6.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.engine.results import CANCELLED, ERROR, LINK_LOST, DeviceResult
from app.engine.tally import Tally, counts_for_production
from app.ui.icons import state_icon

STATE_COLOURS = {
    "idle": ("#eceff1", "#37474f"),
    "busy": ("#fff3c4", "#5d4300"),
    "pass": ("#c8f7c5", "#0b5e1a"),
    "fail": ("#ffcdd2", "#8e0015"),
    "empty": ("#e0e0e0", "#616161"),
    "aborted": ("#ffe0b2", "#7a3e00"),  # an operator's stop: neither pass nor fail
    "service": ("#dbeafe", "#0b3d91"),  # a service operation's result (read, verify, ...)
    "error": ("#ede7f6", "#4a148c"),  # the station failed, not the part
}
TILE_MIN_WIDTH = 160
TILE_MIN_HEIGHT = 170
#: the compact tile (site, state, phase, progress, reason) when full tiles do not fit
COMPACT_MIN_WIDTH = 118
COMPACT_MIN_HEIGHT = 96
STATE_WORDS = {
    "idle": "READY",
    "busy": "BUSY",
    "pass": "PASS",
    "fail": "FAIL",
    "empty": "EMPTY",
    "aborted": "STOPPED",
    "service": "DONE",
    "error": "ERROR",
}
#: what a passed service operation's tile says
SERVICE_WORDS = {
    "identify": "ID OK",
    "read": "READ OK",
    "verify": "VERIFIED",
    "erase": "ERASED",
    "blank-check": "BLANK",
}
#: the border of the tile that has the keyboard focus
FOCUS_COLOUR = "#1565c0"
#: border widths (logical pixels): normal, and with the keyboard focus
BORDER_WIDTH = 2
FOCUS_BORDER_WIDTH = 4
#: by key code (QKeyEvent.key() is an int)
_ARROWS: dict[int, tuple[int, int]] = {
    Qt.Key.Key_Left: (-1, 0),
    Qt.Key.Key_Right: (1, 0),
    Qt.Key.Key_Up: (0, -1),
    Qt.Key.Key_Down: (0, 1),
}
#: states drawn with another state's icon
ICON_OF = {"error": "fail"}
#: logical pixels of the state icon beside the state word (about the word's height)
STATE_ICON_SIZE = 26


class ProgressStrip(QWidget):
    """A progress bar whose setValue/setFormat only schedule a paint (coalesced by Qt):
    0..1000, the text ``format`` with ``%p`` for the percentage."""

    MAXIMUM = 1000

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._value = 0
        self._format = "%p%"
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def value(self) -> int:
        return self._value

    def setValue(self, value: int) -> None:
        value = max(0, min(self.MAXIMUM, value))
        if value != self._value:
            self._value = value
            self.update()

    def setFormat(self, text: str) -> None:
        if text != self._format:
            self._format = text
            self.update()

    def text(self) -> str:
        return self._format.replace("%p", str(self._value * 100 // self.MAXIMUM))

    def sizeHint(self) -> QSize:
        return QSize(100, self.fontMetrics().height() + 6)

    def paintEvent(self, _event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        ink = self.palette().color(QPalette.ColorRole.WindowText)
        box = QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5)
        painter.setPen(QPen(ink, 1))
        painter.setBrush(QColor(255, 255, 255, 150))
        painter.drawRoundedRect(box, 3, 3)
        if self._value:
            fill = QColor(ink)
            fill.setAlpha(70)
            done = QRectF(box)
            done.setWidth(box.width() * self._value / self.MAXIMUM)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(fill)
            painter.drawRoundedRect(done, 3, 3)
        painter.setPen(ink)
        painter.drawText(box, Qt.AlignmentFlag.AlignCenter, self.text())
        painter.end()  # now, not when Python collects it (a held frame would delay it)


_ICONS: dict[tuple[str, float], QPixmap] = {}


def _state_pixmap(state: str, ratio: float) -> QPixmap:
    """The state's icon at the tile's size, rendered once per state and screen scale."""
    key = (state, ratio)
    if key not in _ICONS:
        size = QSize(STATE_ICON_SIZE, STATE_ICON_SIZE)
        _ICONS[key] = state_icon(ICON_OF.get(state, state)).pixmap(size, ratio)
    return _ICONS[key]


def _bold(widget: QWidget, points: int) -> None:
    font = QFont(widget.font())
    font.setBold(True)
    font.setPointSize(points)
    widget.setFont(font)


class SiteTile(QWidget):
    startRequested = Signal(int)
    stopRequested = Signal(int)
    selected = Signal(int)
    #: arrow keys: move the focus by (columns, rows)
    moveFocus = Signal(int, int, int)  # site, dx, dy

    def __init__(self, site: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.site = site
        # Keyboard: Tab or the arrows reach a tile, Enter/Space start it, Delete stops it.
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.state = ""
        self.tally = Tally()  # production results only (counts_for_production)
        self.compact = False
        self.setObjectName(f"site-tile-{site}")
        self.setMinimumSize(TILE_MIN_WIDTH, TILE_MIN_HEIGHT)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

        self.title = QLabel(f"Site {site}")
        _bold(self.title, 12)
        #: the site's bus and connection ("SWD · in-system · board power · ...")
        self.connection_label = QLabel("")
        self.connection_label.setObjectName("connection")
        self.connection_label.setStyleSheet("color: #555;")
        self.connection_label.setWordWrap(True)
        self.state_label = QLabel()
        self.state_label.setObjectName("state")
        _bold(self.state_label, 20)
        self.state_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.state_icon = QLabel()
        self.state_icon.setObjectName("state_icon")
        self.state_icon.setFixedSize(STATE_ICON_SIZE, STATE_ICON_SIZE)
        self.start_button = QToolButton()
        self.start_button.setText("▶")
        self.start_button.setToolTip(f"Start site {site}")
        self.start_button.clicked.connect(lambda: self.startRequested.emit(self.site))
        self.stop_button = QToolButton()
        self.stop_button.setText("■")
        self.stop_button.setToolTip(f"Stop site {site}")
        self.stop_button.clicked.connect(lambda: self.stopRequested.emit(self.site))
        self.phase_label = QLabel("")
        self.progress = ProgressStrip()
        self.result_label = QLabel("no result yet")
        self.result_label.setWordWrap(True)
        self.result_label.setObjectName("result")
        self.counts_label = QLabel()
        #: the last part: its ID, serial and cycle time (full tiles only)
        self.details_label = QLabel("")
        self.details_label.setObjectName("details")
        self.details_label.setWordWrap(True)

        top = QHBoxLayout()
        top.addWidget(self.title)
        top.addStretch(1)
        top.addWidget(self.start_button)
        top.addWidget(self.stop_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.connection_label)
        state_row = QHBoxLayout()
        state_row.addStretch(1)
        state_row.addWidget(self.state_icon)
        state_row.addWidget(self.state_label)
        state_row.addStretch(1)
        layout.addLayout(state_row)
        layout.addWidget(self.phase_label)
        layout.addWidget(self.progress)
        layout.addWidget(self.result_label, 1)
        layout.addWidget(self.details_label)
        layout.addWidget(self.counts_label)
        self.set_state("idle")
        self._update_counts()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Space):
            self.startRequested.emit(self.site)
        elif key == Qt.Key.Key_Delete:
            self.stopRequested.emit(self.site)
        elif key in _ARROWS:
            self.moveFocus.emit(self.site, *_ARROWS[key])
        else:
            super().keyPressEvent(event)

    def focusInEvent(self, event: QFocusEvent) -> None:
        super().focusInEvent(event)
        self.update()  # the focus border
        self.selected.emit(self.site)

    def focusOutEvent(self, event: QFocusEvent) -> None:
        super().focusOutEvent(event)
        self.update()

    def mousePressEvent(self, event: object) -> None:
        self.selected.emit(self.site)
        super().mousePressEvent(event)  # type: ignore[arg-type]

    @property
    def border(self) -> tuple[str, int]:
        """The frame as drawn now: (colour, width); the focus shows as a wide blue one."""
        if self.hasFocus():
            return FOCUS_COLOUR, FOCUS_BORDER_WIDTH
        return STATE_COLOURS[self.state][1], BORDER_WIDTH

    def paintEvent(self, _event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        colour, width = self.border
        half = width / 2
        painter.setPen(QPen(QColor(colour), width))
        painter.setBrush(QColor(STATE_COLOURS[self.state][0]))
        painter.drawRoundedRect(QRectF(self.rect()).adjusted(half, half, -half, -half), 6, 6)
        painter.end()

    def set_state(self, state: str, phase: str = "", word: str | None = None) -> None:
        if state != self.state:
            self.state = state
            palette = self.palette()
            ink = QColor(STATE_COLOURS[state][1])
            for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text):
                palette.setColor(role, ink)
            self.setPalette(palette)  # the labels and the progress strip inherit it
            self.state_icon.setPixmap(_state_pixmap(state, self.devicePixelRatioF()))
            self.update()
        self.state_label.setText(word or STATE_WORDS[state])
        self.phase_label.setText(phase)
        busy = state == "busy"
        self.start_button.setEnabled(not busy)
        self.stop_button.setEnabled(busy)
        if busy:
            self.progress.setValue(0)

    def set_progress(self, phase: str, done: int, total: int) -> None:
        self.phase_label.setText(phase)
        self.progress.setValue(int(1000 * done / total) if total else 0)
        self.progress.setFormat(f"{phase} %p%")

    def set_compact(self, compact: bool) -> None:
        """The compact form: smaller state word, the reason on one line, no counts or
        details; for small screens and big stations."""
        self.compact = compact
        if compact:
            self.setMinimumSize(COMPACT_MIN_WIDTH, COMPACT_MIN_HEIGHT)
        else:
            self.setMinimumSize(TILE_MIN_WIDTH, TILE_MIN_HEIGHT)
        _bold(self.state_label, 13 if compact else 20)
        _bold(self.title, 10 if compact else 12)
        self.result_label.setWordWrap(not compact)
        self.counts_label.setVisible(not compact)
        self.details_label.setVisible(not compact)
        self.connection_label.setVisible(not compact)
        self.phase_label.setVisible(not compact)  # the progress bar names the phase
        for button in (self.start_button, self.stop_button):
            button.setFixedSize(QSize(18, 18) if compact else button.sizeHint())

    def show_result(self, result: DeviceResult, text: str) -> None:
        """Show what the cycle did, in words and a state that says which kind of
        result it is; only production results move the site's counts."""
        state, word = _state_of(result)
        self.result_label.setText(text)
        self.result_label.setToolTip(text)
        facts = [f"ID {result.chip_id}"] if result.chip_id else []
        if result.timings:
            facts.append(f"{sum(result.timings.values()):.2f} s")
        self.details_label.setText(" · ".join(facts))
        self.set_state(state, word=word)
        if result.passed:
            self.progress.setValue(1000)
        else:  # no stale "erase 84%" after a failure or a stop
            self.progress.setValue(0)
            self.progress.setFormat("")
        if counts_for_production(result):
            self.tally = self.tally.add(result.status)
            self._update_counts()

    def show_serial(self, serial: str) -> None:
        """The serial number the last part was given."""
        text = self.details_label.text()
        self.details_label.setText(f"{text} · serial {serial}" if text else f"serial {serial}")

    @property
    def passed(self) -> int:
        return self.tally.passed

    @property
    def failed(self) -> int:
        return self.tally.rejected

    def _update_counts(self) -> None:
        pct = self.tally.yield_percent
        yield_text = f"{pct:.0f}%" if pct is not None else "–"
        self.counts_label.setText(f"{self.passed} pass · {self.failed} fail · {yield_text}")


def _state_of(result: DeviceResult) -> tuple[str, str | None]:
    """(tile state, the word it shows when not the state's own)."""
    if result.status == CANCELLED:
        return "aborted", None
    if result.failed_step == "socket":
        return "empty", None
    if result.status == ERROR:
        return "error", None
    if result.status == LINK_LOST:
        return "fail", "LINK LOST"
    if result.action != "program":
        return ("service", SERVICE_WORDS.get(result.action)) if result.passed else ("fail", None)
    return ("pass" if result.passed else "fail"), None


class SiteGrid(QWidget):
    startRequested = Signal(int)
    stopRequested = Signal(int)
    siteSelected = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tiles: dict[int, SiteTile] = {}
        self._layout = QGridLayout(self)
        self._layout.setSpacing(8)
        self._columns = 0
        self.compact = False

    def set_sites(self, sites: list[int]) -> None:
        for tile in self.tiles.values():
            tile.setParent(None)
            tile.deleteLater()
        self.tiles = {}
        for site in sites:
            tile = SiteTile(site, self)
            tile.startRequested.connect(self.startRequested)
            tile.stopRequested.connect(self.stopRequested)
            tile.selected.connect(self.siteSelected)
            tile.moveFocus.connect(self._move_focus)
            tile.set_compact(self.compact)
            self.tiles[site] = tile
        self._columns = 0
        self._relayout()

    def _relayout(self) -> None:
        """Full tiles when they all fit the visible area, else compact ones; as many
        columns as fit (at most 4 full or 8 compact), rows fill down."""
        n = len(self.tiles)
        if not n:
            return
        parent = self.parentWidget()
        area = parent.size() if parent is not None else self.size()
        gap = self._layout.spacing()
        columns = self._columns_for(n, area.width(), TILE_MIN_WIDTH, 8 if n > 16 else 4)
        rows = -(-n // columns)
        compact = rows * (TILE_MIN_HEIGHT + gap) > area.height()
        if compact:
            columns = self._columns_for(n, area.width(), COMPACT_MIN_WIDTH, 8)
        if compact != self.compact:
            self.compact = compact
            for tile in self.tiles.values():
                tile.set_compact(compact)
        if columns == self._columns:
            return
        self._columns = columns
        for tile in self.tiles.values():
            self._layout.removeWidget(tile)
        for i, tile in enumerate(self.tiles.values()):
            self._layout.addWidget(tile, i // columns, i % columns)
        for column in range(self._layout.columnCount()):  # equal widths, whatever the text
            self._layout.setColumnStretch(column, 1 if column < columns else 0)

    def _move_focus(self, site: int, dx: int, dy: int) -> None:
        order = list(self.tiles)
        index = order.index(site) + dx + dy * max(1, self._columns)
        if 0 <= index < len(order):
            self.tiles[order[index]].setFocus(Qt.FocusReason.OtherFocusReason)

    def _columns_for(self, n: int, width: int, tile_width: int, most: int) -> int:
        fit = max(1, (width - 8) // (tile_width + self._layout.spacing()))
        return max(1, min(n, fit, most))

    def resizeEvent(self, event: object) -> None:
        super().resizeEvent(event)  # type: ignore[arg-type]
        self._relayout()

    def tile(self, site: int) -> SiteTile:
        return self.tiles[site]
