"""Controller: owns the programmer and one worker QThread per site; widgets talk to it by
intent (start, stop, choose device, load image) and it answers with signals.

Workers run the engine's SiteRunner in their thread and forward its frozen events as
queued signals; nothing here touches a widget from a worker thread. Progress is
coalesced in the worker to at most ~20 updates per second per site.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from app.core.checksums import ChecksumSpec, checksum
from app.core.errors import SocketeerError
from app.core.formats import LoadedImage, load_image
from app.engine.events import Event, LogEvent, PhaseStarted, ProgressEvent
from app.engine.results import DeviceResult
from app.engine.site_runner import CycleSpec, SiteRunner
from app.hal.programmer import open_programmer

PROGRESS_INTERVAL_S = 0.05


#: What a worker runs: given its site and a (throttled, thread-safe) event sink, do one
#: device cycle and return its result (None: nothing was done, e.g. the count is reached).
CycleFn = Callable[[Any, Callable[[Any], None]], DeviceResult | None]


class SiteWorker(QObject):
    """Lives in its own QThread; runs one cycle at a time on its site."""

    event = Signal(object)  # an app.engine.events dataclass
    finished = Signal(int, object)  # site, DeviceResult or None

    def __init__(self, site: Any) -> None:
        super().__init__()
        self.site = site
        self._last_progress = 0.0

    def emit(self, event: Event) -> None:
        """Thread-safe: a queued signal; progress coalesced to ~20 Hz."""
        if isinstance(event, ProgressEvent):
            now = time.monotonic()
            if now - self._last_progress < PROGRESS_INTERVAL_S and event.done not in (
                0,
                event.total,
            ):
                return
            self._last_progress = now
        self.event.emit(event)

    @Slot(int, object)
    def run(self, site: int, cycle: CycleFn) -> None:
        """Queued from the GUI thread to every worker; only the named site's runs it."""
        if site != self.site.index:
            return
        self._last_progress = 0.0
        self.finished.emit(site, cycle(self.site, self.emit))


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

    _dispatch = Signal(int, object)  # site, CycleFn

    def __init__(self, database: Any, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.database = database
        self.device: Any | None = None
        self.image: LoadedImage | None = None
        self.programmer_url = "sim://?sites=4"
        self.operations = {"blank_check": False, "erase": True, "verify": True, "protect": False}
        self.erase_mode = "auto"
        self.programmer: Any | None = None
        self._threads: dict[int, QThread] = {}
        self._workers: dict[int, SiteWorker] = {}
        self._cancel: dict[int, threading.Event] = {}
        self._busy: set[int] = set()
        self._started_at: dict[int, float] = {}
        self.image_crc32: str | None = None
        self.post.connect(self._on_event)

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
            return False
        self.set_image(loaded)
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
        self.programmer_url = url
        ok = self._reopen()
        self.jobChanged.emit()
        return ok

    def set_operation(self, name: str, enabled: bool) -> None:
        self.operations[name] = enabled
        self.jobChanged.emit()

    def set_erase_mode(self, mode: str) -> None:
        self.erase_mode = mode
        self.jobChanged.emit()

    # -- programmer and workers -------------------------------------------------------

    def _reopen(self) -> bool:
        if self._busy:
            self.error.emit("stop the running sites before changing the programmer or device")
            return False
        self._stop_threads()
        if self.programmer is not None:
            self.programmer.close()
            self.programmer = None
        try:
            self.programmer = open_programmer(
                self.programmer_url, device=self.device, database=self.database
            )
        except SocketeerError as err:
            self.error.emit(str(err))
            self.log.emit(None, "error", str(err))
            self.sitesChanged.emit([])
            return False

        for site in self.programmer.sites:
            thread = QThread(self)
            thread.setObjectName(f"site-{site.index}")
            worker = SiteWorker(site)
            worker.moveToThread(thread)
            worker.event.connect(self._on_event)
            worker.finished.connect(self._on_finished)
            self._dispatch.connect(worker.run)  # queued: the worker lives in its thread
            thread.start()
            self._threads[site.index] = thread
            self._workers[site.index] = worker
        self.log.emit(
            None, "info", f"programmer: {self.programmer_url} ({len(self._workers)} sites)"
        )
        self.sitesChanged.emit(sorted(self._workers))
        return True

    def _stop_threads(self) -> None:
        for cancel in self._cancel.values():
            cancel.set()
        for worker in self._workers.values():
            self._dispatch.disconnect(worker.run)
        for thread in self._threads.values():
            thread.quit()
            thread.wait()
        self._threads.clear()
        self._workers.clear()

    def shutdown(self) -> None:
        self._stop_threads()
        if self.programmer is not None:
            self.programmer.close()
            self.programmer = None

    @property
    def sites(self) -> list[int]:
        return sorted(self._workers)

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
        ops = self.operations
        spec = CycleSpec(action=action, device=self.device)
        if action in ("program", "verify"):
            assert self.image is not None
            spec = replace(spec, image=self.image.image)
        if action == "program":
            spec = replace(
                spec,
                erase_mode=self.erase_mode if ops["erase"] else "none",
                blank_check=ops["blank_check"],
                verify=ops["verify"],
                protect=ops["protect"],
            )
        return spec

    def start(self, sites: list[int] | None = None, action: str = "program") -> None:
        spec = self._spec(action)
        if spec is None:
            return
        for site in [s for s in (sites or self.sites) if s not in self._busy]:
            cancel = threading.Event()
            self.run_cycle(site, self._plain_cycle(spec, cancel), cancel)

    def _plain_cycle(self, spec: CycleSpec, cancel: threading.Event) -> CycleFn:
        def cycle(site: Any, emit: Callable[[Any], None]) -> DeviceResult:
            return SiteRunner(site, emit, self._names).run(spec, cancel)

        return cycle

    def _names(self, id_hex: str, bus: str = "jedec") -> list[str]:
        return [f"{d.vendor} {d.part}" for d in self.database.identify(bus, id_hex).candidates]

    def run_cycle(self, site: int, cycle: CycleFn, cancel: threading.Event) -> bool:
        """Hand ``cycle`` to the site's worker thread; False if the site is busy/unknown."""
        if site not in self._workers or site in self._busy:
            return False
        self._cancel[site] = cancel
        was_running = self.running
        self._busy.add(site)
        self._started_at[site] = time.monotonic()
        self.siteStarted.emit(site)
        if not was_running:
            self.runningChanged.emit(True)
        self._dispatch.emit(site, cycle)
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
        else:
            self.engineEvent.emit(event)

    @Slot(int, object)
    def _on_finished(self, site: int, result: DeviceResult | None) -> None:
        self._busy.discard(site)
        self._cancel.pop(site, None)
        if result is None:
            self.siteIdle.emit(site)
        else:
            self.siteFinished.emit(site, result)
            if result.action == "read" and result.passed and result.data is not None:
                self.bufferRead.emit(site, result.data)
        if not self._busy:
            self.runningChanged.emit(False)
