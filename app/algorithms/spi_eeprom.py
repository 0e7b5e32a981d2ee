"""25xxx SPI EEPROMs (AT25, 25AA/25LC, M95, CAT25, BR25): READ 03h and WRITE 02h with
1, 2 or 3 address bytes, WREN before every write, status polling, BP0/BP1 protection.

An EEPROM needs no erase: "erase" is writing the erased value, which the engine plans
as ordinary page writes (as for I2C EEPROMs). A WRITE wraps inside its page, so every
write is cut at page boundaries here, whatever the caller hands in. The 4 Kbit parts with
one address byte carry address bit 8 in opcode bit 3 (READ 0Bh / WRITE 0Ah).

These parts have no ID command. Presence is checked by a handshake on the status
register: after WREN the write-enable latch (bit 1) must read 1, after WRDI 0. A missing
part (the bus floats to FFh) or a dead contact (00h) fails it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from app.algorithms import register
from app.algorithms.base import (
    ChipAlgorithm,
    ChipError,
    ChipIdentity,
    EraseBlock,
    Geometry,
    Protection,
    Tick,
)
from app.devicedb.facts import SpiEepromFacts
from app.hal.bus import SpiBus, SpiOp, WaitReady
from app.hal.errors import BusTimeout

if TYPE_CHECKING:
    from app.devicedb.models import Device

READ, WRITE, WREN, WRDI, RDSR, WRSR = 0x03, 0x02, 0x06, 0x04, 0x05, 0x01
RDY, WEL, WPEN = 0x01, 0x02, 0x80  # status bit 0 is /RDY: 1 while a write cycle runs
A8_OPCODE_BIT = 0x08
READ_CHUNK = 16 * 1024
PAGES_PER_BATCH = 16
WRITE_KIND = "eeprom write"  # the busy time the poller learns page writes under


def page_split(address: int, data: bytes, page: int) -> Iterator[tuple[int, bytes]]:
    """``data`` at ``address`` as writes that each stay inside one page."""
    pos = 0
    while pos < len(data):
        at = address + pos
        take = min(len(data) - pos, page - at % page)
        yield at, data[pos : pos + take]
        pos += take


def _protected_part(bits: int, bp_mask: int) -> str:
    """What the BP1/BP0 combination protects (the 25xxx convention for 0x0C)."""
    if bp_mask != 0x0C:
        return f"block-protect bits 0x{bits:02X}"
    return {0x04: "upper quarter", 0x08: "upper half", 0x0C: "whole array"}.get(
        bits, f"block-protect bits 0x{bits:02X}"
    )


@register
class SpiEeprom(ChipAlgorithm):
    name = "spi_eeprom"
    bus: SpiBus

    def __init__(self, bus: SpiBus, device: Device) -> None:
        super().__init__(bus, device)
        self.facts = device.facts_as(SpiEepromFacts)
        self.size = device.size_bytes
        self.write_cycle = self.facts.write_cycle
        self._geometry = Geometry(
            size=device.size_bytes,
            page_size=self.facts.page_size,
            regions=(),
            chip_erase=None,
            erased_value=device.erased_value,
            program=self.facts.write_cycle,
            fill_pages=False,
        )

    @property
    def geometry(self) -> Geometry:
        return self._geometry

    # -- addressing -----------------------------------------------------------------

    def _cmd(self, opcode: int, address: int) -> bytes:
        """Opcode and address; address bit 8 goes into opcode bit 3 on 4 Kbit parts."""
        n: int = self.facts.address_bytes
        if self.facts.address_bit_in_opcode and address & 0x100:
            opcode |= A8_OPCODE_BIT
        word: int = address % (1 << (8 * n))
        return bytes([opcode]) + word.to_bytes(n, "big")

    def _wait(self, kind: str) -> WaitReady:
        cycle = self.write_cycle
        timeout = cycle.ms_max * 1.2 / 1000.0 + 0.02
        return WaitReady(RDSR, RDY, 0x00, timeout, cycle.ms_typ / 1000.0, kind)

    # -- identification -------------------------------------------------------------

    def identify(self) -> ChipIdentity:
        """No ID command: the WEL handshake tells a part from an empty socket."""
        ops = [SpiOp(bytes([WREN])), SpiOp(bytes([RDSR]), 1)]
        ops += [SpiOp(bytes([WRDI])), SpiOp(bytes([RDSR]), 1)]
        results = self.bus.transfer(ops)
        enabled, disabled = results[1][0], results[3][0]
        present = enabled & (RDY | WEL) == WEL and not disabled & WEL
        return ChipIdentity("status", b"" if present else bytes([enabled, disabled]), present)

    def prepare(self) -> None:
        if self.device.max_clock_hz:
            self.bus.set_clock(self.device.max_clock_hz)

    # -- operations -----------------------------------------------------------------

    def read(self, start: int, length: int, tick: Tick) -> bytes:
        out = bytearray()
        pos, end = start, start + length
        while pos < end:
            n = min(READ_CHUNK, end - pos)
            out += self.bus.transfer([SpiOp(self._cmd(READ, pos), n)])[0]
            pos += n
            tick(pos - start)
        return bytes(out)

    def erase_blocks(self, blocks: Sequence[tuple[EraseBlock, int]], tick: Tick) -> None:
        if blocks:
            raise ChipError("SPI EEPROMs have no erase command")

    def erase_chip(self) -> None:
        raise ChipError("SPI EEPROMs have no erase command")

    def program(self, writes: Sequence[tuple[int, bytes]], tick: Tick) -> None:
        page = self.facts.page_size
        pages = [piece for address, data in writes for piece in page_split(address, data, page)]
        wait = self._wait(WRITE_KIND)
        done = 0
        for first in range(0, len(pages), PAGES_PER_BATCH):
            batch = pages[first : first + PAGES_PER_BATCH]
            ops: list[SpiOp | WaitReady] = []
            for address, data in batch:
                ops += [SpiOp(bytes([WREN])), SpiOp(self._cmd(WRITE, address) + data), wait]
            try:
                self.bus.transfer(ops)
            except BusTimeout as err:
                raise ChipError(
                    f"write cycle in 0x{batch[0][0]:X}..0x{batch[-1][0] + len(batch[-1][1]):X}"
                    f" did not finish: {err} (datasheet maximum"
                    f" {self.write_cycle.ms_max:g} ms)",
                    batch[0][0],
                ) from None
            done += sum(len(d) for _, d in batch)
            tick(done)

    # -- protection -----------------------------------------------------------------

    def _status(self) -> int:
        return self.bus.transfer([SpiOp(bytes([RDSR]), 1)])[0][0]

    def protection(self) -> Protection:
        status = self._status()
        bits = status & self.facts.bp_mask
        if bits:
            part = _protected_part(bits, self.facts.bp_mask)
            return Protection(True, f"{part} write-protected (status 0x{status:02X})")
        return Protection(False, "no block-protect bits set")

    def _write_status(self, value: int) -> None:
        try:
            self.bus.transfer(
                [SpiOp(bytes([WREN])), SpiOp(bytes([WRSR, value])), self._wait("status write")]
            )
        except BusTimeout as err:
            raise ChipError(f"status register write did not finish: {err}") from None

    def unprotect(self) -> None:
        """Clear BP1/BP0 (and WPEN, which only arms the WP pin)."""
        status = self._status()
        keep = ~(self.facts.bp_mask | (WPEN if self.facts.wpen else 0)) & 0xFF
        if status & self.facts.bp_mask:
            self._write_status(status & keep & ~(RDY | WEL))
            left = self._status() & self.facts.bp_mask
            if left:
                raise ChipError(
                    f"block protection could not be cleared (status 0x{left:02X} after write);"
                    " is WP held low with WPEN set?"
                )

    def protect(self) -> None:
        """Set every BP bit: the whole array read-only (WPEN is left as it is)."""
        status = self._status()
        self._write_status((status | self.facts.bp_mask) & ~(RDY | WEL) & 0xFF)
        if self._status() & self.facts.bp_mask != self.facts.bp_mask:
            raise ChipError("block-protect bits did not stay set after writing the status register")
