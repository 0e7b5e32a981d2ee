"""One station run without a window, for remote control (app.api): a programmer, a locked
job opened by path or barcode, production runs in a background thread, the state of
every site, the results of this session, and the events fanned out to listeners.

Everything here is thread-safe: the HTTP server calls in from its own threads while a
run goes on, and nothing a request does can disturb a run in progress (a start while one
runs is refused; a stop asks the sites to finish their current step).
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from app.core.errors import InputError, SocketeerError
from app.core.job_files import load_job
from app.devicedb.database import DeviceDatabase
from app.engine.cycle import part_names
from app.engine.events import (
    CycleFinished,
    CycleStarted,
    Event,
    LogEvent,
    PhaseStarted,
    ProgressEvent,
    SiteIdle,
)
from app.engine.job_setup import PreparedJob, prepare_job
from app.engine.production_log import ProductionLog, default_station_name
from app.engine.station import Station
from app.engine.station_setup import open_station_programmer, programmable_device
from app.hal.programmer import Programmer

#: the job library (a station's folder, or one the line shares) jobs are opened from by
#: barcode, in the window and through the API
JOBS_DIR_ENV = "SOCKETEER_JOBS_DIR"
RESULTS_KEPT = 1000  # results of this session kept for GET /results
LISTENER_QUEUE = 10_000  # events a slow listener may fall behind before it is dropped


class StationControl(Protocol):
    """What the API drives: a headless StationService, or the window (app.ui)."""

    def status(self) -> dict[str, Any]: ...

    def jobs(self) -> list[dict[str, Any]]: ...

    def open_job(
        self, path: str | None = None, barcode: str | None = None, *, allow_unlocked: bool = False
    ) -> dict[str, Any]: ...

    def start(self, sites: list[int] | None = None) -> None: ...

    def stop(self) -> bool: ...

    def results(self, limit: int = 100) -> list[dict[str, Any]]: ...

    def listen(self) -> queue.Queue[dict[str, Any] | None]: ...

    def forget(self, listener: queue.Queue[dict[str, Any] | None]) -> None: ...

    def line_sites(self) -> dict[str, list[dict[str, Any]]]: ...


class ServiceError(InputError):
    """A request the station cannot do now (no job, a run in progress, ...)."""


@dataclass
class SiteState:
    index: int
    state: str = "idle"  # idle, running, pass, fail, ...
    phase: str | None = None
    progress: float | None = None  # 0..1 of the current phase
    last_result: dict[str, Any] | None = None


@dataclass
class OpenJob:
    path: Path
    name: str
    job_id: str
    device_id: str
    prepared: PreparedJob
    programmer: Programmer
    station: Station


def event_json(event: Event) -> dict[str, Any]:
    """An event as the API sends it (``type`` names the kind)."""
    if isinstance(event, CycleFinished):
        return {
            "type": "finished",
            "site": event.site,
            "result": event.result.to_json(),
            "serial": event.serial,
            "record_id": event.record_id,
            "good": event.good,
            "remaining": event.remaining,
        }
    if isinstance(event, CycleStarted):
        return {"type": "started", "site": event.site, "action": event.action}
    if isinstance(event, PhaseStarted):
        return {"type": "phase", "site": event.site, "phase": event.phase}
    if isinstance(event, ProgressEvent):
        return {
            "type": "progress",
            "site": event.site,
            "phase": event.phase,
            "done": event.done,
            "total": event.total,
        }
    if isinstance(event, LogEvent):
        return {"type": "log", "site": event.site, "level": event.level, "message": event.message}
    if isinstance(event, SiteIdle):
        return {"type": "idle", "site": event.site}
    return {"type": type(event).__name__}


def list_jobs(folder: Path | None) -> list[dict[str, Any]]:
    """The jobs in ``folder`` (locked or not), by file name."""
    if folder is None:
        return []
    found: list[dict[str, Any]] = []
    for path in sorted(folder.glob("*.json")):
        try:
            job = load_job(path, check_lock=False).job
        except SocketeerError as err:
            found.append({"file": path.name, "error": str(err)})
            continue
        found.append(
            {"file": path.name, "name": job.name, "device": job.device_id, "locked": job.locked}
        )
    return found


def find_job(folder: Path | None, path: str | None, barcode: str | None) -> Path:
    """The job a request names: a path (relative ones in ``folder``), or a barcode that is
    a job's name or file name in ``folder``."""
    if path:
        candidate = Path(path)
        if not candidate.is_absolute() and folder is not None:
            candidate = folder / candidate
        return candidate
    if not barcode or folder is None:
        raise ServiceError("give the job's path, or a barcode and a station jobs folder")
    text = barcode.strip()
    for entry in list_jobs(folder):
        if entry.get("name") == text or Path(entry["file"]).stem == text:
            return folder / str(entry["file"])
    raise ServiceError(f"no job named {text!r} in {folder}")


class SitePublisher:
    """Publishes one station's site states to a line's shared production log, from a
    thread of its own: the sites and the window never wait for the database, and a
    database that is gone costs the line view a beat, never the run."""

    def __init__(self, log: ProductionLog, station: str) -> None:
        self.log = log
        self.station = station
        self._queue: queue.Queue[SiteState | None] = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="site-publisher", daemon=True)
        self._thread.start()

    def publish(self, site: SiteState) -> None:
        self._queue.put(site)

    def _work(self) -> None:
        while (site := self._queue.get()) is not None:
            with suppress(SocketeerError):
                self.log.publish_site(self.station, site.index, site.state, site.phase)

    def close(self) -> None:
        """Publish what is queued, then stop."""
        self._queue.put(None)
        self._thread.join(10)


def site_change(event: Event) -> SiteState | None:
    """The site state an event sets (start, phase, finish), or None."""
    if isinstance(event, CycleStarted):
        return SiteState(event.site, "running")
    if isinstance(event, PhaseStarted):
        return SiteState(event.site, "running", event.phase)
    if isinstance(event, CycleFinished):
        return SiteState(event.site, event.result.status)
    return None


class EventHub:
    """What a remote controller sees of a station's events: each site's state, the
    results of this session, and a queue of events per listener (the API's event
    streams). ``on_event`` may be called from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.sites: dict[int, SiteState] = {}
        self._results: deque[dict[str, Any]] = deque(maxlen=RESULTS_KEPT)
        self._listeners: list[queue.Queue[dict[str, Any] | None]] = []

    def reset_sites(self, numbers: list[int]) -> None:
        with self._lock:
            self.sites = {i: SiteState(i) for i in numbers}

    def site_states(self) -> list[dict[str, Any]]:
        with self._lock:
            return [vars(site).copy() for site in self.sites.values()]

    def results(self, limit: int = 100) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._results)[-limit:]

    def listen(self) -> queue.Queue[dict[str, Any] | None]:
        """A queue of every event from now on (None: the station closed)."""
        listener: queue.Queue[dict[str, Any] | None] = queue.Queue(LISTENER_QUEUE)
        with self._lock:
            self._listeners.append(listener)
        return listener

    def forget(self, listener: queue.Queue[dict[str, Any] | None]) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def close(self) -> None:
        with self._lock:
            for listener in self._listeners:
                listener.put(None)

    def on_event(self, event: Event) -> None:
        doc = event_json(event)
        with self._lock:
            site = self.sites.get(doc.get("site") or 0)
            if site is not None:
                if isinstance(event, CycleStarted):
                    site.state, site.phase, site.progress = "running", None, None
                elif isinstance(event, PhaseStarted):
                    site.phase, site.progress = event.phase, 0.0
                elif isinstance(event, ProgressEvent) and event.total:
                    site.progress = round(event.done / event.total, 3)
                elif isinstance(event, CycleFinished):
                    site.state, site.phase, site.progress = event.result.status, None, None
                    site.last_result = doc
                    self._results.append(doc)
            for listener in list(self._listeners):
                try:
                    listener.put_nowait(doc)
                except queue.Full:  # a client that stopped reading: dropped, the run goes on
                    self._listeners.remove(listener)


class HubEvents:
    """The event side of a StationControl, from its ``hub``."""

    hub: EventHub

    def results(self, limit: int = 100) -> list[dict[str, Any]]:
        return self.hub.results(limit)

    def listen(self) -> queue.Queue[dict[str, Any] | None]:
        return self.hub.listen()

    def forget(self, listener: queue.Queue[dict[str, Any] | None]) -> None:
        self.hub.forget(listener)


class StationService(HubEvents):
    """The station the API drives. ``jobs_dir`` holds the jobs it may open by barcode."""

    def __init__(
        self,
        database: DeviceDatabase,
        *,
        programmer_url: str | None = None,
        jobs_dir: Path | None = None,
        db_url: str | None = None,
        operator: str = "remote",
        station: str | None = None,
    ) -> None:
        self.database = database
        self.programmer_url = programmer_url
        self.jobs_dir = jobs_dir
        self.db_url = db_url
        self.operator = operator
        self._lock = threading.RLock()
        self._job: OpenJob | None = None
        self._runner: threading.Thread | None = None
        self.hub = EventHub()
        self.station = station or default_station_name()
        #: a line's shared log, where this station publishes its sites for the line view
        self._line: ProductionLog | None = None
        self._publisher: SitePublisher | None = None

    # -- jobs -------------------------------------------------------------------------

    def jobs(self) -> list[dict[str, Any]]:
        return list_jobs(self.jobs_dir)

    def open_job(
        self, path: str | None = None, barcode: str | None = None, *, allow_unlocked: bool = False
    ) -> dict[str, Any]:
        """Open a job (a locked one, unless an engineer allows a trial run)."""
        with self._lock:
            if self.running:
                raise ServiceError("a run is in progress: stop it before opening another job")
            where = find_job(self.jobs_dir, path, barcode)
            loaded = load_job(where)
            if not loaded.job.locked and not allow_unlocked:
                raise ServiceError(f"{where}: the job is not locked (engineer trial runs only)")
            device = programmable_device(self.database, loaded.job.device_id)
            prepared = prepare_job(
                loaded,
                device,
                self.database,
                operator=self.operator,
                db_url=self.db_url,
                station=self.station,
            )
            programmer = open_station_programmer(
                self.programmer_url or loaded.job.programmer, device, self.database
            )
            self._close_job()
            station = Station(
                programmer, self._on_event, part_names(self.database), prepared.production
            )
            self._job = OpenJob(
                where,
                loaded.job.name,
                prepared.production.job_id,
                device.id,
                prepared,
                programmer,
                station,
            )
            self.hub.reset_sites(station.site_numbers)
            self._line = prepared.production.log if prepared.production.log.shared else None
            if self._line is not None:
                self._publisher = SitePublisher(self._line, self.station)
                for number in station.site_numbers:
                    self._publisher.publish(SiteState(number))
            job: dict[str, Any] = self.status()["job"]
            return job

    def _close_job(self) -> None:
        if self._publisher is not None:
            self._publisher.close()
            self._publisher = None
        if self._job is not None:
            self._job.programmer.close()
            self._job = None

    def _on_event(self, event: Event) -> None:
        self.hub.on_event(event)
        changed = site_change(event)
        if changed is not None and self._publisher is not None:
            self._publisher.publish(changed)

    def line_sites(self) -> dict[str, list[dict[str, Any]]]:
        """The other stations' sites (a shared log), for the line view."""
        if self._line is None:
            return {}
        return {k: v for k, v in self._line.line_sites().items() if k != self.station}

    # -- runs -------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._runner is not None and self._runner.is_alive()

    def start(self, sites: list[int] | None = None) -> None:
        """A production cycle on ``sites`` (default all), in the background."""
        with self._lock:
            job = self._job
            if job is None:
                raise ServiceError("no job is open")
            if self.running:
                raise ServiceError("a run is in progress")
            unknown = sorted(set(sites or []) - set(job.station.site_numbers))
            if unknown:
                raise ServiceError(f"no site(s) {unknown} on this station")
            spec = job.prepared.production.spec
            self._runner = threading.Thread(
                target=job.station.run,
                args=(spec, sites),
                kwargs={"counted": True},
                name="api-run",
                daemon=True,
            )
            self._runner.start()

    def stop(self) -> bool:
        """Ask a run to stop; True when one was running."""
        with self._lock:
            if self._job is None or not self.running:
                return False
            self._job.station.stop()
            return True

    def wait(self, timeout_s: float | None = None) -> None:
        runner = self._runner
        if runner is not None:
            runner.join(timeout_s)

    def close(self) -> None:
        self.stop()
        self.wait(30)
        with self._lock:
            self._close_job()
            self._line = None
        self.hub.close()

    # -- state ------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        with self._lock:
            job = self._job
            doc: dict[str, Any] = {
                "station": self.station,
                "running": self.running,
                "job": None,
                "sites": [],
            }
            if job is None:
                return doc
            production = job.prepared.production
            doc["job"] = {
                "path": str(job.path),
                "name": job.name,
                "job_id": job.job_id,
                "device": job.device_id,
                "programmer": job.programmer.url,
                "good": production.good,
                "failed": production.failed,
                "remaining": production.remaining,
            }
            doc["sites"] = self.hub.site_states()
            return doc
