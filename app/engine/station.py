"""Station: the one engine API every front end drives (CLI commands, ``socketeer run``,
the window).

It runs cycles on a programmer's sites: service cycles (detect, read, verify, erase,
blank check, and program from the CLI) and production cycles (a job's, with serials, the
production log and the count-down, through :class:`~app.engine.production.Production`).
It also owns auto-start on insertion. Front ends differ only in data: which spec, which
sites, counted or not, and which thread calls :meth:`Station.cycle`.

The contract: every started cycle emits exactly one ``CycleStarted`` and, whatever is
raised inside it (serials exhausted, a storage error, a lost link, a bug), exactly one
``CycleFinished`` carrying its result; no exception leaves :meth:`Station.cycle`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from app.core.errors import SocketeerError
from app.engine.cycle import NameLookup
from app.engine.events import CycleFinished, CycleStarted, Event, LogEvent, SiteIdle
from app.engine.results import ERROR, FAIL, DeviceResult
from app.engine.site_runner import CycleSpec, SiteRunner
from app.engine.tally import Tally
from app.hal.programmer import Programmer, Site

if TYPE_CHECKING:  # a production run's bookkeeping loads with its job (app.engine.job_setup)
    from app.engine.production import Production, Ticket

log = logging.getLogger(__name__)

#: how often auto-start looks at a socket's detect pin
POLL_S = 0.02

Emit = Callable[[Event], None]


@dataclass(frozen=True)
class StationResult:
    """What a run added up to (``tally``: every cycle it started) and the last result of
    each site that ran. A run keeps counts, not every result, so a shift of auto-start
    does not grow with the number of parts."""

    results: tuple[DeviceResult, ...]
    tally: Tally
    remaining: int | None = None

    @property
    def passed(self) -> int:
        return self.tally.passed

    @property
    def failed(self) -> int:
        return self.tally.total - self.tally.passed

    @property
    def all_passed(self) -> bool:
        return bool(self.results) and self.failed == 0

    @property
    def exit_code(self) -> int:
        return self.tally.exit_code


class Station:
    """Owns a programmer's sites. ``on_event`` receives every event (from worker threads,
    one at a time); a cycle may be given its own ``emit`` instead (the window's
    per-site worker)."""

    def __init__(
        self,
        programmer: Programmer,
        on_event: Emit,
        names: NameLookup | None = None,
        production: Production | None = None,
    ) -> None:
        self.programmer = programmer
        self.on_event = on_event
        self.names = names
        self.production = production
        self.stop_event = threading.Event()
        self._emit_lock = threading.Lock()
        self._busy: set[int] = set()
        self._busy_lock = threading.Lock()
        self._tally = Tally()
        self._last: dict[int, DeviceResult] = {}  # site -> its latest result
        self._drive_warned: set[str] = set()  # device ids warned about line voltage

    # -- sites ------------------------------------------------------------------------

    @property
    def site_numbers(self) -> list[int]:
        return [site.index for site in self.programmer.sites]

    def site(self, index: int) -> Site:
        for site in self.programmer.sites:
            if site.index == index:
                return site
        raise ValueError(f"no site {index} on this programmer (sites {self.site_numbers})")

    def busy(self, index: int) -> bool:
        with self._busy_lock:
            return index in self._busy

    def _emit(self, event: Event) -> None:
        with self._emit_lock:  # consumers need not be thread-safe
            self.on_event(event)

    def stop(self) -> None:
        """Abort every running cycle (cooperatively) and end auto-start loops."""
        self.stop_event.set()

    def socket_key(self, index: int) -> str:
        return f"{self.programmer.url}#site{index}"

    # -- one cycle --------------------------------------------------------------------

    def cycle(
        self,
        index: int,
        spec: CycleSpec,
        *,
        counted: bool = False,
        cancel: threading.Event | None = None,
        emit: Emit | None = None,
    ) -> DeviceResult | None:
        """Run one cycle on site ``index`` in the calling thread.

        ``counted`` makes it a production cycle of the station's job. Returns its
        result, or None when no cycle started (the site is busy, or the count is
        reached: a ``SiteIdle`` event says so).
        """
        emit = _shielded(emit or self._emit)
        cancel = cancel or self.stop_event
        production = self.production if counted else None
        if counted and production is None:
            raise ValueError("a counted cycle needs a job (the station has no production)")
        with self._busy_lock:
            if index in self._busy:
                return None
            self._busy.add(index)
        try:
            if production is not None and not production.claim():
                emit(SiteIdle(index))
                return None
            emit(CycleStarted(index, spec.action, counted))
            self._warn_drive_level(index, spec, emit)
            result, ticket, record_id = self._guarded(index, spec, production, cancel, emit)
            good = remaining = None
            if production is not None:
                production.release(result.status)
                good, remaining = production.good, production.remaining
                if production.count_reached:
                    self.stop_event.set()
            with self._busy_lock:
                self._tally = self._tally.add(result.status)
                self._last[index] = result
            serial = ticket.serial if ticket is not None else None
            emit(CycleFinished(index, result, counted, serial, record_id, good, remaining))
            return result
        finally:
            with self._busy_lock:
                self._busy.discard(index)

    def _guarded(
        self,
        index: int,
        spec: CycleSpec,
        production: Production | None,
        cancel: threading.Event,
        emit: Emit,
    ) -> tuple[DeviceResult, Ticket | None, int | None]:
        """The cycle and its bookkeeping; every exception becomes the cycle's result."""
        ticket: Ticket | None = None
        try:
            if production is not None:
                ticket = production.begin(index, self.socket_key(index), emit)
                spec = ticket.spec
            result = SiteRunner(self.site(index), emit, self.names).run(spec, cancel)
        except Exception as err:  # the runner reports its own; this is before it ran
            result = _not_run(index, spec, err)
            emit(LogEvent(index, "error", f"site {index}: {result.message}"))
        record_id = None
        if production is not None:
            try:
                record_id = production.finish(ticket, result)
            except Exception as err:
                if not isinstance(err, SocketeerError):
                    log.exception("site %s: production record not written", index)
                message = f"production record not written: {err}"
                result = _with_error(result, message)
                emit(LogEvent(index, "error", f"site {index}: {message}"))
                if ticket is not None:
                    self._abandon(production, ticket, message, index, emit)
        return result, ticket, record_id

    def _abandon(
        self, production: Production, ticket: Ticket, reason: str, index: int, emit: Emit
    ) -> None:
        try:
            production.abandon(ticket, reason)
        except Exception as err:  # recover() at the next start voids it
            emit(
                LogEvent(
                    index,
                    "error",
                    f"site {index}: serial {ticket.serial} left reserved ({err});"
                    " it is voided at the next start",
                )
            )

    # -- several sites ----------------------------------------------------------------

    def run(
        self, spec: CycleSpec, sites: Iterable[int] | None = None, *, counted: bool = False
    ) -> StationResult:
        """Run ``spec`` once on ``sites`` (default all) in parallel; like Start."""
        chosen = self._chosen(sites)
        self.stop_event.clear()
        before = self._begin_run()
        self._threads(chosen, lambda i: self.cycle(i, spec, counted=counted))
        return self._result_since(before)

    def run_auto(
        self,
        spec: CycleSpec,
        sites: Iterable[int] | None = None,
        *,
        counted: bool = True,
        idle_timeout_s: float | None = None,
    ) -> StationResult:
        """Auto-start on ``sites`` until the count is reached, ``stop()``, or no part
        arrives for ``idle_timeout_s``."""
        chosen = self._chosen(sites)
        self.stop_event.clear()
        before = self._begin_run()
        self._threads(
            chosen, lambda i: self.watch(i, spec, counted=counted, idle_timeout_s=idle_timeout_s)
        )
        return self._result_since(before)

    def watch(
        self,
        index: int,
        spec: CycleSpec,
        *,
        counted: bool = True,
        idle_timeout_s: float | None = None,
        emit: Emit | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        """Auto-start on one site, in the calling thread: a cycle for each new part.

        A part is new when the socket went from empty to occupied, or when the site's
        insertion count moved since the last cycle started: a handler (or a quick hand)
        can swap a part faster than this loop looks at the socket, and that swap is
        seen by state, not missed. A part already there at the start counts as new.
        """
        emit = emit or self._emit
        stop = stop or self.stop_event
        site = self.site(index)
        was_present = False
        seen = site.insertions
        idle_since = time.monotonic()
        while not stop.is_set() and not self._count_reached():
            present = site.part_present()
            swapped = site.insertions != seen
            if present and (swapped or not was_present):
                seen = site.insertions  # before the cycle: a swap during it is a new part
                started = self.cycle(index, spec, counted=counted, cancel=stop, emit=emit)
                if started is None and self._count_reached():
                    return
                idle_since = time.monotonic()
                was_present = True
                continue
            if not present:
                was_present = False
            if idle_timeout_s is not None and time.monotonic() - idle_since > idle_timeout_s:
                emit(
                    LogEvent(
                        index, "warning", f"site {index}: no part inserted for {idle_timeout_s:g} s"
                    )
                )
                return
            stop.wait(POLL_S)

    def _warn_drive_level(self, index: int, spec: CycleSpec, emit: Emit) -> None:
        """Once per part: a programmer that may drive its lines above the part's rating
        (an unmodified black CH341A board, 5 V) and was not told otherwise (vcc=)."""
        drive = self.programmer.capabilities.unstated_drive_mv
        device = spec.device
        if not drive or device.voltage_mv.max_mv >= drive:
            return
        with self._busy_lock:
            if device.id in self._drive_warned:
                return
            self._drive_warned.add(device.id)
        emit(
            LogEvent(
                index,
                "warning",
                f"the programmer may drive its signal lines at {drive / 1000:g} V, but the"
                f" {device.part} allows at most {device.voltage_mv.max_mv / 1000:g} V: use a"
                " 1.8/3.3 V adapter or a modified board and say so with vcc= in the"
                " programmer URL (which then refuses parts rated below it)",
            )
        )

    def _count_reached(self) -> bool:
        return self.production is not None and self.production.count_reached

    def _chosen(self, sites: Iterable[int] | None) -> list[int]:
        chosen = list(sites) if sites is not None else self.site_numbers
        unknown = sorted(set(chosen) - set(self.site_numbers))
        if unknown:
            raise ValueError(f"no site(s) {unknown} on this programmer")
        return chosen

    @staticmethod
    def _threads(chosen: list[int], work: Callable[[int], object]) -> None:
        threads = [
            threading.Thread(target=work, args=(i,), name=f"site-{i}", daemon=True) for i in chosen
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def _begin_run(self) -> Tally:
        with self._busy_lock:
            self._last.clear()
            return self._tally

    def _result_since(self, before: Tally) -> StationResult:
        with self._busy_lock:
            results = tuple(self._last[site] for site in sorted(self._last))
            tally = self._tally.minus(before)
        remaining = self.production.remaining if self.production is not None else None
        return StationResult(results, tally, remaining)


def _shielded(emit: Emit) -> Emit:
    """``emit`` that cannot break a cycle: a consumer's exception is logged, not raised
    into the worker (the cycle's result must still be recorded and reported)."""

    def safe(event: Event) -> None:
        try:
            emit(event)
        except Exception:
            log.exception("event consumer failed on %r", event)

    return safe


def _not_run(index: int, spec: CycleSpec, err: Exception) -> DeviceResult:
    """The result of a cycle that ended before it reached the part: no serial number
    left is the device's failure; anything else is the station's error (a storage
    failure named as such, anything unexpected as an internal error, with a traceback
    in the log)."""
    from app.engine.production import SetupFailed
    from app.engine.serialization import SerialsExhausted

    step = "setup"
    if isinstance(err, SetupFailed):
        step, err = err.step, err.cause
    if isinstance(err, SerialsExhausted):  # said first, then why (not twice)
        detail = str(err).removesuffix(": no serial numbers left")
        status, message = FAIL, f"no serial numbers left: {detail}"
    elif isinstance(err, SocketeerError):
        status, message = ERROR, f"{step}: {err}"
    elif isinstance(err, OSError):
        status, message = ERROR, f"{step}: could not be recorded: {err}"
    else:  # a bug must not take the station down
        log.error("site %s: internal error before the cycle", index, exc_info=err)
        status, message = ERROR, f"internal error at {step}: {err!r}"
    return DeviceResult(
        site=index,
        action=spec.action,
        device_id=spec.device.id,
        status=status,
        message=message,
        failed_step=step,
    )


def _with_error(result: DeviceResult, message: str) -> DeviceResult:
    """``result`` turned into the station's error ``message`` (what the cycle itself
    did stays in the text, so a passed part is not mistaken for a failed one)."""
    text = f"{message} (the cycle itself: {result.message})" if result.message else message
    return replace(result, status=ERROR, message=text, failed_step="log")
