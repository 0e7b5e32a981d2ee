"""Controller: owns the engine's Station and one worker QThread per site; widgets talk to
it by intent (start, stop, choose device, load image) and it answers with signals.

Workers call the Station in their thread (a cycle, or an auto-start loop) and put its
frozen events in an inbox; the window's thread takes them in batches, one frame at a
time (DRAIN_INTERVAL_MS), with each site's progress coalesced to its latest value:
sixteen sites then cost one Python call a frame, not one queued call per event.
Nothing here touches a widget from a worker thread. The same timer beats for
app.hal.pacing, so compute-bound (simulated) sites leave the window its turn. The tiles
follow the engine's events (CycleStarted, CycleFinished, SiteIdle), so what the window
shows is what the engine did.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QThread, QTimer, Signal, Slot

from app.core.checksums import ChecksumSpec, checksum
from app.core.errors import SocketeerError
from app.core.formats import LoadedImage, load_image
from app.devicedb.database import DeviceDatabase
from app.devicedb.models import Device
from app.engine.cycle import CycleOptions, build_cycle_spec, part_names
from app.engine.detect import detect_site
from app.engine.events import (
    CycleFinished,
    CycleStarted,
    Event,
    LogEvent,
    PhaseStarted,
    ProgressEvent,
    SiteIdle,
)
from app.engine.site_runner import CycleSpec
from app.engine.station import Emit, Station
from app.engine.station_setup import open_station_programmer
from app.hal import pacing
from app.hal.programmer import Programmer, Site

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 0.05
#: how often the window's thread takes the workers' events (about a frame)
DRAIN_INTERVAL_MS = 16
#: how often the window's thread beats for app.hal.pacing while sites run
BEAT_INTERVAL_MS = 2
#: the interpreter's thread switch interval with a window (Python's default is 5 ms):
#: the window's thread takes the interpreter lock again after every call into Qt, and
#: waits up to this long each time a site thread holds it
SWITCH_INTERVAL_S = 0.002

#: What a worker runs in its thread, given a (throttled, thread-safe) event sink: one
#: station cycle, or an auto-start loop. It must not raise (the Station guarantees it
#: for its own calls; the worker logs anything else).
Work = Callable[[Emit], object]


class SiteWorker(QObject):
    """Lives in its own QThread; runs one cycle at a time on its site."""

    finished = Signal(int)  # site: the worker is free again
    #: the GUI thread's way in: emitted there, queued to this worker's own thread only
    job = Signal(object)  # Work

    def __init__(self, site: Site, inbox: deque[Event]) -> None:
        super().__init__()
        self.site = site
        self._inbox = inbox
        self._last_progress = 0.0
        self.job.connect(self.run)

    def send(self, event: Event) -> None:
        """Thread-safe (deque.append): into the inbox; progress coalesced to ~20 Hz."""
        if isinstance(event, ProgressEvent):
            now = time.monotonic()
            if now - self._last_progress < PROGRESS_INTERVAL_S and event.done not in (
                0,
                event.total,
            ):
                return
            self._last_progress = now
        self._inbox.append(event)

    @Slot(object)
    def run(self, work: Work) -> None:
        """Runs in the worker's thread (queued through ``job``)."""
        site = self.site.index
        self._last_progress = 0.0
        try:
            work(self.send)
        except Exception as err:  # never leave the site marked busy
            log.exception("site %s: worker failed", site)
            self.send(LogEvent(site, "error", f"site {site}: internal error: {err!r}"))
        finally:
            self.finished.emit(site)


class Controller(QObject):
    sitesChanged = Signal(list)
    siteStarted = Signal(int)
    sitePhase = Signal(int, str)
    siteProgress = Signal(int, str, int, int)
    siteFinished = Signal(int, object)
    siteIdle = Signal(int)  # a cycle was not needed (count reached)
    log = Signal(object, str, str)  # site or None, level, message
    jobChanged = Signal()
    runningChanged = Signal(bool)
    bufferRead = Signal(int, bytes)
    error = Signal(str)
    engineEvent = Signal(object)
    #: thread-safe way in for events from outside a worker's cycle (queued to the GUI thread)
    post = Signal(object)

    #: the programmer URL typed was refused (url, reason); the last good one stays open
    programmerRejected = Signal(str, str)
    programmerAccepted = Signal(str)
    #: an image file was refused or warned about (path, reason); reason "" = all good
    imageProblem = Signal(str, str)

    def __init__(self, database: DeviceDatabase, parent: QObject | None = None) -> None:
        super().__init__(parent)
        sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL_S))
        self.database = database
        self.device: Device | None = None
        self.image: LoadedImage | None = None
        self.programmer_url = "sim://?sites=4"
        self.operations: dict[str, bool] = CycleOptions().operations()
        self.erase_mode = "auto"  # the erase mode chosen for when erase is on
        self.station: Station | None = None
        #: why the programmer could not be opened (None while one is open)
        self.programmer_problem: str | None = None
        self._threads: dict[int, QThread] = {}
        self._workers: dict[int, SiteWorker] = {}
        self._cancel: dict[int, threading.Event] = {}
        self._busy: set[int] = set()
        self.image_crc32: str | None = None
        self.post.connect(self._on_event)
        self._inbox: deque[Event] = deque()
        self._drain_timer = QTimer(self)
        self._drain_timer.setInterval(DRAIN_INTERVAL_MS)
        self._drain_timer.timeout.connect(self._drain)
        self._beat_timer = QTimer(self)
        self._beat_timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._beat_timer.setInterval(BEAT_INTERVAL_MS)
        self._beat_timer.timeout.connect(pacing.heartbeat)

    # -- job settings -----------------------------------------------------------------

    def set_device(self, device_id: str) -> bool:
        try:
            self.device = self.database.get(device_id)
        except SocketeerError as err:
            self.error.emit(str(err))
            return False
        self.log.emit(
            None, "info", f"device: {self.device.vendor} {self.device.part} ({self.device.id})"
        )
        self._reopen()
        self.jobChanged.emit()
        return True

    def load_image(self, path: str | Path) -> bool:
        try:
            loaded = load_image(path)
            if self.device is not None:
                loaded.image.check_within(*self.device.address_range, self.device.part)
        except SocketeerError as err:
            self.error.emit(str(err))
            self.log.emit(None, "error", str(err))
            self.imageProblem.emit(str(path), str(err))
            return False
        self.set_image(loaded)
        self.imageProblem.emit(str(path), "; ".join(loaded.image.warnings))
        for warning in loaded.image.warnings:
            self.log.emit(None, "warning", warning)
            self.error.emit(f"warning: {warning}")
        self.log.emit(
            None,
            "info",
            f"image: {path} ({loaded.format}, {loaded.image.data_bytes} bytes,"
            f" CRC-32 {self.image_crc32})",
        )
        return True

    def set_image(self, loaded: LoadedImage) -> None:
        """Use ``loaded`` (already checked against the device) as the job's image; its
        CRC-32 is computed here once, not on every redraw of the job pane."""
        self.image = loaded
        self.image_crc32 = checksum(loaded.image, ChecksumSpec("crc32"))
        self.jobChanged.emit()

    def set_programmer(self, url: str) -> bool:
        """Open ``url``; if it cannot be opened, say why and go back to the last
        programmer that worked (a typo must not leave the station without sites)."""
        previous = self.programmer_url
        self.programmer_url = url
        ok = self._reopen()
        if ok:
            self.programmerAccepted.emit(url)
        elif not self._busy:
            reason = self.programmer_problem or "cannot be opened"
            if previous != url:
                self.programmer_url = previous
                self._reopen()
            self.programmerRejected.emit(url, reason)
        self.jobChanged.emit()
        return ok

    def set_operation(self, name: str, enabled: bool) -> None:
        self.operations[name] = enabled
        self.jobChanged.emit()

    def set_erase_mode(self, mode: str) -> None:
        self.erase_mode = mode
        self.jobChanged.emit()

    @property
    def options(self) -> CycleOptions:
        """The job pane's operations as the engine takes them."""
        return CycleOptions.from_operations(self.operations, self.erase_mode)

    @property
    def programmer(self) -> Programmer | None:
        return self.station.programmer if self.station is not None else None

    # -- programmer and workers -------------------------------------------------------

    def _reopen(self) -> bool:
        if self._busy:
            self.error.emit("stop the running sites before changing the programmer or device")
            return False
        self._stop_threads()
        self._close_station()
        try:
            programmer = open_station_programmer(self.programmer_url, self.device, self.database)
        except SocketeerError as err:
            self.programmer_problem = str(err)
            self.error.emit(str(err))
            self.log.emit(None, "error", str(err))
            self.sitesChanged.emit([])
            return False
        self.programmer_problem = None

        self.station = Station(programmer, self.post.emit, part_names(self.database))
        for site in programmer.sites:
            thread = QThread(self)
            thread.setObjectName(f"site-{site.index}")
            worker = SiteWorker(site, self._inbox)
            worker.moveToThread(thread)
            worker.finished.connect(self._on_finished)
            thread.start()
            self._threads[site.index] = thread
            self._workers[site.index] = worker
        self.log.emit(
            None, "info", f"programmer: {self.programmer_url} ({len(self._workers)} sites)"
        )
        self.sitesChanged.emit(sorted(self._workers))
        return True

    def _stop_threads(self) -> None:
        pacing.stop()  # the window is about to wait for the workers: nobody waits for it
        for cancel in self._cancel.values():
            cancel.set()
        for thread in self._threads.values():
            thread.quit()
            thread.wait()
        self._threads.clear()
        self._workers.clear()

    def _close_station(self) -> None:
        if self.station is not None:
            self.station.programmer.close()
            self.station = None

    def shutdown(self) -> None:
        self._drain_timer.stop()
        self._beat_timer.stop()
        pacing.stop()
        self._stop_threads()
        self._close_station()

    @property
    def sites(self) -> list[int]:
        return sorted(self._workers)

    @property
    def idle_sites(self) -> list[int]:
        return [site for site in self.sites if site not in self._busy]

    @property
    def running(self) -> bool:
        return bool(self._busy)

    # -- runs -------------------------------------------------------------------------

    def _spec(self, action: str) -> CycleSpec | None:
        if self.device is None:
            self.error.emit("choose a device first")
            return None
        if action in ("program", "verify") and self.image is None:
            self.error.emit("load an image first")
            return None
        image = self.image.image if self.image is not None else None
        return build_cycle_spec(
            action, self.device, self.database, image=image, options=self.options
        )

    def start(self, sites: list[int] | None = None, action: str = "program") -> None:
        """Run ``action`` once on ``sites`` (default all): a service cycle, not counted."""
        spec = self._spec(action)
        if spec is None or not self.ready_to_start():
            return
        for site in sites or self.sites:
            self.run_cycle(site, spec)

    def detect_parts(self, sites: list[int] | None = None) -> None:
        """Name the part on each idle site from the database (the engine's detect, no
        device needed); one line per site in the session log."""
        station = self.station
        if station is None:
            self.ready_to_start()  # says why
            return
        database = self.database

        def detect(index: int) -> Work:
            def work(emit: Emit) -> None:
                report = detect_site(station.site(index), database)
                level = "info" if report.present else "warning"
                emit(LogEvent(index, level, f"site {index}: detect: {report.summary}"))

            return work

        for site in sites or self.idle_sites:
            self.dispatch(site, detect(site), threading.Event())

    def ready_to_start(self) -> bool:
        """True when there are sites to start; else says why (status bar and log)."""
        if self.station is not None:
            return True
        why = (
            f"no programmer: {self.programmer_problem}"
            if self.programmer_problem
            else ("no programmer: enter a programmer URL and press Connect")
        )
        self.error.emit(f"cannot start: {why}")
        return False

    def run_cycle(self, site: int, spec: CycleSpec, *, counted: bool = False) -> bool:
        """One station cycle on ``site``'s worker; False if the site is busy or unknown."""
        station = self.station
        if station is None:
            return False

        def work(emit: Emit) -> object:
            return station.cycle(site, spec, counted=counted, cancel=cancel, emit=emit)

        cancel = threading.Event()
        return self.dispatch(site, work, cancel)

    def dispatch(self, site: int, work: Work, cancel: threading.Event) -> bool:
        """Hand ``work`` to the site's worker thread; ``cancel`` is what Stop sets."""
        if site not in self._workers or site in self._busy:
            return False
        self._cancel[site] = cancel
        was_running = self.running
        self._busy.add(site)
        if not was_running:
            self._drain_timer.start()
            self._beat_timer.start()
            pacing.heartbeat()
            self.runningChanged.emit(True)
        self._workers[site].job.emit(work)
        return True

    def stop(self, sites: list[int] | None = None) -> None:
        for site in sites or list(self._busy):
            cancel = self._cancel.get(site)
            if cancel is not None:
                cancel.set()
        if self._busy:
            self.log.emit(None, "warning", "stop requested")

    @Slot(object)
    def _on_event(self, event: Event) -> None:
        if isinstance(event, ProgressEvent):
            self.siteProgress.emit(event.site, event.phase, event.done, event.total)
        elif isinstance(event, PhaseStarted):
            self.sitePhase.emit(event.site, event.phase)
        elif isinstance(event, LogEvent):
            self.log.emit(event.site, event.level, event.message)
        elif isinstance(event, CycleStarted):
            self.siteStarted.emit(event.site)
        elif isinstance(event, CycleFinished):
            result = event.result
            self.siteFinished.emit(event.site, result)
            if result.action == "read" and result.passed and result.data is not None:
                self.bufferRead.emit(event.site, result.data)
            self.engineEvent.emit(event)
        elif isinstance(event, SiteIdle):
            self.siteIdle.emit(event.site)

    def _drain(self) -> None:
        """Handle what the workers sent since the last frame, in order; of each site's
        progress only the latest counts (a tile shows one value a frame anyway)."""
        inbox = self._inbox
        events = [inbox.popleft() for _ in range(len(inbox))]
        if events:
            pacing.hold()  # the sites pause at their next transfer until this is done
        latest = {e.site: i for i, e in enumerate(events) if isinstance(e, ProgressEvent)}
        for i, event in enumerate(events):
            if not isinstance(event, ProgressEvent) or latest[event.site] == i:
                self._on_event(event)

    @Slot(int)
    def _on_finished(self, site: int) -> None:
        self._drain()  # this cycle's events before the site counts as free
        self._busy.discard(site)
        self._cancel.pop(site, None)
        if not self._busy:
            self._drain_timer.stop()
            self._beat_timer.stop()
            pacing.stop()
            self.runningChanged.emit(False)
