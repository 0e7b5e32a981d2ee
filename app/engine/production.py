"""What makes a cycle a production cycle: serial numbers, the production log, socket wear
and the job's count-down. The Station (app.engine.station) runs the cycle; this object
does the bookkeeping around it.

Per device: claim a slot of the count-down -> count the insertion -> reserve a serial in
the ledger -> per-device image = job image + serial patch -> (the station runs the cycle)
-> production-log record (durable) -> serial committed (pass) or failed (otherwise) ->
slot released. The log record is written before the result is reported, and a serial is
committed only after its record exists, so a crash at any point leaves the ledger's
``recover()`` to void the number; it is never handed out twice.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace

from app.engine.events import Event, LogEvent
from app.engine.ledger import Reservation, SerialLedger
from app.engine.production_log import ProductionLog, ProductionRecord
from app.engine.results import PASS, DeviceResult
from app.engine.serialization import patch_serial
from app.engine.site_runner import CycleSpec
from app.engine.socket_wear import SocketWear


class SetupFailed(Exception):
    """A production step before the cycle failed; ``step`` names it, ``cause`` is why."""

    def __init__(self, step: str, cause: Exception) -> None:
        super().__init__(f"{step}: {cause}")
        self.step = step
        self.cause = cause


@dataclass(frozen=True)
class Ticket:
    """One production cycle in progress: its site, serial and per-device spec."""

    site: int
    socket_key: str
    insertions: int
    reservation: Reservation | None
    spec: CycleSpec

    @property
    def serial(self) -> str | None:
        return self.reservation.text if self.reservation is not None else None


class Production:
    """A job's production bookkeeping, shared by every site of a station."""

    def __init__(
        self,
        spec: CycleSpec,
        *,
        job_id: str,
        job_hash: str | None,
        log: ProductionLog,
        wear: SocketWear,
        ledger: SerialLedger | None = None,
        serial_address: int | None = None,
        count_limit: int | None = None,
        wear_threshold: int | None = None,
        operator: str = "",
        station: str | None = None,
    ) -> None:
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
        self._lock = threading.Lock()
        self.good = int(log.summary(job_id=job_id)["passed"]) if count_limit else 0
        self.failed = 0
        self._in_flight = 0
        self.last_serial: dict[int, str | None] = {}  # site -> serial of its last device

    @property
    def remaining(self) -> int | None:
        if self.count_limit is None:
            return None
        return max(0, self.count_limit - self.good)

    def claim(self) -> bool:
        """Count-down: a cycle may start only if it could still be needed. On a log the
        line's stations share, the good count is read again first: the other stations'
        passes count too (only their cycles in flight can still overshoot the count)."""
        with self._lock:
            if self.count_limit is not None and self.log.shared:
                self.good = max(self.good, int(self.log.summary(job_id=self.job_id)["passed"]))
            if self.count_limit is not None and self.good + self._in_flight >= self.count_limit:
                return False
            self._in_flight += 1
            return True

    def release(self, status: str) -> None:
        """The claimed cycle ended with ``status``."""
        with self._lock:
            self._in_flight -= 1
            if status == PASS:
                self.good += 1
            else:
                self.failed += 1

    @property
    def count_reached(self) -> bool:
        return self.count_limit is not None and self.good >= self.count_limit

    def begin(self, site: int, socket_key: str, emit: Callable[[Event], None]) -> Ticket:
        """Count the insertion and reserve the device's serial. Raises SetupFailed naming
        the step (``socket wear`` or ``serial``); the station turns it into the result."""
        try:
            insertions = self.wear.insert(socket_key)
        except Exception as err:
            raise SetupFailed("socket wear", err) from err
        if self.wear_threshold and insertions >= self.wear_threshold:
            emit(
                LogEvent(
                    site,
                    "warning",
                    f"site {site}: socket has {insertions} insertions, at or above the wear"
                    f" threshold {self.wear_threshold}: replace the socket",
                )
            )
        try:
            reservation = self.ledger.reserve(site) if self.ledger is not None else None
        except Exception as err:
            raise SetupFailed("serial", err) from err
        spec = self.spec
        if reservation is not None and self.serial_address is not None:
            assert spec.image is not None
            spec = replace(
                spec, image=patch_serial(spec.image, self.serial_address, reservation.data)
            )
        return Ticket(site, socket_key, insertions, reservation, spec)

    def finish(self, ticket: Ticket | None, result: DeviceResult) -> int:
        """Write the durable log record, then commit or fail the serial; the record id."""
        record = ProductionRecord.from_result(
            result,
            station=self.station,
            operator=self.operator,
            job_id=self.job_id,
            job_hash=self.job_hash,
            serial=ticket.serial if ticket is not None else None,
            socket_insertions=ticket.insertions if ticket is not None else 0,
            programmer=ticket.socket_key.rsplit("#", 1)[0] if ticket is not None else None,
        )
        record_id = int(self.log.append(record))
        if ticket is not None and ticket.reservation is not None:
            assert self.ledger is not None
            if result.status == PASS:
                self.ledger.commit(ticket.reservation, str(record_id))
            else:
                self.ledger.fail(ticket.reservation, f"{result.failed_step}: {result.message}")
        with self._lock:
            self.last_serial[result.site] = ticket.serial if ticket is not None else None
        return record_id

    def abandon(self, ticket: Ticket, reason: str) -> None:
        """The cycle's record could not be written: void its serial now (the part may
        carry it, so it is never reused; if even this fails, the ledger's recover() voids
        it at the next start)."""
        if ticket.reservation is not None and self.ledger is not None:
            self.ledger.void(ticket.reservation.index, reason)
