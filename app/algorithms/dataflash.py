"""Atmel/Adesto AT45 DataFlash (AT45DB011D ... AT45DB642D, AT45DB321C/E).

A DataFlash is written through an SRAM buffer, not by page program: Buffer 1 Write
(84h + buffer offset + data) fills the buffer, Buffer 1 to Main Memory Page Program
without built-in erase (88h + page address) programs a page from it. Erases are by page
(81h), by block of 8 pages (50h) and by chip (C7h 94h 80h 9Ah, four bytes). The status
register is read with D7h: bit 7 is READY (1 = ready, the inverse of a 25-series WIP),
bits 5-2 the density code, bit 1 PROTECT (sector protection enabled), bit 0 the page
size mode (1 = power-of-two pages). There is no write enable.

Pages are 264, 528 or 1056 bytes ("DataFlash" pages), and most parts can be set once to
256/512/1024-byte pages. The mode is read from the part in ``prepare``; the geometry
follows it. In DataFlash mode an address is segmented: page number above the byte
offset, which takes ceil(log2(page size)) bits (9, 10 or 11), so the engine's linear
offsets are converted here; in power-of-two mode they are used as they are.

The whole page always goes through the buffer (bytes the image leaves out as the erased
value, which programs nothing), so stale buffer contents never reach the array.
"""

from __future__ import annotations

from collections.abc import Sequence
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
from app.algorithms.spi_nor import busy_timeout_s, identify_jedec
from app.devicedb.facts import DataFlashFacts, Timing
from app.hal.bus import SpiBus, SpiOp, WaitReady
from app.hal.errors import BusTimeout

if TYPE_CHECKING:
    from app.devicedb.models import Device

STATUS_READ = 0xD7
READY, PROTECT, BINARY_PAGES = 0x80, 0x02, 0x01
CONTINUOUS_READ = 0xE8  # + 3 address bytes + 4 don't-care bytes; works on C, D and E parts
BUFFER1_WRITE, BUFFER1_TO_PAGE = 0x84, 0x88
PAGE_ERASE, BLOCK_ERASE = 0x81, 0x50
CHIP_ERASE = bytes.fromhex("C794809A")
DISABLE_SECTOR_PROTECTION = bytes.fromhex("3D2A7F9A")
ENABLE_SECTOR_PROTECTION = bytes.fromhex("3D2A7FA9")
READ_CHUNK = 16 * 1024
PAGES_PER_BATCH = 8
BLOCK_PAGES = 8


def device_address(offset: int, page_size: int, binary: bool) -> int:
    """The 24-bit address the part takes for a linear ``offset``: as it is with
    power-of-two pages, else the page number shifted above the byte-in-page bits."""
    if binary:
        return offset
    bits = (page_size - 1).bit_length()
    return (offset // page_size) << bits | offset % page_size


@register
class DataFlash(ChipAlgorithm):
    name = "dataflash"
    bus: SpiBus

    def __init__(self, bus: SpiBus, device: Device) -> None:
        super().__init__(bus, device)
        self.facts = device.facts_as(DataFlashFacts)
        #: the page mode; the part's own status register decides it in prepare()
        self.binary = self.facts.binary_page_size is not None
        self._geometry = self._layout()

    def _layout(self) -> Geometry:
        facts = self.facts
        page = facts.page_bytes(self.binary)
        size = facts.pages * page
        blocks = (
            EraseBlock(PAGE_ERASE, page, facts.page_erase),
            EraseBlock(BLOCK_ERASE, BLOCK_PAGES * page, facts.block_erase),
        )
        return Geometry(
            size=size,
            page_size=page,
            regions=(EraseRegion(0, size, blocks),),
            chip_erase=EraseBlock(CHIP_ERASE[0], size, facts.chip_erase),
            erased_value=self.device.erased_value,
            program=facts.page_program,
        )

    @property
    def geometry(self) -> Geometry:
        return self._geometry

    # -- identification and mode ---------------------------------------------------

    def identify(self) -> ChipIdentity:
        return identify_jedec(self.bus)

    def _status(self) -> int:
        return self.bus.transfer([SpiOp(bytes([STATUS_READ]), 1)])[0][0]

    def prepare(self) -> None:
        if self.device.max_clock_hz:
            self.bus.set_clock(self.device.max_clock_hz)
        status = self._status()
        code = self.facts.density_code
        if code is not None and (status >> 2) & 0x0F != code:
            raise ChipError(
                f"status register 0x{status:02X} gives density code 0x{(status >> 2) & 0x0F:X},"
                f" not this part's 0x{code:X}: another DataFlash density?"
            )
        self.binary = self.facts.binary_page_size is not None and bool(status & BINARY_PAGES)
        self._geometry = self._layout()

    def _address(self, offset: int) -> bytes:
        return device_address(offset, self._geometry.page_size, self.binary).to_bytes(3, "big")

    def _wait(self, timing: Timing, kind: str) -> WaitReady:
        return WaitReady(
            STATUS_READ, READY, READY, busy_timeout_s(timing.ms_max), timing.ms_typ / 1000.0, kind
        )

    # -- operations -----------------------------------------------------------------

    def read(self, start: int, length: int, tick: Tick) -> bytes:
        out = bytearray()
        pos, end = start, start + length
        while pos < end:
            n = min(READ_CHUNK, end - pos)
            cmd = bytes([CONTINUOUS_READ]) + self._address(pos) + bytes(4)
            out += self.bus.transfer([SpiOp(cmd, n)])[0]
            pos += n
            tick(pos - start)
        return bytes(out)

    def erase_blocks(self, blocks: Sequence[tuple[EraseBlock, int]], tick: Tick) -> None:
        done = 0
        for block, address in blocks:
            kind = "page erase" if block.opcode == PAGE_ERASE else "block erase"
            try:
                self.bus.transfer(
                    [
                        SpiOp(bytes([block.opcode]) + self._address(address)),
                        self._wait(block.timing, kind),
                    ]
                )
            except BusTimeout as err:
                raise ChipError(
                    f"{kind} at 0x{address:X} timed out: {err}"
                    f" (datasheet maximum {block.timing.ms_max:g} ms)",
                    address,
                ) from None
            done += block.size
            tick(done)

    def erase_chip(self) -> None:
        timing = self.facts.chip_erase
        try:
            self.bus.transfer([SpiOp(CHIP_ERASE), self._wait(timing, "chip erase")])
        except BusTimeout as err:
            raise ChipError(
                f"chip erase timed out: {err} (datasheet maximum {timing.ms_max:g} ms)"
            ) from None

    def program(self, writes: Sequence[tuple[int, bytes]], tick: Tick) -> None:
        geo = self._geometry
        page = geo.page_size
        wait = self._wait(geo.program, "page program")
        pages: dict[int, bytearray] = {}
        for address, data in writes:  # whole pages through the buffer, however cut
            pos = 0
            while pos < len(data):
                at = address + pos
                start, offset = at - at % page, at % page
                take = min(len(data) - pos, page - offset)
                buffer = pages.setdefault(start, bytearray([geo.erased_value]) * page)
                buffer[offset : offset + take] = data[pos : pos + take]
                pos += take
        order = sorted(pages)
        done = 0
        for first in range(0, len(order), PAGES_PER_BATCH):
            batch = order[first : first + PAGES_PER_BATCH]
            ops: list[SpiOp | WaitReady] = []
            for start in batch:
                ops += [
                    SpiOp(bytes([BUFFER1_WRITE, 0, 0, 0]) + bytes(pages[start])),
                    SpiOp(bytes([BUFFER1_TO_PAGE]) + self._address(start)),
                    wait,
                ]
            try:
                self.bus.transfer(ops)
            except BusTimeout as err:
                raise ChipError(
                    f"page program in 0x{batch[0]:X}..0x{batch[-1] + page:X} timed out:"
                    f" {err} (datasheet maximum {geo.program.ms_max:g} ms)",
                    batch[0],
                ) from None
            done += len(batch) * page
            tick(done)

    # -- protection -----------------------------------------------------------------

    def protection(self) -> Protection:
        if self._status() & PROTECT:
            return Protection(
                True,
                "sector protection enabled (status bit 1); the sector protection"
                " register says which sectors",
            )
        return Protection(False, "sector protection disabled")

    def unprotect(self) -> None:
        self.bus.transfer([SpiOp(DISABLE_SECTOR_PROTECTION)])
        if self._status() & PROTECT:
            raise ChipError(
                "sector protection stayed enabled after Disable Sector Protection (3Dh 2Ah"
                " 7Fh 9Ah); is WP# held low?"
            )

    def protect(self) -> None:
        self.bus.transfer([SpiOp(ENABLE_SECTOR_PROTECTION)])
        if not self._status() & PROTECT:
            raise ChipError(
                "sector protection did not enable (3Dh 2Ah 7Fh A9h); status bit 1 stayed 0"
            )
