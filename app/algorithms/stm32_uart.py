"""STM32 flash through the ROM UART bootloader (the protocol: app.algorithms.stm32_bootloader).

Addresses: the engine plans on 0-based offsets (``Geometry.base`` = ``flash_base``); this
module puts ``flash_base + offset`` on the wire. The DB's flash layout becomes one erase
region per page/sector size (F2/F4/F7 sectors are not uniform: 4 x 16 KiB, 1 x 64 KiB,
then 128 KiB), so the planner erases exactly the pages or sectors an image touches, and
``erase_blocks`` turns them into page numbers for the erase command.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from app.algorithms import register
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
from app.algorithms.stm32_bootloader import (
    ACK_TIMEOUT_S,
    BLOCK,
    CMD_ERASE,
    CMD_EXT_ERASE,
    BootloaderNack,
    ReadoutProtected,
    Stm32Bootloader,
)
from app.devicedb.facts import MemoryLayout, Stm32Facts, Timing
from app.hal.bus import BootloaderLink

if TYPE_CHECKING:
    from app.devicedb.models import Device

log = logging.getLogger(__name__)

ERASE_CHUNK = 64  # pages per erase command: bounded ACK waits, progress between them
#: Write Memory of one 256-byte block, typical and worst case with the link's round trip
PROGRAM_TIMING = Timing(5.0, 50.0)


def _sector_erase(size: int) -> Timing:
    """Erase time of one page/sector: worst case ~4 s per 128 KiB (F4 sector at x8)."""
    worst_ms = max(50.0, size / 131072 * 4000.0)
    return Timing(worst_ms / 4, worst_ms)


def _chip_erase(size: int) -> Timing:
    worst_ms = 2000.0 + size / 131072 * 4000.0
    return Timing(worst_ms / 4, worst_ms)


def _regions(layout: MemoryLayout, command: int) -> tuple[EraseRegion, ...]:
    """One erase region per run of equal pages/sectors."""
    regions: list[EraseRegion] = []
    start = 0
    for run in layout.runs:
        block = EraseBlock(command, run.size, _sector_erase(run.size))
        regions.append(EraseRegion(start, run.count * run.size, (block,)))
        start += run.count * run.size
    return tuple(regions)


@register
class Stm32Uart(ChipAlgorithm):
    name = "stm32_uart"
    bus: BootloaderLink

    def __init__(self, bus: BootloaderLink, device: Device) -> None:
        super().__init__(bus, device)
        self.facts = device.facts_as(Stm32Facts)
        self.base = self.facts.flash_base
        self.layout = self.facts.flash
        self.erased = device.erased_value
        self.loader = Stm32Bootloader(bus, self.facts.bootloader)
        command = CMD_EXT_ERASE if self.facts.bootloader.extended_erase else CMD_ERASE
        self._geometry = Geometry(
            size=device.size_bytes,
            page_size=min(BLOCK, *(run.size for run in self.layout.runs)),
            regions=_regions(self.layout, command),
            chip_erase=EraseBlock(command, device.size_bytes, _chip_erase(device.size_bytes)),
            erased_value=self.erased,
            program=PROGRAM_TIMING,
            base=self.base,
            erase_reported=True,  # an erase that fails is NACKed (AN3155)
        )

    @property
    def geometry(self) -> Geometry:
        return self._geometry

    # -- ChipAlgorithm ----------------------------------------------------------------

    def identify(self) -> ChipIdentity:
        return ChipIdentity("stm32_pid", self.loader.connect(), True)

    def prepare(self) -> None:
        """Nothing to set: the bootloader measured the baud rate on 0x7F."""

    def read(self, start: int, length: int, tick: Tick) -> bytes:
        self.loader.ensure_connected()
        out = bytearray()
        pos, end = start, start + length
        while pos < end:
            n = min(BLOCK, end - pos)
            out += self.loader.read_memory(self.base + pos, n)
            pos += n
            tick(pos - start)
        return bytes(out)

    def program(self, writes: Sequence[tuple[int, bytes]], tick: Tick) -> None:
        self.loader.ensure_connected()
        done = 0
        for offset, data in writes:
            for first in range(0, len(data), BLOCK):
                block = data[first : first + BLOCK]
                if len(block) % 4:  # the bootloader writes whole words
                    block += bytes([self.erased]) * (4 - len(block) % 4)
                self.loader.write_memory(self.base + offset + first, block)
            done += len(data)
            tick(done)

    # -- erase ------------------------------------------------------------------------

    def erase_blocks(self, blocks: Sequence[tuple[EraseBlock, int]], tick: Tick) -> None:
        """Erase the planned pages/sectors, by their numbers in the layout."""
        numbers: set[int] = set()
        for block, address in blocks:
            numbers.update(self.layout.numbers_in(address, address + block.size))
        self.erase_pages(sorted(numbers), tick)

    def erase_pages(self, numbers: Sequence[int], tick: Tick) -> None:
        self.loader.ensure_connected()
        done = 0
        for first in range(0, len(numbers), ERASE_CHUNK):
            chunk = numbers[first : first + ERASE_CHUNK]
            self._erase_command(chunk)
            done += self._bytes(chunk)
            tick(done)

    def _bytes(self, numbers: Iterable[int]) -> int:
        return sum(self.layout.sectors[n].size for n in numbers)

    def _erase_command(self, numbers: Sequence[int]) -> None:
        spans = self.layout.spans(numbers)
        where = ", ".join(f"0x{self.base + lo:08X}..0x{self.base + hi:08X}" for lo, hi in spans)
        timeout = ACK_TIMEOUT_S + sum(
            _sector_erase(self.layout.sectors[n].size).ms_max / 1000.0 for n in numbers
        )
        self.loader.erase(
            numbers,
            f"erase of {len(numbers)} page(s) at {where}",
            self.base + spans[0][0],
            timeout,
        )

    def _chip_timeout_s(self) -> float:
        chip = self._geometry.chip_erase
        assert chip is not None
        return ACK_TIMEOUT_S + chip.timing.ms_max / 1000.0

    def erase_chip(self) -> None:
        self.loader.ensure_connected()
        try:
            self.loader.mass_erase(self._chip_timeout_s())
        except BootloaderNack:
            # Some parts (STM32L1, dual-bank F4/H7 bootloaders) refuse the mass-erase
            # code: erase page by page instead.
            count = len(self.layout.sectors)
            log.info("mass erase refused; erasing all %d pages one by one", count)
            self.erase_pages(range(count), lambda _n: None)

    # -- protection -------------------------------------------------------------------

    def protection(self) -> Protection:
        self.loader.ensure_connected()
        try:
            self.loader.read_memory(self.base, 4)
        except ReadoutProtected:
            return Protection(
                True,
                "readout protection (RDP) is active: the bootloader refuses Read Memory;"
                " removing it mass-erases the flash",
                readable=False,
            )
        return Protection(False, "readout protection off")

    def unprotect(self) -> None:
        """Readout Unprotect: the part mass-erases, clears RDP and resets itself."""
        self.loader.ensure_connected()
        self.loader.readout_unprotect(self._chip_timeout_s())
        if self.protection().protected:
            raise ChipError(
                "readout protection is still active after Readout Unprotect; power-cycle"
                " the board (some parts load option bytes only at power-on)"
            )

    def protect(self) -> None:
        """Readout Protect (level 1); the part resets to apply it."""
        self.loader.ensure_connected()
        self.loader.readout_protect()

    # -- leaving ----------------------------------------------------------------------

    def finish(self, passed: bool) -> None:
        """End of the cycle: a part that passed runs its (new) firmware (BOOT0 low and
        a reset pulse); a failed one stays in its bootloader."""
        self.loader.leave(run_application=passed)
