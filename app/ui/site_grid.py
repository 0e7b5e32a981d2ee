"""Site grid: one tile per site, its state colour, phase, progress, last result, counts."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
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
#: states drawn with another state's icon
ICON_OF = {"error": "fail"}
#: logical pixels of the state icon beside the state word (about the word's height)
STATE_ICON_SIZE = 26


class SiteTile(QFrame):
    startRequested = Signal(int)
    stopRequested = Signal(int)
    selected = Signal(int)

    def __init__(self, site: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.site = site
        self.state = "idle"
        self.tally = Tally()  # production results only (counts_for_production)
        self.setObjectName(f"site-tile-{site}")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setMinimumSize(TILE_MIN_WIDTH, 170)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

        self.title = QLabel(f"Site {site}")
        self.title.setStyleSheet("font-weight: bold; font-size: 12pt;")
        self.state_label = QLabel()
        self.state_label.setObjectName("state")
        self.state_label.setStyleSheet("font-weight: bold; font-size: 20pt;")
        self.state_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.state_icon = QLabel()
        self.state_icon.setObjectName("state_icon")
        self.state_icon.setFixedSize(STATE_ICON_SIZE, STATE_ICON_SIZE)
        self.start_button = QToolButton(text="▶")
        self.start_button.setToolTip(f"Start site {site}")
        self.start_button.clicked.connect(lambda: self.startRequested.emit(self.site))
        self.stop_button = QToolButton(text="■")
        self.stop_button.setToolTip(f"Stop site {site}")
        self.stop_button.clicked.connect(lambda: self.stopRequested.emit(self.site))
        self.phase_label = QLabel("")
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.setRange(0, 1000)
        self.result_label = QLabel("no result yet")
        self.result_label.setWordWrap(True)
        self.result_label.setObjectName("result")
        self.counts_label = QLabel()

        top = QHBoxLayout()
        top.addWidget(self.title)
        top.addStretch(1)
        top.addWidget(self.start_button)
        top.addWidget(self.stop_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        state_row = QHBoxLayout()
        state_row.addStretch(1)
        state_row.addWidget(self.state_icon)
        state_row.addWidget(self.state_label)
        state_row.addStretch(1)
        layout.addLayout(state_row)
        layout.addWidget(self.phase_label)
        layout.addWidget(self.progress)
        layout.addWidget(self.result_label, 1)
        layout.addWidget(self.counts_label)
        self.set_state("idle")
        self._update_counts()

    def mousePressEvent(self, event: object) -> None:
        self.selected.emit(self.site)
        super().mousePressEvent(event)  # type: ignore[arg-type]

    def set_state(self, state: str, phase: str = "", word: str | None = None) -> None:
        self.state = state
        background, text = STATE_COLOURS[state]
        self.setStyleSheet(
            f"SiteTile {{ background: {background}; border: 2px solid {text};"
            f" border-radius: 6px; }} QLabel {{ color: {text}; }}"
        )
        self.state_label.setText(word or STATE_WORDS[state])
        size = QSize(STATE_ICON_SIZE, STATE_ICON_SIZE)
        icon = state_icon(ICON_OF.get(state, state))
        self.state_icon.setPixmap(icon.pixmap(size, self.devicePixelRatioF()))
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

    def show_result(self, result: DeviceResult, text: str) -> None:
        """Show what the cycle did, in words and a state that says which kind of
        result it is; only production results move the site's counts."""
        state, word = _state_of(result)
        self.result_label.setText(text)
        self.set_state(state, word=word)
        if result.passed:
            self.progress.setValue(1000)
        else:  # no stale "erase 84%" after a failure or a stop
            self.progress.setValue(0)
            self.progress.setFormat("")
        if counts_for_production(result):
            self.tally = self.tally.add(result.status)
            self._update_counts()

    @property
    def passed(self) -> int:
        return self.tally.passed

    @property
    def failed(self) -> int:
        return self.tally.judged - self.tally.passed

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
            self.tiles[site] = tile
        self._columns = 0
        self._relayout()

    def _relayout(self) -> None:
        """As many columns as fit (at most 4, or 8 for big stations), rows fill down."""
        n = len(self.tiles)
        fit = max(1, (self.width() - 8) // (TILE_MIN_WIDTH + self._layout.spacing()))
        columns = max(1, min(n, fit, 8 if n > 16 else 4))
        if columns == self._columns:
            return
        self._columns = columns
        for tile in self.tiles.values():
            self._layout.removeWidget(tile)
        for i, tile in enumerate(self.tiles.values()):
            self._layout.addWidget(tile, i // columns, i % columns)

    def resizeEvent(self, event: object) -> None:
        super().resizeEvent(event)  # type: ignore[arg-type]
        self._relayout()

    def tile(self, site: int) -> SiteTile:
        return self.tiles[site]
