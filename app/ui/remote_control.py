"""The window under remote control: the API (app.api.server) drives the window's own
production controller, so an operator sees what a MES or a handler does.

HTTP requests arrive on the server's thread; every action runs in the GUI thread
(``GuiCall``) and the request waits for its outcome. Events come from the controller's
engine events, as the window's own views get them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from PySide6.QtCore import QObject, Qt, QThread, Signal

from app.core.job_files import load_job
from app.engine.production_log import default_station_name
from app.engine.station_service import EventHub, HubEvents, ServiceError, find_job, list_jobs
from app.ui.production_controller import ProductionController

T = TypeVar("T")
GUI_TIMEOUT_S = 60.0


class GuiCall(QObject):
    """Runs a callable in the GUI thread for another thread and hands back its result."""

    _post = Signal(object)

    def __init__(self) -> None:
        super().__init__()
        self._post.connect(self._run, Qt.ConnectionType.QueuedConnection)

    def _run(self, job: Callable[[], None]) -> None:
        job()

    def __call__(self, fn: Callable[[], T]) -> T:
        if QThread.currentThread() is self.thread():
            return fn()
        done = threading.Event()
        box: dict[str, Any] = {}

        def job() -> None:
            try:
                box["value"] = fn()
            except BaseException as err:  # handed to the waiting thread
                box["error"] = err
            finally:
                done.set()

        self._post.emit(job)
        if not done.wait(GUI_TIMEOUT_S):
            raise ServiceError("the window did not answer in time")
        if "error" in box:
            raise box["error"]
        value: T = box["value"]
        return value


class WindowControl(HubEvents):
    """app.engine.station_service.StationControl over the window's controllers."""

    def __init__(self, production: ProductionController) -> None:
        self.production = production
        self.controller = production.controller
        self.gui = GuiCall()
        self.hub = EventHub()
        self._errors: list[str] = []
        self.controller.engineEvent.connect(self.hub.on_event)
        self.controller.error.connect(self._errors.append)
        self.controller.sitesChanged.connect(self.hub.reset_sites)
        self.hub.reset_sites(list(self.controller.sites))

    @property
    def jobs_dir(self) -> Path | None:
        return self.production.jobs_dir()

    def _last_error(self, fallback: str) -> str:
        return self._errors[-1] if self._errors else fallback

    def status(self) -> dict[str, Any]:
        def read() -> dict[str, Any]:
            c, p = self.controller, self.production
            doc: dict[str, Any] = {
                "station": default_station_name(),
                "running": c.running,
                "job": None,
            }
            if p.loaded is not None and p.prepared is not None:
                production = p.prepared.production
                doc["job"] = {
                    "path": str(p.job_path),
                    "name": p.loaded.job.name,
                    "job_id": production.job_id,
                    "device": p.loaded.job.device_id,
                    "programmer": c.programmer_url,
                    "good": production.good,
                    "failed": production.failed,
                    "remaining": production.remaining,
                }
            return doc

        doc = self.gui(read)
        doc["sites"] = self.hub.site_states()
        return doc

    def jobs(self) -> list[dict[str, Any]]:
        return list_jobs(self.jobs_dir)

    def open_job(
        self, path: str | None = None, barcode: str | None = None, *, allow_unlocked: bool = False
    ) -> dict[str, Any]:
        where = find_job(self.jobs_dir, path, barcode)
        if not allow_unlocked and not load_job(where, check_lock=False).job.locked:
            raise ServiceError(f"{where}: the job is not locked (engineer trial runs only)")
        self._errors.clear()

        def open_() -> bool:
            if self.controller.running:
                raise ServiceError("a run is in progress: stop it before opening another job")
            return self.production.open_job(where)

        if not self.gui(open_):
            raise ServiceError(self._last_error(f"{where}: the window did not open the job"))
        job: dict[str, Any] = self.status()["job"]
        return job

    def start(self, sites: list[int] | None = None) -> None:
        self._errors.clear()

        def start_() -> bool:
            if self.controller.running:
                raise ServiceError("a run is in progress")
            if self.production.prepared is None:
                raise ServiceError("no job is open")
            unknown = sorted(set(sites or []) - set(self.controller.sites))
            if unknown:
                raise ServiceError(f"no site(s) {unknown} on this station")
            self.production.start(sites)
            return bool(self.controller.running)

        if not self.gui(start_):
            raise ServiceError(self._last_error("the window did not start the sites"))

    def stop(self) -> bool:
        def stop_() -> bool:
            running = bool(self.controller.running)
            if running:
                self.controller.stop()
            return running

        return self.gui(stop_)

    def line_sites(self) -> dict[str, list[dict[str, Any]]]:
        """Other stations' sites: the window does not publish to a line (yet)."""
        return {}

    def close(self) -> None:
        self.hub.close()
