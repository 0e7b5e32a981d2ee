"""Cortex-M microcontrollers through their debug port (SWD): STM32 F0/F1/F3, F2/F4,
G0/G4/L4 and Nordic nRF51/nRF52, programmed by the host through each part's flash
controller (app.algorithms.swd_flash_*) with the core halted.

A cycle: connect (normally, or holding NRST as the site says) -> reset and halt at the
reset vector (firmware never runs while the flash changes) -> identify the part by its
ID register (STM32 DBGMCU_IDCODE, nRF FICR) -> unlock -> erase exactly the pages or
sectors the image touches (or mass erase) -> program -> verify by reading back ->
readout protection as the job says (clearing it mass-erases, and the log says so
before) -> reset and run.

Addresses: the engine plans on 0-based offsets (``Geometry.base`` = flash_base).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from app.algorithms import (
    register,
    swd_flash_stm32,  # noqa: F401 (imported, its drivers register)
)
from app.algorithms.base import (
    ChipAlgorithm,
    ChipError,
    ChipIdentity,
    EraseBlock,
    EraseRegion,
    Geometry,
    Protection,
    Tick,
)
from app.algorithms.cortex_m_core import CortexM
from app.algorithms.swd_flash import FlashController, open_controller
from app.algorithms.swd_flash_nrf import Nrf52Nvmc
from app.devicedb.facts import CortexMFacts, Stm32Facts, Timing
from app.hal.bus import DebugAccess
from app.hal.errors import HalError
from app.hal.swd_site import SwdBus

if TYPE_CHECKING:
    from app.devicedb.models import Device

log = logging.getLogger(__name__)

READ_CHUNK = 4096  # bytes per read batch: progress between them
PROGRAM_PAGE = 1024  # the planner's page
PROGRAM_RUN = 32768  # bytes of contiguous pages programmed together (loader buffers)
ERASE_OPCODE = 0  # erase blocks are pages/sectors by number, not opcodes
NO_ANSWER_HINT = (
    "; check SWDIO/SWCLK/GND and the board's power, and if the firmware turns the SWD"
    " pins off or sleeps at once, wire NRST and use connect=under-reset"
)


@register
class CortexMSwd(ChipAlgorithm):
    name = "cortex_m_swd"
    bus: DebugAccess

    def __init__(self, bus: DebugAccess, device: Device) -> None:
        super().__init__(bus, device)
        facts = device.facts
        swd = device.swd
        if swd is None or not isinstance(facts, Stm32Facts | CortexMFacts):
            raise TypeError(f"{device.id} has no SWD facts")
        self.swd = swd
        self.base = facts.flash_base
        self.layout = facts.flash
        self.core = CortexM(bus)
        self.flash: FlashController = open_controller(bus, swd, self.layout, self.base)
        if not isinstance(bus, SwdBus) or bus.options.loader:
            self.flash.use_loader(facts.ram_base, facts.ram_bytes)
        self.erased = device.erased_value
        self._unlocked = False
        times = self.flash.times
        regions: list[EraseRegion] = []
        start = 0
        for run in self.layout.runs:
            block = EraseBlock(ERASE_OPCODE, run.size, times.erase(run.size))
            regions.append(EraseRegion(start, run.count * run.size, (block,)))
            start += run.count * run.size
        page = min(PROGRAM_PAGE, *(run.size for run in self.layout.runs))
        units_per_page = page // self.flash.unit
        self._geometry = Geometry(
            size=device.size_bytes,
            page_size=page,
            regions=tuple(regions),
            chip_erase=EraseBlock(
                ERASE_OPCODE, device.size_bytes, times.mass_erase(device.size_bytes)
            ),
            erased_value=self.erased,
            program=Timing(
                times.program.ms_typ * units_per_page, times.program.ms_max * units_per_page
            ),
            base=self.base,
        )

    @property
    def geometry(self) -> Geometry:
        return self._geometry

    # -- connect and identify ------------------------------------------------------------

    def identify(self) -> ChipIdentity:
        """Connect, halt the core at its reset vector, read the part's ID register. A
        port that does not answer is an absent part (no board, no contact)."""
        under_reset = isinstance(self.bus, SwdBus) and self.bus.options.under_reset
        try:
            self.bus.connect()
        except HalError as err:
            hint = "" if under_reset else NO_ANSWER_HINT
            return ChipIdentity("swd", b"", False, absent_reason=f"{err}{hint}")
        if isinstance(self.flash, Nrf52Nvmc) and self._nrf52_locked():
            # APPROTECT closes the AHB-AP (core, FICR, flash) until the CTRL-AP's
            # ERASEALL; the CTRL-AP answering is the part being there
            if under_reset:
                self.bus.set_reset(False)
            return ChipIdentity("swd", b"", True)
        self.core.reset_halt(under_reset=under_reset)
        value = self.bus.read_words(self.swd.id_address, 1)[0] & self.swd.id_mask
        if value in self.swd.id_values:  # the part we know how to set up
            self.flash.prepare_halted()
        return ChipIdentity("swd", value.to_bytes(4, "big"), True)

    def _nrf52_locked(self) -> bool:
        return not self.flash.protection().readable

    def prepare(self) -> None:
        """Nothing to set: the probe's SWD clock is the site's."""

    def unique_id(self) -> bytes | None:
        """The part's factory unique ID (STM32 96-bit UID, nRF DEVICEID)."""
        try:
            return self.flash.unique_id()
        except HalError:
            return None

    # -- read ---------------------------------------------------------------------------

    def read(self, start: int, length: int, tick: Tick) -> bytes:
        out = bytearray()
        first, end = start & ~3, start + length
        pos = first
        while pos < end:
            n = min(READ_CHUNK, (end + 3 & ~3) - pos)
            words = self.bus.read_words(self.base + pos, n // 4)
            out += b"".join(word.to_bytes(4, "little") for word in words)
            pos += n
            tick(min(pos, end) - start)
        return bytes(out[start - first : start - first + length])

    # -- erase and program ----------------------------------------------------------------

    def _unlock(self) -> None:
        if not self._unlocked:
            self.flash.unlock()
            self._unlocked = True

    def erase_blocks(self, blocks: Sequence[tuple[EraseBlock, int]], tick: Tick) -> None:
        self._unlock()
        numbers: list[int] = []
        for block, address in blocks:
            numbers += [n for n in self.layout.numbers_in(address, address + block.size)]
        done = 0
        for number in sorted(set(numbers)):
            self.flash.erase_sector(number)
            done += self.layout.sectors[number].size
            tick(done)

    def erase_chip(self) -> None:
        self._unlock()
        self.flash.mass_erase()

    def program(self, writes: Sequence[tuple[int, bytes]], tick: Tick) -> None:
        """Program the planner's pages; contiguous ones go to the controller together
        (up to PROGRAM_RUN bytes), so a flash loader run carries as much as it can."""
        self._unlock()
        unit = self.flash.unit
        done = 0
        for offset, data, count in _runs(writes, PROGRAM_RUN):
            lo = offset - offset % unit
            padded = bytes([self.erased]) * (offset - lo) + data
            if len(padded) % unit:
                padded += bytes([self.erased]) * (unit - len(padded) % unit)
            self.flash.program(self.base + lo, padded)
            done += count
            tick(done)

    # -- protection ---------------------------------------------------------------------

    def protection(self) -> Protection:
        return self.flash.protection()

    def unprotect(self) -> None:
        """Clear readout protection (the part erases its whole flash), then reset so
        it loads the cleared option bytes, and halt again."""
        if self.flash.set_protection(False):
            self.bus.connect()
        self.core.reset_halt()
        self._unlocked = False
        if self.flash.protection().protected:
            raise ChipError(
                "readout protection is still on after clearing it; power-cycle the board"
                " (some parts load their option bytes only at power-on)"
            )
        found = self.bus.read_words(self.swd.id_address, 1)[0] & self.swd.id_mask
        if found not in self.swd.id_values:  # a locked nRF52 could not be asked before
            raise ChipError(
                f"unexpected part: once unlocked, the ID register at 0x{self.swd.id_address:08X}"
                f" reads 0x{found:X}, not {self.device.part}'s"
            )

    def protect(self) -> None:
        """Set readout protection; it takes hold at the next reset (finish() runs the
        part), except where setting it resets the part at once (G0/G4/L4 OBL_LAUNCH)."""
        self._unlock()
        if self.flash.set_protection(True):
            self.bus.connect()
            self.core.halt()
        self._unlocked = False

    # -- leaving ------------------------------------------------------------------------

    def finish(self, passed: bool) -> None:
        """A part that passed is locked again and runs its new firmware; a failed one
        stays halted."""
        if passed:
            if self._unlocked:
                self.flash.lock()
            self.core.run()


def _runs(writes: Sequence[tuple[int, bytes]], most: int) -> list[tuple[int, bytes, int]]:
    """Contiguous writes joined, each run at most ``most`` bytes: (offset, data, bytes
    of the writes in it)."""
    runs: list[tuple[int, bytes, int]] = []
    for offset, data in writes:
        if runs:
            start, joined, count = runs[-1]
            if start + len(joined) == offset and len(joined) + len(data) <= most:
                runs[-1] = (start, joined + data, count + len(data))
                continue
        runs.append((offset, bytes(data), len(data)))
    return runs
