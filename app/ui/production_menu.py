"""The window's production menus: Job (new/open/save/export, serialization, first
article) and Station (engineer/operator mode, production log export, socket-wear reset),
the Auto-start toggle, and what each role may touch."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QDialog, QFileDialog, QInputDialog, QLineEdit, QMessageBox

from app.core.errors import SocketeerError
from app.core.fileio import atomic_writer
from app.core.roles import Role
from app.engine.hw_diagnosis import run_diagnosis
from app.engine.production_log import ExportFormat, ProductionLog
from app.engine.socket_wear import SocketWear
from app.ui.password_dialog import NewPasswordDialog
from app.ui.production_controller import ProductionController
from app.ui.production_dialogs import FirstArticleDialog, SerializationDialog
from app.ui.wear_dialog import SiteWear, WearResetDialog

if TYPE_CHECKING:
    from app.api.runner import ApiServer
    from app.ui.main_window import MainWindow
    from app.ui.remote_control import WindowControl

JOB_FILTER = "Socketeer jobs (*.json *.sjob);;All files (*)"
DEFAULT_API_PORT = 8750
#: actions an operator never sees enabled
ENGINEER_ONLY = (
    "detect",
    "read",
    "verify",
    "erase",
    "device",
    "job_save",
    "job_save_as",
    "job_export",
    "serialization",
    "first_article",
    "wear_reset",
)


class ProductionMenus:
    def __init__(self, window: MainWindow, production: ProductionController) -> None:
        self.window = window
        self.production = production
        acts = window.actions_by_name
        job_menu = window.menuBar().addMenu("&Job")
        for name, text, slot in (
            ("job_open", "Open job…", self.open_job),
            ("job_save", "Save job", self.save_job),
            ("job_save_as", "Save job as…", self.save_job_as),
            ("job_export", "Export job package…", self.export_job),
            ("serialization", "Serialization…", self.edit_serialization),
            ("first_article", "First article and lock…", self.first_article),
        ):
            acts[name] = QAction(text, window)
            acts[name].triggered.connect(slot)
            job_menu.addAction(acts[name])
        station = window.menuBar().addMenu("&Station")
        for name, text, slot in (
            ("engineer", "Engineer mode…", self.engineer_mode),
            ("operator", "Operator mode…", self.operator_mode),
            ("log_export", "Export production log…", self.export_log),
            ("wear_reset", "Reset socket wear…", self.reset_socket_wear),
            ("hw_diagnosis", "Hardware diagnosis…", self.hardware_diagnosis),
        ):
            acts[name] = QAction(text, window)
            acts[name].triggered.connect(slot)
            station.addAction(acts[name])
        remote = QAction("Remote control (API)", window, checkable=True)
        remote.setToolTip(
            "Let a MES or a handler drive this window over HTTP on 127.0.0.1"
            f" (port $SOCKETEER_API_PORT, default {DEFAULT_API_PORT})"
        )
        remote.toggled.connect(self.set_remote_control)
        station.addAction(remote)
        acts["remote_control"] = remote
        self.remote: tuple[ApiServer, WindowControl] | None = None
        scan = self.scan = QLineEdit(window)
        scan.setObjectName("job_scan")
        scan.setPlaceholderText("Scan a job barcode")
        scan.setToolTip(
            "Scan (or type) a job's barcode and press Enter: the job of that name in the job"
            " library ($SOCKETEER_JOBS_DIR, else the open job's folder) opens"
        )
        scan.setClearButtonEnabled(True)
        scan.setMaximumWidth(220)
        scan.returnPressed.connect(self.open_scanned)
        window.toolbar.addWidget(scan)
        auto = QAction("Auto-start", window, checkable=True)
        auto.setToolTip("Start a site when a part is inserted in its socket")
        auto.toggled.connect(production.set_auto_start)
        window.toolbar.addAction(auto)
        acts["auto_start"] = auto
        production.roleChanged.connect(lambda *_: self.apply_role())
        production.countChanged.connect(self._count_changed)
        production.jobChanged.connect(self._job_changed)
        self.apply_role()

    # -- remote control -----------------------------------------------------------------

    def set_remote_control(self, on: bool) -> None:
        """Serve the API over this window (tokens from the environment, as `serve`)."""
        if self.remote is not None:
            server, control = self.remote
            self.remote = None
            server.stop()
            control.close()
            self.production.controller.log.emit(None, "info", "remote control off")
        if not on:
            return
        # the HTTP stack loads when the switch is first used, not with the window
        from app.api.runner import ApiServer
        from app.api.server import build_app, load_tokens
        from app.ui.remote_control import WindowControl

        try:
            tokens = load_tokens(None)
            port = int(os.environ.get("SOCKETEER_API_PORT", DEFAULT_API_PORT))
            control = WindowControl(self.production)
            server = ApiServer(build_app(control, tokens), port=port)
            server.start()
        except (SocketeerError, ValueError) as err:
            self.production.controller.error.emit(f"remote control: {err}")
            self.window.actions_by_name["remote_control"].setChecked(False)
            return
        self.remote = (server, control)
        self.production.controller.log.emit(None, "info", f"remote control on {server.url}")

    # -- roles ------------------------------------------------------------------------

    def apply_role(self) -> None:
        engineer = self.production.role == Role.ENGINEER
        acts = self.window.actions_by_name
        for name in ENGINEER_ONLY:
            acts[name].setEnabled(engineer)
        self.window.job.setEnabled(engineer and not self.window.controller.running)
        who = self.production.session.operator_name
        role = "Engineer" if engineer else f"Operator {who or ''}".strip()
        self.window.status_role.setText(role)

    def engineer_mode(self) -> None:
        store = self.production.session.store
        if not store.has_password():
            new, ok = QInputDialog.getText(
                self.window,
                "Engineer password",
                "Set the station's engineer password (6+ characters):",
                QLineEdit.EchoMode.Password,
            )
            if not ok:
                return
            try:
                store.set_password(new)
            except SocketeerError as err:
                self.window.controller.error.emit(str(err))
                return
            self.window.controller.log.emit(None, "info", "engineer password set")
        password, ok = QInputDialog.getText(
            self.window, "Engineer mode", "Engineer password:", QLineEdit.EchoMode.Password
        )
        if ok:
            self.production.engineer_mode(password)

    def first_start(self) -> None:
        """Ask for the engineer password the station will use from now on (twice, with
        its rules: a typo here would lock the station's settings)."""
        dialog = NewPasswordDialog("First start: set the station's engineer password.", self.window)
        if not self.ask(dialog):
            self.window.controller.error.emit(
                "no engineer password yet: set one with Station > Engineer mode"
            )
            return
        try:
            self.production.session.store.set_password(dialog.password)
        except SocketeerError as err:
            self.window.controller.error.emit(str(err))
            return
        self.window.controller.log.emit(None, "info", "engineer password set")

    @staticmethod
    def ask(dialog: QDialog) -> bool:
        """Run a modal dialog; True when accepted (tests replace this)."""
        return dialog.exec() == QDialog.DialogCode.Accepted

    def operator_mode(self) -> None:
        name, ok = QInputDialog.getText(self.window, "Operator mode", "Operator name:")
        if ok:
            self.production.operator_mode(name)

    # -- jobs -------------------------------------------------------------------------

    def open_scanned(self) -> None:
        """A scanner types the barcode and Enter; the field is cleared for the next."""
        text = self.scan.text().strip()
        self.scan.clear()
        if text:
            self.production.open_scanned(text)

    def open_job(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.window, "Open job", "", JOB_FILTER)
        if path:
            self.production.open_job(path)

    def save_job(self) -> None:
        if self.production.job_path is None or (
            self.production.loaded is not None and self.production.loaded.job.locked
        ):
            self.save_job_as()
        else:
            self.production.save_job(self.production.job_path)

    def save_job_as(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self.window, "Save job", "job.json", JOB_FILTER)
        if path:
            self.production.save_job(path)

    def export_job(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self.window, "Export job package", "job.sjob", JOB_FILTER
        )
        if path:
            self.production.export_job(path)

    def edit_serialization(self) -> None:
        dialog = SerializationDialog(self.production.serialization, self.window)
        if dialog.exec():
            self.production.set_serialization(dialog.config)

    def first_article(self) -> None:
        FirstArticleDialog(self.production, self.window).exec()

    def hardware_diagnosis(self) -> None:
        """What keeps this computer from using its programmers (the engine's findings, as
        `socketeer hw diagnose` prints them), shown in a dialog."""
        findings = run_diagnosis()
        lines = []
        for finding in findings:
            lines.append(f"{finding.level.upper()}: {finding.text}")
            lines += [f"    fix: {fix}" for fix in finding.fixes]
        problems = sum(1 for f in findings if f.level == "problem")
        lines.append(f"{problems} problem(s) found" if problems else "no problems found")
        text = "\n".join(lines)
        self.window.controller.log.emit(None, "info", f"hardware diagnosis: {lines[-1]}")
        box = QMessageBox(
            QMessageBox.Icon.Warning if problems else QMessageBox.Icon.Information,
            "Hardware diagnosis",
            lines[-1],
            QMessageBox.StandardButton.Close,
            self.window,
        )
        box.setDetailedText(text)
        self.show(box)

    @staticmethod
    def show(box: QMessageBox) -> None:
        """Show a message box (tests replace this)."""
        box.exec()

    def export_log(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self.window,
            "Export production log",
            "production.csv",
            "CSV (*.csv);;JSON Lines (*.jsonl)",
        )
        if path:
            self.write_log(Path(path))

    def write_log(self, path: Path) -> int:
        fmt: ExportFormat = "jsonl" if path.suffix.lower() in (".jsonl", ".ndjson") else "csv"
        try:
            with ProductionLog() as log, atomic_writer(path, text=True) as stream:
                count = log.export(stream, fmt)
        except (SocketeerError, OSError) as err:
            self.window.controller.error.emit(f"{path}: {err}")
            return 0
        self.window.controller.log.emit(None, "info", f"production log: {count} records -> {path}")
        return count

    def reset_socket_wear(self) -> None:
        """Ask which sites' sockets were replaced, then reset their insertion counts
        (recorded with who and why) and say so in the log."""
        c = self.window.controller
        if self.production.role != Role.ENGINEER:  # the action is disabled too
            c.error.emit("not allowed in operator mode: reset socket wear")
            return
        if c.station is None:
            c.error.emit("open a programmer first: socket wear is counted per site")
            return
        keys = {n: c.station.socket_key(n) for n in c.station.site_numbers}
        try:
            with SocketWear() as wear:
                counts = wear.all()
            sites = [SiteWear(n, k, counts.get(k, 0), k in counts) for n, k in keys.items()]
            dialog = WearResetDialog(
                sites, self.production.session.operator_name or "", self.window
            )
            if not dialog.exec():
                return
            chosen = dialog.chosen
            with SocketWear() as wear:
                resets = wear.reset_many(
                    [s.key for s in chosen], dialog.by.text(), dialog.reason.text()
                )
        except SocketeerError as err:
            c.error.emit(str(err))
            return
        for site, reset in zip(chosen, resets, strict=True):
            c.log.emit(
                site.site,
                "info",
                f"socket wear of site {site.site} reset by {reset.by}: {reset.previous_count}"
                f" -> 0 insertions ({reset.reason})",
            )

    # -- status -----------------------------------------------------------------------

    def _count_changed(self, good: int, remaining: object) -> None:
        left = f", {remaining} to go" if remaining is not None else ""
        self.window.status_count.setText(f"Job: {good} good{left}")

    def _job_changed(self) -> None:
        loaded = self.production.loaded
        if loaded is None:
            return
        job = loaded.job
        state = f"locked by {job.lock.approved_by}" if job.lock else "unlocked"
        self.window.status_job.setText(f"Job {job.name} ({state})")
