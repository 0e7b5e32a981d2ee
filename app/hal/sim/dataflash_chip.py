"""Bus-level model of an Atmel/Adesto AT45 DataFlash, driven by its device DB entry.

Written from the datasheets' command tables (AT45DB161D, AT45DB321D, AT45DB642D and the
AT45DB321C), not from the algorithm:

- 9Fh Manufacturer and Device ID: 1Fh, device ID bytes 1-2, then the extended device
  information length (01h) and byte (00h).
- D7h Status Register Read, repeated for as many bytes as are clocked: bit 7 RDY/BUSY
  (1 = ready), bit 6 COMP, bits 5-2 density code, bit 1 PROTECT, bit 0 PAGE SIZE
  (1 = power-of-two pages). The only command the part takes while busy.
- Addresses: with DataFlash pages (264/528/1056 bytes) the page number sits above the
  byte-in-page bits (9, 10 or 11 of them); with power-of-two pages they are linear.
- E8h Continuous Array Read (legacy: 3 address bytes, 4 don't-care bytes), 0Bh (1
  don't-care byte) and 03h: the read runs on across pages and wraps at the end.
- 84h Buffer 1 Write (the low address bits are the buffer offset; it wraps in the
  buffer); 53h Main Memory Page to Buffer 1 Transfer.
- 88h Buffer 1 to Main Memory Page Program without erase (a cell only goes from 1 to
  0); 83h the same with built-in erase.
- 81h Page Erase, 50h Block Erase (8 pages), C7h 94h 80h 9Ah Chip Erase.
- 3Dh 2Ah 7Fh A9h / 9Ah enable / disable sector protection (the whole array here, as
  with an erased sector protection register); a protected page takes no program or
  erase.

There is no write enable. The page mode is a one-time setting of the part, so the model
is built in one mode or the other (``binary``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.devicedb.facts import DataFlashFacts, Timing
from app.hal.sim.clock import SimClock
from app.hal.sim.sparse_memory import SparseMemory
from app.hal.sim.spi_nor_chip import ChipFaults

if TYPE_CHECKING:
    from app.devicedb.models import Device

_READY, _PROTECT, _POWER_OF_TWO = 0x80, 0x02, 0x01
_CHIP_ERASE = bytes.fromhex("C794809A")
_ENABLE_PROTECTION = bytes.fromhex("3D2A7FA9")
_DISABLE_PROTECTION = bytes.fromhex("3D2A7F9A")


class DataFlashChip:
    def __init__(
        self,
        device: Device,
        clock: SimClock,
        *,
        faults: ChipFaults | None = None,
        protected: bool = False,
        binary: bool = False,
        jedec_override: bytes | None = None,
    ) -> None:
        facts = device.facts_as(DataFlashFacts)
        self.clock = clock
        self.jedec = jedec_override or facts.jedec_id
        self.binary = binary and facts.binary_page_size is not None
        self.page = facts.page_bytes(self.binary)
        self.pages = facts.pages
        self.size = self.pages * self.page
        self.density = facts.density_code or 0
        self.erased = device.erased_value
        self.memory = SparseMemory(self.size, self.erased)
        self.buffer = bytearray([self.erased]) * self.page
        self.times = {
            "program": facts.page_program,
            "page erase": facts.page_erase,
            "block erase": facts.block_erase,
            "chip erase": facts.chip_erase,
        }
        self.faults = faults or ChipFaults()
        self.protected = protected  # sector protection: non-volatile enable here
        self.busy_until = 0.0

    # -- power and state ------------------------------------------------------------

    def power_cycle(self) -> None:
        if not self.faults.busy_forever:
            self.busy_until = 0.0

    def _busy(self) -> bool:
        return self.clock.now() < self.busy_until

    def ready_at(self) -> float:
        return self.busy_until

    def _start_busy(self, timing: Timing) -> None:
        if self.faults.busy_forever:
            self.busy_until = float("inf")
            return
        self.busy_until = self.clock.now() + self.clock.timing.duration(
            timing.ms_typ, timing.ms_max
        )

    def status(self) -> int:
        ready = 0 if self._busy() else _READY
        protect = _PROTECT if self.protected else 0
        return ready | self.density << 2 | protect | (_POWER_OF_TWO if self.binary else 0)

    # -- addressing -----------------------------------------------------------------

    def _page_and_offset(self, args: bytes) -> tuple[int, int]:
        word = int.from_bytes(args[:3].ljust(3, b"\x00"), "big")
        if self.binary:
            return (word // self.page) % self.pages, word % self.page
        bits = (self.page - 1).bit_length()
        return (word >> bits) % self.pages, (word & ((1 << bits) - 1)) % self.page

    # -- the bus entry point --------------------------------------------------------

    def transaction(self, write: bytes, read_len: int) -> bytes:
        if not write:
            return bytes(read_len)
        op, args = write[0], write[1:]
        if op == 0xD7:
            return bytes([self.status()]) * read_len
        if self._busy():
            return b"\xff" * read_len
        if write[:4] in (_ENABLE_PROTECTION, _DISABLE_PROTECTION):
            self.protected = write[:4] == _ENABLE_PROTECTION
            return bytes(read_len)
        if write[:4] == _CHIP_ERASE:
            if not self.protected:
                self._erase(0, self.pages)
                self._start_busy(self.times["chip erase"])
            return bytes(read_len)
        handler = _HANDLERS.get(op)
        if handler is None:
            return b"\xff" * read_len
        return handler(self, args, read_len)

    def _id(self, args: bytes, n: int) -> bytes:
        answer = self.jedec + b"\x01\x00"
        return (answer + bytes(max(0, n - len(answer))))[:n]

    def _read(self, args: bytes, n: int, dummy: int) -> bytes:
        if len(args) < 3 + dummy:
            return bytes(n)
        page, offset = self._page_and_offset(args)
        at = page * self.page + offset
        out = bytearray()
        while len(out) < n:
            take = min(n - len(out), self.size - at)
            out += self.memory[at : at + take]
            at = 0
        base = page * self.page + offset
        fa = self.faults.verify_address
        if fa is not None and (fa - base) % self.size < n and self.memory[fa] != self.erased:
            out[(fa - base) % self.size] ^= 0x10  # a weak cell once programmed
        return bytes(out)

    def _read_e8(self, args: bytes, n: int) -> bytes:
        return self._read(args, n, 4)

    def _read_0b(self, args: bytes, n: int) -> bytes:
        return self._read(args, n, 1)

    def _read_03(self, args: bytes, n: int) -> bytes:
        return self._read(args, n, 0)

    def _buffer_write(self, args: bytes, n: int) -> bytes:
        if len(args) < 3:
            return bytes(n)
        offset = self._page_and_offset(args)[1]
        for i, value in enumerate(args[3:]):
            self.buffer[(offset + i) % self.page] = value
        return bytes(n)

    def _page_to_buffer(self, args: bytes, n: int) -> bytes:
        page, _ = self._page_and_offset(args)
        self.buffer[:] = self.memory[page * self.page : (page + 1) * self.page]
        return bytes(n)

    def _program(self, args: bytes, n: int, erase: bool) -> bytes:
        if len(args) < 3 or self.protected:
            return bytes(n)
        page, _ = self._page_and_offset(args)
        at = page * self.page
        if erase:
            self._erase(page, 1)
        old = self.memory[at : at + self.page]
        new = bytes(a & b for a, b in zip(old, self.buffer, strict=True))
        stuck = self.faults.stuck_address
        if stuck is not None and at <= stuck < at + self.page:
            keep = bytearray(new)
            keep[stuck - at] |= old[stuck - at] & 0x01  # bit 0 refuses to program
            new = bytes(keep)
        self.memory[at : at + self.page] = new
        self._start_busy(self.times["program"])
        return bytes(n)

    def _program_no_erase(self, args: bytes, n: int) -> bytes:
        return self._program(args, n, erase=False)

    def _program_with_erase(self, args: bytes, n: int) -> bytes:
        return self._program(args, n, erase=True)

    def _erase(self, first_page: int, count: int) -> None:
        lo, hi = first_page * self.page, (first_page + count) * self.page
        self.memory.erase(lo, hi)
        fa = self.faults.erase_fail_address
        if fa is not None and lo <= fa < hi:
            self.memory[fa] = 0x00

    def _page_erase(self, args: bytes, n: int) -> bytes:
        if len(args) >= 3 and not self.protected:
            self._erase(self._page_and_offset(args)[0], 1)
            self._start_busy(self.times["page erase"])
        return bytes(n)

    def _block_erase(self, args: bytes, n: int) -> bytes:
        if len(args) >= 3 and not self.protected:
            page = self._page_and_offset(args)[0]
            self._erase(page - page % 8, 8)
            self._start_busy(self.times["block erase"])
        return bytes(n)


_HANDLERS = {
    0x9F: DataFlashChip._id,
    0xE8: DataFlashChip._read_e8,
    0x0B: DataFlashChip._read_0b,
    0x03: DataFlashChip._read_03,
    0x84: DataFlashChip._buffer_write,
    0x53: DataFlashChip._page_to_buffer,
    0x88: DataFlashChip._program_no_erase,
    0x83: DataFlashChip._program_with_erase,
    0x81: DataFlashChip._page_erase,
    0x50: DataFlashChip._block_erase,
}
