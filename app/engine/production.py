"""Production runs: a job on every site, with serial numbers, the production log, socket
wear, count-down and auto-start on insertion.

Per device cycle: count the insertion -> reserve a serial in the ledger -> per-device
image = job image + serial patch -> SiteRunner -> production-log record (durable) ->
serial committed (pass) or failed/voided (fail) -> ProductionEvent to the UI/CLI. The
log record is written before the result is reported, and the serial is committed only
after the record exists, so a crash at any point leaves the ledger's ``recover()`` to
void the number; it is never handed out twice.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from app.engine.events import Event, LogEvent
from app.engine.ledger import SerialLedger
from app.engine.production_log import ProductionLog, ProductionRecord, SocketWear
from app.engine.results import PASS, DeviceResult
from app.engine.serialization import patch_serial
from app.engine.site_runner import CycleSpec, SiteRunner

POLL_S = 0.02


@dataclass(frozen=True)
class ProductionEvent:
    """One finished device, after its record is durable."""

    site: int
    result: DeviceResult
    serial: str | None
    record_id: int
    good: int  # good devices so far in this job (count-down)
    remaining: int | None


@dataclass(frozen=True)
class ProductionSummary:
    good: int
    failed: int
    remaining: int | None
    results: tuple[DeviceResult, ...]


class ProductionRun:
    """Runs one job's device cycles on a programmer's sites until told to stop."""

    def __init__(
        self,
        programmer: Any,
        spec: CycleSpec,
        *,
        job_id: str,
        job_hash: str | None,
        log: ProductionLog,
        wear: SocketWear,
        on_event: Callable[[Event | ProductionEvent], None],
        ledger: SerialLedger | None = None,
        serial_address: int | None = None,
        count_limit: int | None = None,
        wear_threshold: int | None = None,
        operator: str = "",
        station: str | None = None,
        identify_candidates: Callable[[str], list[str]] | None = None,
    ) -> None:
        self.programmer = programmer
        self.spec = spec
        self.job_id = job_id
        self.job_hash = job_hash
        self.log = log
        self.wear = wear
        self.ledger = ledger
        self.serial_address = serial_address
        self.count_limit = count_limit
        self.wear_threshold = wear_threshold
        self.operator = operator
        self.station = station
        self.identify_candidates = identify_candidates
        self._on_event = on_event
        self._emit_lock = threading.Lock()
        self._lock = threading.Lock()
        self.stop_event = threading.Event()
        self.good = int(log.summary(job_id=job_id)["passed"]) if count_limit else 0
        self.failed = 0
        self._in_flight = 0
        self._results: list[DeviceResult] = []
        self.last_serial: dict[int, str | None] = {}  # site -> serial of its last device

    # -- helpers ----------------------------------------------------------------------

    def emit(self, event: Event | ProductionEvent) -> None:
        with self._emit_lock:
            self._on_event(event)

    @property
    def remaining(self) -> int | None:
        if self.count_limit is None:
            return None
        return max(0, self.count_limit - self.good)

    def _claim_slot(self) -> bool:
        """Count-down: start a cycle only if it could still be needed."""
        with self._lock:
            if self.count_limit is not None and self.good + self._in_flight >= self.count_limit:
                return False
            self._in_flight += 1
            return True

    def _release_slot(self, passed: bool) -> None:
        with self._lock:
            self._in_flight -= 1
            if passed:
                self.good += 1
            else:
                self.failed += 1
            if self.count_limit is not None and self.good >= self.count_limit:
                self.stop_event.set()

    def socket_key(self, site: Any) -> str:
        return f"{self.programmer.url}#site{site.index}"

    # -- one device -------------------------------------------------------------------

    def cycle(
        self, site: Any, emit: Callable[[Event | ProductionEvent], None] | None = None
    ) -> DeviceResult | None:
        """Program the part in ``site`` once; None when the count is already reached.

        ``emit`` receives this cycle's events instead of the run's ``on_event`` (the
        window passes its worker's thread-safe, progress-coalescing sink).
        """
        emit = emit or self.emit
        if not self._claim_slot():
            return None
        passed = False
        try:
            insertions = self.wear.insert(self.socket_key(site))
            if self.wear_threshold and insertions >= self.wear_threshold:
                emit(
                    LogEvent(
                        site.index,
                        "warning",
                        f"site {site.index}: socket has {insertions} insertions,"
                        f" at or above the wear threshold {self.wear_threshold}:"
                        " replace the socket",
                    )
                )
            reservation = self.ledger.reserve(site.index) if self.ledger is not None else None
            spec = self.spec
            if reservation is not None and self.serial_address is not None:
                assert spec.image is not None
                spec = replace(
                    spec, image=patch_serial(spec.image, self.serial_address, reservation.data)
                )
            runner = SiteRunner(site, emit, self.identify_candidates)
            result = runner.run(spec, self.stop_event)
            serial_text = reservation.text if reservation is not None else None
            record_id = self._record(result, serial_text, insertions)
            if reservation is not None:
                if result.status == PASS:
                    self.ledger.commit(reservation, str(record_id))
                else:
                    self.ledger.fail(reservation, f"{result.failed_step}: {result.message}")
            passed = result.status == PASS
        finally:
            self._release_slot(passed)
        with self._lock:
            self._results.append(result)
            self.last_serial[site.index] = serial_text
        emit(ProductionEvent(site.index, result, serial_text, record_id, self.good, self.remaining))
        return result

    def _record(self, result: DeviceResult, serial: str | None, insertions: int) -> int:
        record = ProductionRecord.from_result(
            result,
            station=self.station,
            operator=self.operator,
            job_id=self.job_id,
            job_hash=self.job_hash,
            serial=serial,
            socket_insertions=insertions,
        )
        return int(self.log.append(record))

    # -- runs -------------------------------------------------------------------------

    def run_once(self, sites: Iterable[int] | None = None) -> ProductionSummary:
        """Start all (or the given) sites once, in parallel; like the Start button."""
        chosen = self._sites(sites)
        threads = [
            threading.Thread(target=self.cycle, args=(s,), name=f"site-{s.index}") for s in chosen
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return self.summary()

    def run_auto(
        self, sites: Iterable[int] | None = None, idle_timeout_s: float | None = None
    ) -> ProductionSummary:
        """Auto-start: each site starts when a part is inserted in its socket, until the
        count is reached, ``stop()`` is called, or no part arrives for ``idle_timeout_s``."""
        chosen = self._sites(sites)
        threads = [
            threading.Thread(target=self._watch, args=(s, idle_timeout_s), name=f"site-{s.index}")
            for s in chosen
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return self.summary()

    def _watch(self, site: Any, idle_timeout_s: float | None) -> None:
        was_present = False  # a part already in the socket at start counts as inserted
        idle_since = time.monotonic()
        while not self.stop_event.is_set():
            present = site.part_present()
            if present and not was_present:
                if self.cycle(site) is None:
                    return
                idle_since = time.monotonic()
                was_present = True
                continue
            if not present:
                was_present = False
            if idle_timeout_s is not None and time.monotonic() - idle_since > idle_timeout_s:
                self.emit(
                    LogEvent(
                        site.index,
                        "warning",
                        f"site {site.index}: no part inserted for {idle_timeout_s:g} s",
                    )
                )
                return
            self.stop_event.wait(POLL_S)

    def stop(self) -> None:
        self.stop_event.set()

    def _sites(self, sites: Iterable[int] | None) -> list[Any]:
        all_sites = {s.index: s for s in self.programmer.sites}
        wanted = list(sites) if sites is not None else sorted(all_sites)
        return [all_sites[i] for i in wanted]

    def summary(self) -> ProductionSummary:
        with self._lock:
            return ProductionSummary(self.good, self.failed, self.remaining, tuple(self._results))
