"""The workstation window: job setup, site grid, logs, statistics, buffer view.

Holds no programming logic: actions become controller intents, controller signals
become widget updates. Dock layout and window geometry are restored between sessions.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QByteArray, QSettings, QSize, Qt
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence, QResizeEvent
from PySide6.QtWidgets import (
    QComboBox,
    QDockWidget,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMessageBox,
    QScrollArea,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.core.roles import Role, RoleStore, Session
from app.engine.events import CycleFinished
from app.engine.results import DeviceResult
from app.engine.site_description import describe_site
from app.engine.tally import Tally, counts_for_production
from app.ui.buffer_view import BufferView
from app.ui.controller import Controller
from app.ui.device_selector import DeviceSelector
from app.ui.icons import action_icon, app_icon
from app.ui.job_panel import JobPanel
from app.ui.log_model import LEVELS, LogFilter, LogModel, LogRecord
from app.ui.production_controller import ProductionController
from app.ui.production_menu import ProductionMenus
from app.ui.site_grid import SiteGrid
from app.ui.stats_view import StatisticsView

SETTINGS_ORG, SETTINGS_APP = "Socketeer", "Socketeer"
#: (action, label, shortcut) in toolbar order
TOOLBAR = (
    ("start", "Start all", "F5"),
    ("stop", "Stop", "Esc"),
    ("detect", "Detect", "F6"),
    ("read", "Read", "F7"),
    ("verify", "Verify", "F8"),
    ("erase", "Erase", "F9"),
    ("device", "Device…", "Ctrl+D"),
)


class LogPane(QWidget):
    """A filtered view of the shared log model: level, site, search; Ctrl+C copies."""

    def __init__(self, model: LogModel, per_site: bool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.proxy = LogFilter(self)
        self.proxy.setSourceModel(model)
        self.level = QComboBox()
        self.level.addItems(LEVELS)
        self.level.setCurrentText("info")
        self.level.currentTextChanged.connect(self.proxy.set_min_level)
        self.site = QComboBox()
        self.site.setVisible(per_site)
        self.site.currentIndexChanged.connect(
            lambda _i: self.proxy.set_site(self.site.currentData())
        )
        self.search = QLineEdit(placeholderText="search log")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self.proxy.set_text)
        self.view = QTableView()
        self.view.setModel(self.proxy)
        self.view.verticalHeader().hide()
        self.view.verticalHeader().setDefaultSectionSize(20)
        header = self.view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        self.view.setColumnWidth(0, 80)
        self.view.setColumnWidth(1, 45)
        self.view.setColumnWidth(2, 70)
        self.view.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        copy = QAction("Copy", self.view, shortcut=QKeySequence(QKeySequence.StandardKey.Copy))
        copy.triggered.connect(self.copy_selection)
        self.view.addAction(copy)
        model.rowsInserted.connect(lambda *_: self.view.scrollToBottom())
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Level"))
        bar.addWidget(self.level)
        bar.addWidget(self.site)
        bar.addWidget(self.search, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(bar)
        layout.addWidget(self.view)
        if per_site:
            self.proxy.set_site(1)

    def set_sites(self, sites: list[int]) -> None:
        self.site.blockSignals(True)
        self.site.clear()
        for site in sites:
            self.site.addItem(f"Site {site}", site)
        self.site.blockSignals(False)
        self.proxy.set_site(sites[0] if sites else None)

    def show_site(self, site: int) -> None:
        index = self.site.findData(site)
        if index >= 0:
            self.site.setCurrentIndex(index)

    def copy_selection(self) -> None:
        from PySide6.QtWidgets import QApplication

        model = self.proxy.sourceModel()
        assert isinstance(model, LogModel)
        rows = sorted(
            {self.proxy.mapToSource(i).row() for i in self.view.selectionModel().selectedRows()}
        )
        QApplication.clipboard().setText("\n".join(model.record(r).text() for r in rows))


#: side panes' share of the window width, within these bounds (pixels)
SIDE_SHARE, SIDE_MIN, SIDE_MAX = 0.2, 200, 360
#: below this width the docks are re-fitted on every resize (the grid keeps its space)
SMALL_SCREEN_WIDTH = 1400


class MainWindow(QMainWindow):
    def __init__(
        self,
        controller: Controller,
        parent: QWidget | None = None,
        *,
        remember_layout: bool = True,
        session: Session | None = None,
    ) -> None:
        super().__init__(parent)
        self.controller = controller
        if session is None:
            # First start (no engineer password yet): the station is being set up.
            store = RoleStore()
            session = Session(store, Role.ENGINEER if not store.has_password() else Role.OPERATOR)
        self.production = ProductionController(controller, session)
        self.remember_layout = remember_layout
        self.setWindowTitle("Socketeer")
        self.setWindowIcon(app_icon())
        self.resize(1600, 950)
        self.log_model = LogModel()
        self.grid = SiteGrid()
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.grid)
        self.setCentralWidget(scroll)
        self.job = JobPanel()
        self.session_log = LogPane(self.log_model, per_site=False)
        self.site_log = LogPane(self.log_model, per_site=True)
        self.stats = StatisticsView()
        self.buffer = BufferView()
        self.docks = {
            "job": self._dock("Job setup", self.job, Qt.DockWidgetArea.LeftDockWidgetArea),
            "log": self._dock(
                "Session log", self.session_log, Qt.DockWidgetArea.BottomDockWidgetArea
            ),
            "site_log": self._dock(
                "Site log", self.site_log, Qt.DockWidgetArea.BottomDockWidgetArea
            ),
            "stats": self._dock("Statistics", self.stats, Qt.DockWidgetArea.RightDockWidgetArea),
            "buffer": self._dock("Buffer", self.buffer, Qt.DockWidgetArea.RightDockWidgetArea),
        }
        # side panes may shrink (their content scrolls or wraps): the grid comes first
        for pane in (self.job, self.stats, self.buffer):
            pane.setMinimumWidth(SIDE_MIN - 20)
        self.tabifyDockWidget(self.docks["log"], self.docks["site_log"])
        self.tabifyDockWidget(self.docks["stats"], self.docks["buffer"])
        self.docks["log"].raise_()
        self.docks["stats"].raise_()
        self._layout_restored = False
        self._fit_docks()
        self._build_actions()
        self.status_role = QLabel()
        self.status_job = QLabel()
        self.status_count = QLabel()
        self.status_programmer = QLabel()
        self.status_device = QLabel()
        self.status_totals = QLabel()
        for label in (
            self.status_role,
            self.status_job,
            self.status_count,
            self.status_programmer,
            self.status_device,
            self.status_totals,
        ):
            self.statusBar().addPermanentWidget(label)
        self.totals = Tally()  # production results of this session (counts_for_production)
        self.selected_site = 1
        self._buffer_source: object = None
        self._wire()
        self.production_menus = ProductionMenus(self, self.production)
        toolbar_actions = self.toolbar.actions()
        for name, action in self.actions_by_name.items():
            if action in toolbar_actions:  # ours and the Auto-start ProductionMenus adds
                action.setIcon(action_icon(name))
        if remember_layout:
            self._restore_layout()

    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(title.replace(" ", "_").lower())
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _build_actions(self) -> None:
        bar = self.toolbar = self.addToolBar("Main")
        bar.setObjectName("main_toolbar")
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        bar.setIconSize(QSize(24, 24))
        self.actions_by_name: dict[str, QAction] = {}
        for name, text, key in TOOLBAR:
            action = QAction(text, self)
            action.setShortcut(QKeySequence(key))
            action.setToolTip(f"{text} ({key})")
            bar.addAction(action)
            self.actions_by_name[name] = action
        menu = self.menuBar().addMenu("&View")
        for dock in self.docks.values():
            menu.addAction(dock.toggleViewAction())

    def _wire(self) -> None:
        c = self.controller
        acts = self.actions_by_name
        acts["start"].triggered.connect(lambda: self.production.start())
        acts["stop"].triggered.connect(lambda: c.stop())
        # Detect: with a device chosen, check each part's ID against it; without one,
        # name each part from the database.
        acts["detect"].triggered.connect(
            lambda: c.start(action="identify") if c.device is not None else c.detect_parts()
        )
        acts["read"].triggered.connect(lambda: c.start([self.selected_site], action="read"))
        acts["verify"].triggered.connect(lambda: c.start(action="verify"))
        acts["erase"].triggered.connect(self.erase_sites)
        acts["device"].triggered.connect(self.choose_device)
        self.job.deviceRequested.connect(self.choose_device)
        self.job.imageChosen.connect(c.load_image)
        self.job.programmerChosen.connect(c.set_programmer)
        c.programmerRejected.connect(self.job.show_programmer_problem)
        c.imageProblem.connect(self.job.show_image_problem)
        c.programmerAccepted.connect(lambda _url: self.job.clear_programmer_problem())
        self.job.operationToggled.connect(c.set_operation)
        self.job.eraseModeChosen.connect(c.set_erase_mode)
        self.grid.startRequested.connect(lambda s: self.production.start([s]))
        self.grid.stopRequested.connect(lambda s: c.stop([s]))
        self.grid.siteSelected.connect(self._select_site)
        c.sitesChanged.connect(self._sites_changed)
        c.siteStarted.connect(lambda s: self.grid.tile(s).set_state("busy", "starting"))
        c.sitePhase.connect(lambda s, p: self.grid.tile(s).set_progress(p, 0, 0))
        c.siteProgress.connect(lambda s, p, d, t: self.grid.tile(s).set_progress(p, d, t))
        c.siteFinished.connect(self._site_finished)
        c.engineEvent.connect(self._engine_event)
        c.siteIdle.connect(lambda s: self.grid.tile(s).set_state("idle", "count reached"))
        c.log.connect(self._log)
        c.jobChanged.connect(self._job_changed)
        c.runningChanged.connect(self._running_changed)
        c.bufferRead.connect(self._buffer_read)
        c.error.connect(self._error)

    # -- reactions --------------------------------------------------------------------

    def erase_sites(self) -> bool:
        """Erase the parts on every idle site, after the engineer confirms which."""
        c = self.controller
        sites = c.idle_sites
        if not sites or not c.ready_to_start():
            return False
        device = f"{c.device.vendor} {c.device.part}" if c.device else "the part"
        answer = QMessageBox.question(
            self,
            "Erase parts",
            f"Erase the whole {device} on site{'s' if len(sites) > 1 else ''}"
            f" {', '.join(map(str, sites))}?\n\nEverything on the part is lost.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel,
        )
        if answer != QMessageBox.StandardButton.Yes:
            c.log.emit(None, "info", "erase cancelled")
            return False
        c.start(sites, action="erase")
        return True

    def choose_device(self) -> None:
        current = self.controller.device.id if self.controller.device else None
        dialog = DeviceSelector(self.controller.database, current, self)
        if dialog.exec() and dialog.selected_id:
            self.controller.set_device(dialog.selected_id)

    def _select_site(self, site: int) -> None:
        self.selected_site = site
        self.site_log.show_site(site)
        self.statusBar().showMessage(f"site {site} selected", 3000)

    def _sites_changed(self, sites: list[int]) -> None:
        self.grid.set_sites(sites)
        programmer = self.controller.programmer
        for site in programmer.sites if programmer is not None else ():
            if site.index in self.grid.tiles:
                self.grid.tiles[site.index].connection_label.setText(describe_site(site))
        self.site_log.set_sites(sites)
        self.stats.reset()
        self.totals = Tally()
        self._update_status()

    def _site_finished(self, site: int, result: DeviceResult) -> None:
        self.grid.tile(site).show_result(result, _result_text(result))
        if counts_for_production(result):
            self.totals = self.totals.add(result.status)
            self.stats.add_result(
                site, result.passed, sum(result.timings.values()), time.monotonic()
            )
        self._update_status()

    def _engine_event(self, event: object) -> None:
        if isinstance(event, CycleFinished) and event.serial and event.site in self.grid.tiles:
            self.grid.tile(event.site).show_serial(event.serial)

    def _log(self, site: int | None, level: str, message: str) -> None:
        self.log_model.append(LogRecord(time.time(), site, level, message))

    def _job_changed(self) -> None:
        self.job.show_job(self.controller)
        loaded = self.controller.image
        if loaded is not None and loaded is not self._buffer_source:
            # Only a new image reloads the buffer, not every change of an operation.
            self._buffer_source = loaded
            self.buffer.set_image(loaded.image, title=str(loaded.path))
        self._update_status()

    def _running_changed(self, running: bool) -> None:
        engineer = self.production.role == Role.ENGINEER
        for name in ("detect", "read", "verify", "erase", "device"):
            self.actions_by_name[name].setEnabled(engineer and not running)
        self.job.setEnabled(engineer and not running)
        if not running:
            self.stats.draw_pending()  # the last results now, not half a second later

    def _buffer_read(self, site: int, data: bytes) -> None:
        self.buffer.set_buffer(data, 0, f"read from site {site}")
        loaded = self.controller.image
        if loaded is not None:
            expected = loaded.image.read(0, len(data), 0xFF)
            self.buffer.set_compare(expected, f"image {loaded.path.name}")
        self.docks["buffer"].raise_()

    def _error(self, message: str) -> None:
        self.statusBar().showMessage(message, 10000)

    def _update_status(self) -> None:
        c = self.controller
        self.status_programmer.setText(f"Programmer: {c.programmer_url}")
        dev = c.device
        self.status_device.setText(f"Device: {dev.vendor} {dev.part}" if dev else "Device: none")
        totals = self.totals
        pct = totals.yield_percent
        yield_text = f" ({pct:.1f}%)" if pct is not None else ""
        failed = totals.rejected
        self.status_totals.setText(f"Pass {totals.passed}  Fail {failed}{yield_text}")

    # -- layout persistence -----------------------------------------------------------

    def _restore_layout(self) -> None:
        settings = QSettings(SETTINGS_ORG, SETTINGS_APP)
        geometry = settings.value("window/geometry")
        state = settings.value("window/state")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        if isinstance(state, QByteArray):
            self._layout_restored = self.restoreState(state)

    def save_layout(self) -> None:
        settings = QSettings(SETTINGS_ORG, SETTINGS_APP)
        settings.setValue("window/geometry", self.saveGeometry())
        settings.setValue("window/state", self.saveState())

    def _fit_docks(self) -> None:
        """The site grid gets the space first: the side panes take about a fifth of the
        width each (200-360 px) and the log about a fifth of the height (110-230 px)."""
        side = int(min(SIDE_MAX, max(SIDE_MIN, self.width() * SIDE_SHARE)))
        self.resizeDocks(
            [self.docks["job"], self.docks["stats"]], [side, side], Qt.Orientation.Horizontal
        )
        log_height = int(min(230, max(110, self.height() * 0.22)))
        self.resizeDocks([self.docks["log"]], [log_height], Qt.Orientation.Vertical)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        small = event.size().width() < SMALL_SCREEN_WIDTH or event.size().height() < 800
        if small or not self._layout_restored:
            self._fit_docks()  # the operator's grid first; a saved layout wins on big screens

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.remember_layout:
            self.save_layout()
        self.controller.stop()
        self.controller.shutdown()
        super().closeEvent(event)


def _result_text(result: DeviceResult) -> str:
    if result.passed:
        return result.message
    step = result.failed_step or ""
    if not step or result.message.startswith(step):
        return result.message
    return f"{step}: {result.message}"
