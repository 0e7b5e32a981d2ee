"""SiteRunner: one device cycle on one site.

socket check -> power on -> identify (ID vs the DB) -> prepare -> the action's steps
(protection, erase, blank check, program, verify, protect; or read / blank check) ->
power off -> DeviceResult. Cancel is cooperative: checked between pages and blocks.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

from app.algorithms import get_algorithm, has_algorithm
from app.algorithms.base import Cancelled, ChipAlgorithm, ChipError, Geometry, Protection
from app.core.image import MemoryImage
from app.devicedb.entry_reader import ID_COMMANDS
from app.devicedb.facts import SpiNorFacts
from app.devicedb.families import FAMILY_ALGORITHMS, Family
from app.devicedb.models import Device
from app.engine.events import Event, LogEvent, PhaseStarted, ProgressEvent
from app.engine.planner import Expected, Plan, plan_program
from app.engine.results import (
    CANCELLED,
    ERROR,
    FAIL,
    LINK_LOST,
    PASS,
    DeviceResult,
    Mismatch,
    compare,
    merge_mismatches,
)
from app.hal.bus import Bus
from app.hal.errors import HalError, LinkError
from app.hal.programmer import Site

log = logging.getLogger(__name__)

#: how the ID commands of parts without RDID are named in messages
_ID_NAMES = {"res": "RES", "rems": "REMS", "atmel_rdid": "Atmel RDID (15h)"}
ACTIONS = ("identify", "program", "verify", "erase", "blank-check", "read")
COMPARE_CHUNK = 1 << 20
#: an adapter id that fits every package (the simulator's default)
UNIVERSAL_ADAPTER = "sim-universal"


@dataclass(frozen=True)
class CycleSpec:
    """What one device cycle does. ``image`` is required for program and verify."""

    action: str
    device: Device
    image: MemoryImage | None = None
    erase_mode: str = "auto"  # auto / full / none
    blank_check: bool = False
    verify: bool = True
    unprotect: bool = False
    protect: bool = False
    skip_matching: bool = False
    read_range: tuple[int, int] | None = None
    #: read twice and compare: True, False, or None = on in-system sites (clips)
    verified_read: bool | None = None
    #: before the first erase or write of an in-system part, keep what it held
    backup: bool = True
    #: socket adapters that fit the device's packages; None skips the adapter check
    adapters: frozenset[str] | None = None


class StepFailed(Exception):
    """A step of the cycle failed on this part. ``mismatch`` (verify, blank and erase
    checks) and ``candidates`` (the parts the ID found instead) go into the result."""

    def __init__(
        self,
        message: str,
        address: int | None = None,
        *,
        mismatch: Mismatch | None = None,
        candidates: Sequence[str] = (),
    ) -> None:
        super().__init__(message)
        self.address = address
        self.mismatch = mismatch
        self.candidates = tuple(candidates)


@dataclass
class _Cycle:
    site: int
    emit: Callable[[Event], None]
    cancel: threading.Event
    step: str = "socket"
    timings: dict[str, float] = field(default_factory=dict)
    chip_id: str | None = None  # as the part answered (hex)
    unique_id: str | None = None  # hex, when the part has one
    read_bytes: int = 0
    verified: bool = False  # the read was done twice and agreed
    backup: str | None = None  # the name of the backup taken before writing
    contents: bytes | None = None  # what the backup read (the part before writing)
    algo: ChipAlgorithm | None = None  # once made

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        self.check_cancel()
        self.step = name
        self.emit(PhaseStarted(self.site, name))
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - t0

    def ticker(self, total: int) -> Callable[[int], None]:
        phase = self.step

        def tick(done: int) -> None:
            self.emit(ProgressEvent(self.site, phase, done, total))
            self.check_cancel()

        tick(0)
        return tick

    def check_cancel(self) -> None:
        if self.cancel.is_set():
            raise Cancelled()


def _past_the_memory(what: str, geometry: Geometry) -> StepFailed:
    """An image or read range beyond the memory as the part is set up (a DataFlash in
    power-of-two page mode is smaller than its DataFlash-page size)."""
    return StepFailed(
        f"{what}, past the {geometry.size:,}-byte memory of this part as it is set up"
        f" ({geometry.page_size}-byte pages)"
    )


class SiteRunner:
    """Runs cycles on one site. ``names(id_hex, bus)`` names the database's parts that
    answer an ID (to say which part was found instead); None names none."""

    def __init__(
        self,
        site: Site,
        emit: Callable[[Event], None],
        names: Callable[[str, str], list[str]] | None = None,
    ) -> None:
        self.site = site
        self.emit = emit
        self.names = names

    def _candidates(self, id_hex: str, bus: str) -> list[str] | None:
        """DB parts answering ``id_hex``; None when no database was given."""
        return None if self.names is None else self.names(id_hex, bus)

    def run(self, spec: CycleSpec, cancel: threading.Event) -> DeviceResult:
        cycle = _Cycle(self.site.index, self.emit, cancel)
        self.site.indicate("busy")
        status, message, address = PASS, "", None
        failed: StepFailed | None = None
        data: bytes | None = None
        try:
            data = self._cycle(spec, cycle)
            message = _pass_message(spec, cycle)
        except StepFailed as err:
            status, message, address, failed = FAIL, str(err), err.address, err
        except ChipError as err:
            status, message, address = FAIL, str(err), err.address
        except Cancelled:
            status, message = CANCELLED, f"stopped by the operator during {cycle.step}"
        except LinkError as err:
            status, message = LINK_LOST, f"link lost during {cycle.step}: {err}"
        except HalError as err:
            status, message = FAIL, f"programmer error during {cycle.step}: {err}"
        except Exception as err:  # a bug must not take the station down
            log.exception("site %s: internal error", self.site.index)
            status, message = ERROR, f"internal error during {cycle.step}: {err!r}"
        finally:
            self._wind_down(cycle, status == PASS)
        with _logged_on_error(self.site.index, "indicating the result"):
            self.site.indicate("pass" if status == PASS else "fail")
        result = DeviceResult(
            site=self.site.index,
            action=spec.action,
            device_id=spec.device.id,
            status=status,
            message=message,
            failed_step=None if status == PASS else cycle.step,
            address=address,
            chip_id=cycle.chip_id,
            candidates=failed.candidates if failed is not None else (),
            unique_id=cycle.unique_id,
            mismatch=failed.mismatch if failed is not None else None,
            timings=dict(cycle.timings),
            data=data,
        )
        level = "info" if result.passed else "error"
        self.emit(LogEvent(self.site.index, level, f"site {self.site.index}: {message}"))
        return result

    def _wind_down(self, cycle: _Cycle, passed: bool) -> None:
        """Leave the site safe whatever happened: the algorithm's own finish (STM32:
        BOOT0 low + reset, so the board runs its new firmware; a failed part stays in
        its bootloader), then power off. Errors here are logged, never raised: the
        cycle's result is already decided."""
        if cycle.algo is not None:
            with _logged_on_error(self.site.index, "finishing"):
                cycle.algo.finish(passed)
        with _logged_on_error(self.site.index, "powering off"):
            self.site.power(False)

    # -- the cycle ------------------------------------------------------------------

    def _cycle(self, spec: CycleSpec, cycle: _Cycle) -> bytes | None:
        device = spec.device
        site = self.site
        in_system = site.in_system
        with cycle.phase("connect" if in_system else "socket"):
            if site.link_lost and not site.reconnect():
                raise LinkError("programmer still disconnected (reopen by serial number failed)")
            if not in_system:  # a board on a clip or header has no socket to check
                self._check_adapter(spec)
                if not site.part_present():
                    raise StepFailed("socket empty: no part detected")
        with cycle.phase("power"):
            # In-system with the board powering itself: enable the buses only.
            board_powered = in_system and site.board_powered
            voltage = None if board_powered else device.voltage_mv[1]
            site.power(True, voltage)
        algo = cycle.algo = self._algorithm(device)
        with cycle.phase("identify"):
            self._identify(algo, device, cycle)
        algo.prepare()
        base = algo.geometry.base if spec.image is not None or spec.read_range else 0
        if base:  # e.g. STM32 flash at 0x08000000: plan and talk in 0-based offsets
            with cycle.phase("plan"):
                spec = _zero_based(spec, base)
        size = algo.geometry.size  # as the part is set up (a DataFlash's page mode)
        if spec.image is not None and not spec.image.is_empty and spec.image.max_address > size:
            with cycle.phase("plan"):
                end = spec.image.max_address + base
                raise _past_the_memory(f"the image reaches 0x{end:X}", algo.geometry)
        if spec.action == "identify":
            return None
        if spec.action == "read":
            return self._read(algo, spec, cycle)
        if spec.action == "blank-check":
            self._blank_check(algo, [(0, algo.geometry.size)], cycle)
            return None
        if spec.action == "verify":
            assert spec.image is not None
            self._verify(algo, Expected.of_image(spec.image), cycle)
            return None
        with cycle.phase("protection"):
            state = algo.protection()
        if spec.backup and site.in_system:
            if state.readable:
                self._backup(algo, spec, cycle)
            else:
                self.emit(
                    LogEvent(
                        site.index,
                        "warning",
                        f"not backed up: the part cannot be read ({state.description})",
                    )
                )
        self._ensure_writable(algo, spec, state, cycle)
        if spec.action == "erase":
            geometry = algo.geometry
            full = spec.image or MemoryImage()
            plan = plan_program(geometry, full, "full")
            self._erase(algo, plan, cycle)
            return None
        assert spec.image is not None
        self._program(algo, spec, cycle)
        return None

    def _check_adapter(self, spec: CycleSpec) -> None:
        adapter = self.site.adapter_id
        if (
            spec.adapters is None
            or adapter in (None, UNIVERSAL_ADAPTER)
            or adapter in spec.adapters
        ):
            return
        fits = ", ".join(sorted(spec.adapters)) or "none (in-system only)"
        raise StepFailed(
            f"adapter {adapter!r} does not fit {spec.device.part}; fitting adapters: {fits}"
        )

    def _algorithm(self, device: Device) -> ChipAlgorithm:
        if self.site.swd is not None:
            if device.swd is None:
                raise StepFailed(
                    f"{device.part} cannot be programmed through SWD (this site is an SWD"
                    " probe; the device database has no SWD facts for the part)"
                )
            return get_algorithm(FAMILY_ALGORITHMS[Family.CORTEX_M])(self.site.swd, device)
        if device.family is Family.CORTEX_M:
            raise StepFailed(
                f"{device.part} is programmed through SWD: use an SWD probe (cmsis-dap://,"
                " stlink://, ftdi://...?swd=1 or sim://)"
            )
        if not has_algorithm(device.algorithm):
            raise StepFailed(f"no '{device.algorithm}' algorithm in this version of Socketeer")
        cls = get_algorithm(device.algorithm)
        buses: dict[Family, Bus | None] = {
            Family.SPI_NOR: self.site.spi,
            Family.I2C_EEPROM: self.site.i2c,
            Family.STM32_UART: self.site.uart,
            Family.SPI_EEPROM: self.site.spi,
            Family.DATAFLASH: self.site.spi,
            Family.MICROWIRE: self.site.microwire,
        }
        bus = buses[device.family]
        if bus is None:
            if device.family is Family.MICROWIRE:
                raise StepFailed(
                    "this programmer cannot drive Microwire (93xx) parts: they need single-bit"
                    " clocking with CS active high (ftdi:// MPSSE boards or sim://; serprog,"
                    " ch341a, ch347 and uart cannot)"
                )
            raise StepFailed(f"this site has no bus for {device.family} parts")
        return cls(bus, device)

    def _identify(self, algo: ChipAlgorithm, device: Device, cycle: _Cycle) -> None:
        ident = algo.identify()
        cycle.chip_id = ident.hex or None
        if not ident.present:
            shown = f": ID reads {ident.hex}" if ident.hex else ": no acknowledge"
            if ident.absent_reason:
                shown = f": {ident.absent_reason} (read {ident.hex or 'nothing'})"
            raise StepFailed(f"no part or bad contact{shown}")
        if ident.bus == "stm32_pid":
            self._check_pid(int.from_bytes(ident.raw[:2], "big"), device)
        if ident.bus == "swd" and ident.raw:
            self._check_swd_id(int.from_bytes(ident.raw, "big"), device)
        if ident.bus in ID_COMMANDS:  # parts without RDID: the answer the DB states
            answer = device.facts_as(SpiNorFacts).id_answer.hex().upper()
            if ident.hex != answer:
                raise StepFailed(
                    f"unexpected part: {_ID_NAMES[ident.bus]} answers {ident.hex}, expected"
                    f" {answer} ({device.vendor} {device.part})"
                )
        expected = device.jedec_id if ident.bus == "jedec" else None
        if expected and ident.hex[:6] not in device.jedec_ids:
            found = ident.hex[:6]
            names = self._candidates(found, "jedec") or []
            what = f" ({' or '.join(names)})" if names else " (not in the device database)"
            ambiguous = f"; {len(names)} parts share this ID" if len(names) > 1 else ""
            raise StepFailed(
                f"unexpected part: found ID {found}{what}{ambiguous}, expected"
                f" {' or '.join(device.jedec_ids)} ({device.vendor} {device.part})",
                candidates=names,
            )
        uid = algo.unique_id() if ident.bus in ("jedec", "swd") and ident.raw else None
        if uid:
            cycle.unique_id = uid.hex().upper()

    def _check_swd_id(self, found: int, device: Device) -> None:
        swd = device.swd
        assert swd is not None
        if found in swd.id_values:
            return
        names = self._candidates(f"{swd.id_address:08X}:{found:X}", "swd")
        what = ""
        if names is not None:
            what = f" ({' or '.join(names)})" if names else " (not in the device database)"
        expected = " or ".join(f"0x{v:X}" for v in swd.id_values)
        raise StepFailed(
            f"unexpected part: the ID register at 0x{swd.id_address:08X} reads 0x{found:X}"
            f"{what}, expected {expected} ({device.vendor} {device.part})",
            candidates=names or [],
        )

    def _check_pid(self, found: int, device: Device) -> None:
        expected = device.stm32_pid
        if expected is None or found == expected:
            return
        names = self._candidates(f"0x{found:03X}", "stm32_pid")
        what = ""
        if names is not None:
            what = f" ({' or '.join(names)})" if names else " (not in the device database)"
        raise StepFailed(
            f"unexpected part: found PID 0x{found:03X}{what}, expected 0x{expected:03X}"
            f" ({device.vendor} {device.part})",
            candidates=names or [],
        )

    def _ensure_writable(
        self, algo: ChipAlgorithm, spec: CycleSpec, state: Protection, cycle: _Cycle
    ) -> None:
        with cycle.phase("protection"):
            if state.protected:
                if not spec.unprotect:
                    raise StepFailed(
                        f"part is write-protected: {state.description};"
                        " enable 'unprotect' to clear it"
                    )
                self.emit(
                    LogEvent(
                        self.site.index,
                        "warning",
                        f"site {self.site.index}: clearing protection: {state.description}",
                    )
                )
                algo.unprotect()

    def _erase(self, algo: ChipAlgorithm, plan: Plan, cycle: _Cycle) -> None:
        geometry = algo.geometry
        with cycle.phase("erase"):
            if plan.chip_erase:
                tick = cycle.ticker(geometry.size)
                algo.erase_chip()
                tick(geometry.size)
            elif plan.erase:
                algo.erase_blocks(plan.erase, cycle.ticker(plan.erase_bytes))
            elif not geometry.erase_blocks and plan.writes:
                algo.program(plan.writes, cycle.ticker(plan.program_bytes))
                return
            # Erase verify: an erase that did not take is named as an erase failure --
            # unless the part reports that itself (then verify reads those ranges).
            if geometry.erase_reported:
                return
            for lo, hi in plan.erased_ranges(geometry.size):
                self._expect_erased(algo, lo, hi, cycle, "did not erase")

    def _expect_erased(
        self, algo: ChipAlgorithm, lo: int, hi: int, cycle: _Cycle, what: str
    ) -> None:
        erased = algo.geometry.erased_value
        base = algo.geometry.base  # report addresses as the image has them
        for start in range(lo, hi, COMPARE_CHUNK):
            end = min(hi, start + COMPARE_CHUNK)
            found = algo.read(start, end - start, lambda _n: cycle.check_cancel())
            blank = bytes([erased]) * (end - start)
            if found != blank:
                m = compare(base + start, blank, found)
                assert m is not None
                raise StepFailed(f"{what}: {m.describe()}", m.address, mismatch=m)

    def _blank_check(
        self, algo: ChipAlgorithm, ranges: list[tuple[int, int]], cycle: _Cycle
    ) -> None:
        with cycle.phase("blank check"):
            total = sum(hi - lo for lo, hi in ranges)
            tick = cycle.ticker(total)
            done = 0
            for lo, hi in ranges:
                self._expect_erased(algo, lo, hi, cycle, "not blank")
                done += hi - lo
                tick(done)

    def _program(self, algo: ChipAlgorithm, spec: CycleSpec, cycle: _Cycle) -> None:
        geometry = algo.geometry
        image = spec.image
        assert image is not None
        current = None
        if spec.skip_matching:
            before = cycle.contents  # the backup's two agreeing reads: no third read

            def current(lo: int, hi: int) -> bytes:
                if before is not None:
                    return before[lo:hi]
                return algo.read(lo, hi - lo, lambda _n: cycle.check_cancel())

        with cycle.phase("plan"):
            plan = plan_program(geometry, image, spec.erase_mode, current)
        if plan.skipped_units:
            self.emit(
                LogEvent(
                    self.site.index,
                    "info",
                    f"site {self.site.index}: {len(plan.skipped_units)} block(s)"
                    " already hold the image: left untouched",
                )
            )
        if plan.blank_units:
            self.emit(
                LogEvent(
                    self.site.index,
                    "info",
                    f"site {self.site.index}: {len(plan.blank_units)} block(s) read blank:"
                    " programmed without an erase",
                )
            )
        erased = plan.erased_ranges(geometry.size)
        if plan.erase or plan.chip_erase or (spec.erase_mode == "full" and plan.writes):
            self._erase(algo, plan, cycle)
        if spec.blank_check:
            ranges = erased or [(s.start, s.end) for s in image.segments]
            self._blank_check(algo, ranges, cycle)
        # Without an erase command, "full" erase already wrote the image with the fill.
        written = spec.erase_mode == "full" and not geometry.erase_blocks
        if plan.writes and not (written and not geometry.chip_erase):
            with cycle.phase("program"):
                algo.program(plan.writes, cycle.ticker(plan.program_bytes))
        if spec.verify:
            self._verify(algo, plan.expected, cycle)
        if spec.protect:
            with cycle.phase("protect"):
                algo.protect()

    def _verify(self, algo: ChipAlgorithm, expected: Expected, cycle: _Cycle) -> None:
        with cycle.phase("verify"):
            tick = cycle.ticker(expected.data_bytes)
            done = 0
            mismatches: list[Mismatch] = []
            base = algo.geometry.base  # report addresses as the image has them
            for lo, hi in expected.ranges:
                for start in range(lo, hi, COMPARE_CHUNK):
                    end = min(hi, start + COMPARE_CHUNK)
                    found = algo.read(start, end - start, lambda _n: cycle.check_cancel())
                    m = compare(base + start, expected.read(start, end), found)
                    if m is not None:
                        mismatches.append(m)
                    done += end - start
                    tick(done)
            merged = merge_mismatches(mismatches)
            if merged is not None:
                raise StepFailed(
                    f"verify failed at {merged.describe()}", merged.address, mismatch=merged
                )

    def _read(self, algo: ChipAlgorithm, spec: CycleSpec, cycle: _Cycle) -> bytes:
        lo, hi = spec.read_range or (0, algo.geometry.size)
        if hi > algo.geometry.size:
            end = hi + algo.geometry.base
            raise _past_the_memory(f"the read range ends at 0x{end:X}", algo.geometry)
        verified = spec.verified_read
        if verified is None:
            verified = self.site.in_system
        with cycle.phase("read"):
            data = self._read_range(algo, lo, hi, cycle, twice=verified)
        cycle.read_bytes = len(data)
        cycle.verified = verified
        return data

    def _read_range(
        self, algo: ChipAlgorithm, lo: int, hi: int, cycle: _Cycle, *, twice: bool
    ) -> bytes:
        """[lo, hi) of the part; with ``twice``, read again and trust it only when both
        reads agree (a clip on a board makes flaky contact), naming where they differ."""
        size = hi - lo
        tick = cycle.ticker(size * (2 if twice else 1))
        first = algo.read(lo, size, tick)
        if not twice:
            return first
        second = algo.read(lo, size, lambda n: tick(size + n))
        if first != second:
            base = algo.geometry.base + lo
            count, where = read_differences(first, second, base)
            shown = ", ".join(f"0x{a:X}" for a in where)
            more = f" and {count - len(where)} more" if count > len(where) else ""
            raise StepFailed(
                f"two reads disagree at {count} byte(s): {shown}{more}; the contact is"
                " not reliable (reseat the clip, check its wiring and the board's power)",
                where[0],
            )
        return first

    def _backup(self, algo: ChipAlgorithm, spec: CycleSpec, cycle: _Cycle) -> None:
        """Keep what the in-system part holds before anything is written to it."""
        from app.engine.backups import save_backup

        size = algo.geometry.size
        with cycle.phase("backup"):
            data = self._read_range(algo, 0, size, cycle, twice=True)
            try:
                kept = save_backup(
                    spec.device, data, unique_id=cycle.unique_id, site=self.site.index
                )
            except OSError as err:
                raise StepFailed(
                    f"the backup could not be saved ({err}); nothing was written to the part"
                ) from None
        cycle.backup = kept.name
        cycle.contents = data
        self.emit(
            LogEvent(
                self.site.index,
                "info",
                f"site {self.site.index}: backed up {size} bytes (two reads agree) as {kept.name}",
            )
        )


def read_differences(
    first: bytes, second: bytes, base: int, show: int = 8
) -> tuple[int, list[int]]:
    """How many bytes differ between two reads of the same range, and the first
    ``show`` addresses (``base`` is the address of the first byte)."""
    count, where = 0, list[int]()
    step = 4096
    for start in range(0, len(first), step):
        a, b = first[start : start + step], second[start : start + step]
        if a == b:
            continue
        for offset, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                count += 1
                if len(where) < show:
                    where.append(base + start + offset)
    return count, where


@contextmanager
def _logged_on_error(site: int, doing: str) -> Iterator[None]:
    try:
        yield
    except Exception:
        log.exception("site %s: error while %s", site, doing)


def _zero_based(spec: CycleSpec, base: int) -> CycleSpec:
    """The spec with image and read range moved from the part's address space (e.g.
    0x08000000 for STM32 flash) to the 0-based offsets planner and algorithms use."""
    image, read_range = spec.image, spec.read_range
    if image is not None and not image.is_empty:
        if image.min_address < base:
            raise StepFailed(
                f"image data at 0x{image.min_address:X} lies below the memory at 0x{base:X}",
                image.min_address,
            )
        image = image.relocated(-base)
    if read_range is not None:
        if read_range[0] < base:
            raise StepFailed(f"read range starts below the memory at 0x{base:X}", read_range[0])
        read_range = (read_range[0] - base, read_range[1] - base)
    return replace(spec, image=image, read_range=read_range)


def _pass_message(spec: CycleSpec, cycle: _Cycle) -> str:
    total = sum(cycle.timings.values())
    verb = {
        "identify": f"ID {cycle.chip_id or 'none'} as expected",
        "program": "programmed and verified" if spec.verify else "programmed",
        "verify": "verified",
        "erase": "erased",
        "blank-check": "blank",
        "read": f"read {cycle.read_bytes} bytes" + (" (two reads agree)" if cycle.verified else ""),
    }[spec.action]
    kept = f"; backup {cycle.backup}" if cycle.backup else ""
    return f"PASS: {verb} in {total:.2f} s{kept}"
