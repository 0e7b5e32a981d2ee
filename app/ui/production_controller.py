"""Production on top of the Controller: roles, job files, first article and locking,
serialized runs with count-down and auto-start on insertion.

Everything that decides lives in the engine (app.engine.job_setup / production /
first_article) and app.core (job, roles); this object only sequences it for the window
and hands each production cycle to its site's worker, like any other cycle.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

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
from app.engine.first_article import FirstArticleOutcome, run_first_article
from app.engine.job_setup import PreparedJob, prepare_job
from app.engine.production import ProductionEvent
from app.engine.serialization import SerialConfig, serial_range
from app.ui.controller import Controller

AUTO_START_POLL_MS = 50


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
        self.serialization: dict[str, Any] | None = None
        self.count_limit: int | None = None
        self.prepared: PreparedJob | None = None
        self.outcome: FirstArticleOutcome | None = None
        controller.engineEvent.connect(self._on_engine_event)
        self.firstArticleDone.connect(self._remember_outcome)
        self._auto = QTimer(self)
        self._auto.setInterval(AUTO_START_POLL_MS)
        self._auto.timeout.connect(self._poll_sockets)
        self._present: dict[int, bool] = {}

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
            self.prepared.run.operator = change.operator_name or change.new_role.value
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
            ops = c.operations
            spec_exclude = ()
            if self.serialization is not None:
                spec_exclude = (serial_range(SerialConfig.from_json(self.serialization)),)
            expected = ExpectedChecksum("crc32", "", exclude_serial=bool(spec_exclude))
            value = checksum(ref.image, expected.spec(exclude=spec_exclude))
            job = Job(
                name=name or path.stem,
                device_id=c.device.id,
                image=ref.ref,
                operations={
                    "erase": ops["erase"],
                    "blank_check": ops["blank_check"],
                    "verify": ops["verify"],
                    "protect": ops["protect"],
                },
                erase_mode=c.erase_mode if ops["erase"] else "none",
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
        c.operations.update(
            {k: job.operations[k] for k in ("erase", "blank_check", "verify", "protect")}
        )
        c.erase_mode = job.erase_mode if job.erase_mode != "none" else "auto"
        c.programmer_url = job.programmer  # set first: choosing the device opens it
        if not c.set_device(job.device_id):
            return False
        if not self._adopt_image(loaded):
            return False
        state = f"locked by {job.lock.approved_by}" if job.lock else "unlocked"
        c.log.emit(None, "info", f"job opened: {path} ({state})")
        return self._prepare()

    def _adopt_image(self, loaded: LoadedJob) -> bool:
        """Use the job's own (hash-checked) image, even when it came from a package."""
        c = self.controller
        try:
            loaded.image.check_within(*c.device.address_range, c.device.part)
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
        if c.programmer is None or self.loaded is None:
            return False
        try:
            self.prepared = prepare_job(
                self.loaded,
                c.device,
                c.programmer,
                on_event=c.post.emit,
                operator=self.session.operator_name or self.role.value,
                adapters=self._adapters(),
                identify_candidates=c._names,
            )
        except SocketeerError as err:
            c.error.emit(str(err))
            return False
        if self.prepared.recovered_serials:
            c.log.emit(
                None,
                "warning",
                f"voided {len(self.prepared.recovered_serials)} serial(s)"
                " left reserved by an interrupted run",
            )
        self.jobChanged.emit()
        self.countChanged.emit(self.prepared.run.good, self.prepared.run.remaining)
        return True

    def _adapters(self) -> frozenset[str]:
        db, dev = self.controller.database, self.controller.device
        return frozenset(
            db.packages[p].adapter
            for p in dev.packages
            if p in db.packages and db.packages[p].adapter
        )

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
                SerialConfig.from_json(config)
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
        if self.prepared is None or self.loaded is None or self.loaded.job.locked:
            self.controller.error.emit(
                "save the job first (an unlocked job) to run its first article"
            )
            return False
        prepared, loaded = self.prepared, self.loaded
        prepared.run.stop_event.clear()

        def cycle(site_obj: Any, emit: Any) -> Any:
            outcome = run_first_article(prepared, loaded, site_obj.index, emit)
            self.firstArticleDone.emit(outcome)
            return outcome.programmed

        return self.controller.run_cycle(site, cycle, prepared.run.stop_event)

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
        if self.prepared is None:
            self.controller.start(sites)
            return
        if not self._allowed("run"):
            return
        if self.loaded is not None and not self.loaded.job.locked and self.role != Role.ENGINEER:
            self.controller.error.emit("operators run only locked jobs")
            return
        run = self.prepared.run
        if not self.controller.running:
            run.stop_event.clear()
        for site in sites or self.controller.sites:
            self.controller.run_cycle(site, lambda s, emit: run.cycle(s, emit), run.stop_event)

    def set_auto_start(self, on: bool) -> None:
        if on and self.prepared is None:
            self.controller.error.emit("auto-start runs a job: open one first")
            return
        if on:
            self._present = {}
            self.prepared.run.stop_event.clear()  # type: ignore[union-attr]
            self._auto.start()
        else:
            self._auto.stop()
        self.controller.log.emit(None, "info", f"auto-start {'on' if on else 'off'}")

    @property
    def auto_start(self) -> bool:
        return self._auto.isActive()

    def _poll_sockets(self) -> None:
        """Start a site when a part appears in its socket (socket detect, polled)."""
        c = self.controller
        if c.programmer is None or self.prepared is None:
            return
        run = self.prepared.run
        if run.remaining == 0:
            self._auto.stop()
            c.log.emit(None, "info", "count reached: auto-start off")
            return
        for site in c.programmer.sites:
            present = site.part_present()
            was = self._present.get(site.index, False)
            self._present[site.index] = present
            if present and not was and site.index not in c._busy:
                c.run_cycle(site.index, lambda s, emit: run.cycle(s, emit), run.stop_event)

    # -- production events ------------------------------------------------------------

    def _on_engine_event(self, event: Any) -> None:
        c = self.controller
        if isinstance(event, ProductionEvent):
            serial = f" serial {event.serial}" if event.serial else ""
            c.log.emit(event.site, "info", f"site {event.site}: record {event.record_id}{serial}")
            self.countChanged.emit(event.good, event.remaining)
            if event.remaining == 0:
                c.log.emit(None, "info", f"count reached: {event.good} good devices")
