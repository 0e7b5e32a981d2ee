"""Production on top of the Controller: roles, job files, first article and locking,
serialized runs with count-down and auto-start on insertion.

Everything that decides lives in the engine (app.engine.job_setup / production /
first_article) and app.core (job, roles); this object only sequences it for the window
and hands each production cycle to its site's worker, like any other cycle.
"""

from __future__ import annotations

import os
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from app.core.checksums import checksum
from app.core.errors import SocketeerError
from app.core.formats import LoadedImage
from app.core.job import (
    ExpectedChecksum,
    Job,
    LoadedJob,
    export_job,
    load_job,
    lock_job,
    reference_image,
    save_job,
)
from app.core.roles import Role, RoleChange, Session
from app.engine.events import CycleFinished
from app.engine.first_article import FirstArticleOutcome, run_first_article
from app.engine.job_checks import check_serialization
from app.engine.job_setup import PreparedJob, prepare_job
from app.engine.production_log import default_station_name
from app.engine.serialization import SerialConfig, serial_range
from app.engine.station import Emit
from app.engine.station_service import JOBS_DIR_ENV, SitePublisher, find_job, site_change
from app.ui.controller import Controller


class ProductionController(QObject):
    roleChanged = Signal(str, str)
    jobChanged = Signal()
    countChanged = Signal(int, object)
    firstArticleDone = Signal(object)

    def __init__(self, controller: Controller, session: Session | None = None) -> None:
        super().__init__(controller)
        self.controller = controller
        self.session = session or Session()
        self.session.on_change.append(self._role_changed)
        self.loaded: LoadedJob | None = None
        self.job_path: Path | None = None
        #: publishes the sites to a line's shared log (a job on a shared database)
        self._publisher: SitePublisher | None = None
        self.serialization: dict[str, Any] | None = None
        self.count_limit: int | None = None
        self.prepared: PreparedJob | None = None
        self.outcome: FirstArticleOutcome | None = None
        controller.engineEvent.connect(self._on_engine_event)
        controller.sitesChanged.connect(self._attach)
        self.firstArticleDone.connect(self._remember_outcome)
        self._auto_stops: dict[int, threading.Event] = {}  # site -> ends its loop

    # -- roles ------------------------------------------------------------------------

    @property
    def role(self) -> Role:
        return self.session.role

    def engineer_mode(self, password: str) -> bool:
        if not self.session.switch_to_engineer(password):
            self.controller.error.emit("wrong engineer password")
            self.controller.log.emit(None, "warning", "engineer mode refused: wrong password")
            return False
        return True

    def operator_mode(self, name: str) -> bool:
        try:
            self.session.switch_to_operator(name)
        except SocketeerError as err:
            self.controller.error.emit(str(err))
            return False
        return True

    def _role_changed(self, change: RoleChange) -> None:
        if self.prepared is not None:  # the records name who is at the station now
            self.prepared.production.operator = change.operator_name or change.new_role.value
        who = f" ({change.operator_name})" if change.operator_name else ""
        self.controller.log.emit(
            None, "info", f"role: {change.old_role.value} -> {change.new_role.value}{who}"
        )
        self.roleChanged.emit(change.new_role.value, change.operator_name or "")

    def _allowed(self, action: str) -> bool:
        if self.session.can(action):
            return True
        self.controller.error.emit(
            f"not allowed in {self.role.value} mode: {action.replace('_', ' ')}"
        )
        return False

    # -- jobs -------------------------------------------------------------------------

    def save_job(self, path: str | Path, name: str | None = None) -> bool:
        """Save the window's current settings as a job (engineer)."""
        if not self._allowed("edit_job"):
            return False
        c = self.controller
        if c.device is None or c.image is None:
            c.error.emit("choose a device and load an image before saving a job")
            return False
        path = Path(path)
        try:
            ref = reference_image(c.image.path, path, c.image.format)
            options = c.options
            spec_exclude: tuple[tuple[int, int], ...] = ()
            if self.serialization is not None:
                spec_exclude = (serial_range(SerialConfig.from_json(self.serialization)),)
            expected = ExpectedChecksum("crc32", "", exclude_serial=bool(spec_exclude))
            value = checksum(ref.image, expected.spec(exclude=spec_exclude))
            job = Job(
                name=name or path.stem,
                device_id=c.device.id,
                image=ref.ref,
                operations=options.operations(),
                erase_mode=options.erase_mode,
                programmer=c.programmer_url,
                serialization=self.serialization,
                checksum=replace(expected, value=value),
                count_limit=self.count_limit,
                created_by=self.session.operator_name or "engineer",
            )
            save_job(job, path)
        except (SocketeerError, ValueError) as err:
            c.error.emit(str(err))
            return False
        c.log.emit(None, "info", f"job saved: {path}")
        return self.open_job(path)

    def open_job(self, path: str | Path) -> bool:
        c = self.controller
        try:
            loaded = load_job(path)
        except SocketeerError as err:
            c.error.emit(str(err))
            c.log.emit(None, "error", str(err))
            return False
        if not loaded.job.locked and not self._allowed("open_unlocked_job"):
            c.error.emit(f"{path}: operators may open only locked jobs")
            return False
        if c.running:
            c.error.emit("stop the running sites before opening another job")
            return False
        self.loaded, self.job_path = loaded, Path(path)
        self.serialization = loaded.job.serialization
        self.count_limit = loaded.job.count_limit
        job = loaded.job
        c.operations.update(job.operations)
        c.erase_mode = job.erase_mode if job.erase_mode != "none" else "auto"
        c.programmer_url = job.programmer  # set first: choosing the device opens it
        if not c.set_device(job.device_id):
            return False
        if not self._adopt_image(loaded):
            return False
        state = f"locked by {job.lock.approved_by}" if job.lock else "unlocked"
        c.log.emit(None, "info", f"job opened: {path} ({state})")
        return self._prepare()

    def jobs_dir(self) -> Path | None:
        """The job library: $SOCKETEER_JOBS_DIR (a station's or a shared folder), else the
        folder of the job open now."""
        configured = os.environ.get(JOBS_DIR_ENV)
        if configured:
            return Path(configured)
        return self.job_path.parent if self.job_path is not None else None

    def open_scanned(self, text: str) -> bool:
        """Open the job a scanned barcode names (its name or file name in the library)."""
        try:
            path = find_job(self.jobs_dir(), None, text)
        except SocketeerError as err:
            self.controller.error.emit(str(err))
            return False
        return self.open_job(path)

    def _adopt_image(self, loaded: LoadedJob) -> bool:
        """Use the job's own (hash-checked) image, even when it came from a package."""
        c = self.controller
        device = c.device
        assert device is not None  # open_job() chose it just before
        try:
            loaded.image.check_within(*device.address_range, device.part)
        except SocketeerError as err:
            c.error.emit(str(err))
            return False
        c.set_image(
            LoadedImage(
                loaded.image,
                loaded.job.image.format,
                loaded.image_path or Path(loaded.job.image.path),
            )
        )
        return True

    def _prepare(self) -> bool:
        c = self.controller
        if c.station is None or self.loaded is None or c.device is None:
            return False
        try:
            self.prepared = prepare_job(
                self.loaded,
                c.device,
                c.database,
                operator=self.session.operator_name or self.role.value,
            )
        except SocketeerError as err:
            c.error.emit(str(err))
            return False
        self._attach()
        if self._publisher is not None:
            self._publisher.close()
        log = self.prepared.production.log
        self._publisher = SitePublisher(log, default_station_name()) if log.shared else None
        if self.prepared.recovered_serials:
            c.log.emit(
                None,
                "warning",
                f"voided {len(self.prepared.recovered_serials)} serial(s)"
                " left reserved by an interrupted run",
            )
        self.jobChanged.emit()
        production = self.prepared.production
        self.countChanged.emit(production.good, production.remaining)
        return True

    def _attach(self, _sites: object = None) -> None:
        """Give the (re)opened station the job's production."""
        station = self.controller.station
        if station is not None:
            station.production = self.prepared.production if self.prepared else None

    def export_job(self, path: str | Path) -> bool:
        if self.loaded is None:
            self.controller.error.emit("open or save a job first")
            return False
        try:
            export_job(self.loaded, path)
        except SocketeerError as err:
            self.controller.error.emit(str(err))
            return False
        self.controller.log.emit(None, "info", f"job exported: {path}")
        return True

    def set_serialization(self, config: dict[str, Any] | None) -> bool:
        if not self._allowed("edit_job"):
            return False
        if config is not None:
            try:
                if self.controller.device is None:
                    SerialConfig.from_json(config)
                else:  # as production builds it, and inside the part
                    check_serialization(config, self.controller.device)
            except SocketeerError as err:
                self.controller.error.emit(str(err))
                return False
        self.serialization = config
        self.jobChanged.emit()
        return True

    # -- first article and lock -------------------------------------------------------

    def first_article(self, site: int) -> bool:
        if not self._allowed("lock_job"):
            return False
        c = self.controller
        if self.prepared is None or self.loaded is None or self.loaded.job.locked:
            c.error.emit("save the job first (an unlocked job) to run its first article")
            return False
        if c.station is None:
            return False
        station, loaded, span = c.station, self.loaded, self.prepared.serial_range
        cancel = threading.Event()

        def work(emit: Emit) -> None:
            outcome = run_first_article(station, loaded, c.database, span, site, emit)
            self.firstArticleDone.emit(outcome)

        return c.dispatch(site, work, cancel)

    def _remember_outcome(self, outcome: FirstArticleOutcome) -> None:
        self.outcome = outcome

    def approve_and_lock(self, approver: str) -> bool:
        c = self.controller
        if not self._allowed("lock_job"):
            return False
        if self.loaded is None or self.job_path is None or self.outcome is None:
            c.error.emit("run the first article before approving the job")
            return False
        if not self.outcome.matches:
            c.error.emit(
                "the first article does not match the expected checksum; the job stays unlocked"
            )
            return False
        try:
            locked = lock_job(
                self.loaded.job, self.loaded.image_bytes, approver, self.outcome.record()
            )
            save_job(locked, self.job_path)
        except SocketeerError as err:
            c.error.emit(str(err))
            return False
        c.log.emit(None, "info", f"job approved and locked by {approver}: {self.job_path}")
        self.outcome = None
        return self.open_job(self.job_path)

    # -- production -------------------------------------------------------------------

    @property
    def active(self) -> bool:
        return self.prepared is not None

    def start(self, sites: list[int] | None = None) -> None:
        c = self.controller
        if self.prepared is None:
            c.start(sites)
            return
        if not self._allowed("run") or not c.ready_to_start():
            return
        if self.loaded is not None and not self.loaded.job.locked and self.role != Role.ENGINEER:
            c.error.emit("operators run only locked jobs")
            return
        spec = self.prepared.production.spec
        for site in sites or c.sites:
            c.run_cycle(site, spec, counted=True)

    def set_auto_start(self, on: bool) -> None:
        """Auto-start: each site's worker runs the engine's insertion loop (off the GUI
        thread) until the count is reached, Stop, or auto-start is switched off."""
        c = self.controller
        if on and (self.prepared is None or c.station is None):
            c.error.emit("auto-start runs a job: open one first")
            return
        for stop in self._auto_stops.values():
            stop.set()
        self._auto_stops = {}
        if on:
            assert self.prepared is not None and c.station is not None
            station, spec = c.station, self.prepared.production.spec

            def watch(site: int, stop: threading.Event) -> Any:
                return lambda emit: station.watch(site, spec, emit=emit, stop=stop)

            for site in c.sites:
                stop = threading.Event()
                if c.dispatch(site, watch(site, stop), stop):
                    self._auto_stops[site] = stop
        c.log.emit(None, "info", f"auto-start {'on' if on else 'off'}")

    @property
    def auto_start(self) -> bool:
        return any(not stop.is_set() for stop in self._auto_stops.values())

    # -- production events ------------------------------------------------------------

    def _on_engine_event(self, event: Any) -> None:
        c = self.controller
        changed = site_change(event) if self._publisher is not None else None
        if changed is not None and self._publisher is not None:
            self._publisher.publish(changed)  # the line view of the line's other stations
        if isinstance(event, CycleFinished) and event.counted:
            serial = f" serial {event.serial}" if event.serial else ""
            c.log.emit(event.site, "info", f"site {event.site}: record {event.record_id}{serial}")
            self.countChanged.emit(event.good, event.remaining)
            if event.remaining == 0:
                c.log.emit(None, "info", f"count reached: {event.good} good devices")
