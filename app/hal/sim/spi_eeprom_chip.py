"""Bus-level model of a 25xxx SPI EEPROM, driven by its device DB entry.

Written from the datasheets' instruction tables (Microchip 25AA040A/25LC256/25LC1024,
Microchip AT25010B-AT25M01, ST M95xxx, onsemi CAT25xxx), not from the algorithm:

- 06h WREN sets the write-enable latch (WEL, status bit 1); 04h WRDI clears it. WEL also
  clears at power-up and when a WRITE or WRSR ends (or is refused).
- 05h RDSR: bit 0 /RDY (1 during the self-timed write cycle), bit 1 WEL, bits 2-3
  BP0/BP1, bit 7 WPEN where the part has it; bits 4-6 read 0.
- 01h WRSR writes BP0/BP1 (and WPEN); it is a non-volatile write with its own write
  cycle. With WPEN set and the WP pin low the status register does not change.
- 03h READ + address: sequential read, the address counter rolls over at the end.
- 02h WRITE + address + up to one page: bytes past the page end wrap to the page start.
  A write into a block the BP bits protect is ignored.
- 4 Kbit parts with one address byte: opcode bit 3 is address bit 8 (0Bh / 0Ah).
- During a write cycle only RDSR is answered; other instructions are ignored.

The BP bits are non-volatile: they survive a power cycle (the ``protected`` fault
starts the part with BP1/BP0 set). BP 01 protects the upper quarter, 10 the upper half,
11 the whole array.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.devicedb.facts import SpiEepromFacts
from app.hal.sim.clock import SimClock
from app.hal.sim.spi_nor_chip import ChipFaults

if TYPE_CHECKING:
    from app.devicedb.models import Device

# Instruction set of the 25xxx family (datasheet instruction tables)
_WRSR, _WRITE, _READ, _WRDI, _RDSR, _WREN = 0x01, 0x02, 0x03, 0x04, 0x05, 0x06
_NOT_READY, _WRITE_ENABLED, _WRITE_PROTECT_ENABLE = 0x01, 0x02, 0x80
_BP0, _BP1 = 0x04, 0x08


class SpiEepromChip:
    def __init__(
        self,
        device: Device,
        clock: SimClock,
        *,
        faults: ChipFaults | None = None,
        protected: bool = False,
        wp_low: bool = False,
    ) -> None:
        facts = device.facts_as(SpiEepromFacts)
        self.clock = clock
        self.size = device.size_bytes
        self.page_size = facts.page_size
        self.address_bytes = facts.address_bytes
        self.a8_in_opcode = facts.address_bit_in_opcode
        self.write_cycle = facts.write_cycle
        self.has_wpen = facts.wpen
        self.erased = device.erased_value
        self.memory = bytearray([self.erased]) * self.size
        self.faults = faults or ChipFaults()
        self.wp_low = wp_low  # the WP pin: low write-protects the status register if WPEN
        # non-volatile status bits (BP1/BP0, WPEN)
        self.nv_status = (_BP1 | _BP0) if protected else 0
        self.wel = False
        self.busy_until = 0.0
        self.writes = 0  # WRITE instructions that started a write cycle (for tests)

    # -- power and state ------------------------------------------------------------

    def power_cycle(self) -> None:
        self.wel = False
        if not self.faults.busy_forever:
            self.busy_until = 0.0

    def _busy(self) -> bool:
        return self.clock.now() < self.busy_until

    def ready_at(self) -> float:
        return self.busy_until

    def status(self) -> int:
        value = self.nv_status
        if self.wel:
            value |= _WRITE_ENABLED
        if self._busy():
            value |= _NOT_READY
        return value

    def _start_cycle(self) -> None:
        if self.faults.busy_forever:
            self.busy_until = float("inf")
            return
        cycle = self.write_cycle
        self.busy_until = self.clock.now() + self.clock.timing.duration(cycle.ms_typ, cycle.ms_max)

    # -- the bus entry point --------------------------------------------------------

    def transaction(self, write: bytes, read_len: int) -> bytes:
        """One chip-select frame: the bytes clocked out on SO after ``write``."""
        if not write:
            return b"\xff" * read_len
        opcode, args = write[0], write[1:]
        high = 0
        if self.a8_in_opcode and opcode in (_READ | 0x08, _WRITE | 0x08):
            opcode, high = opcode & ~0x08, 0x100
        if opcode == _RDSR:
            return bytes([self.status()]) * read_len
        if self._busy():
            return b"\xff" * read_len  # ignored during the write cycle; SO stays high-Z
        if opcode == _WREN:
            self.wel = True
        elif opcode == _WRDI:
            self.wel = False
        elif opcode == _WRSR:
            self._write_status(args)
        elif opcode == _READ:
            return self._read(args, high, read_len)
        elif opcode == _WRITE:
            self._write(args, high)
        return b"\xff" * read_len

    # -- instructions ---------------------------------------------------------------

    def _address(self, args: bytes, high: int) -> int | None:
        n = self.address_bytes
        if len(args) < n:
            return None
        return (int.from_bytes(args[:n], "big") | high) % self.size

    def _read(self, args: bytes, high: int, n: int) -> bytes:
        start = self._address(args, high)
        if start is None:
            return b"\xff" * n
        out = bytearray()
        pos = start
        while len(out) < n:  # the address counter rolls over at the end of the array
            take = min(n - len(out), self.size - pos)
            out += self.memory[pos : pos + take]
            pos = (pos + take) % self.size
        fa = self.faults.verify_address
        if fa is not None and (fa - start) % self.size < n and self.memory[fa] != self.erased:
            out[(fa - start) % self.size] ^= 0x10  # a weak cell once programmed
        return bytes(out)

    def _protected_from(self) -> int:
        """The first address the BP bits protect (size: none)."""
        bp = self.nv_status & (_BP1 | _BP0)
        return {0: self.size, _BP0: self.size * 3 // 4, _BP1: self.size // 2}.get(bp, 0)

    def _write(self, args: bytes, high: int) -> None:
        enabled, self.wel = self.wel, False
        address = self._address(args, high)
        data = args[self.address_bytes :]
        if not enabled or address is None or not data:
            return
        page = address - address % self.page_size
        if page >= self._protected_from():
            return  # a write into a protected block is not started
        if len(data) > self.page_size:
            data = data[-self.page_size :]  # the page latch keeps the last page of bytes
        offset = address - page
        for byte in data:
            target = page + offset
            value = byte
            if target == self.faults.stuck_address:
                value = self._stuck(byte)
            self.memory[target] = value
            offset = (offset + 1) % self.page_size  # wraps inside the page
        self.writes += 1
        self._start_cycle()

    def _stuck(self, new: int) -> int:
        """The stuck bit is the lowest one first written as 0; it stays 1 from then on."""
        if not self.faults.stuck_mask:
            zeros = ~new & 0xFF
            self.faults.stuck_mask = zeros & -zeros
        return new | self.faults.stuck_mask

    def _write_status(self, args: bytes) -> None:
        enabled, self.wel = self.wel, False
        if not enabled or not args:
            return
        if self.nv_status & _WRITE_PROTECT_ENABLE and self.wp_low:
            return  # WPEN set and WP low: the status register is read-only
        writable = _BP1 | _BP0 | (_WRITE_PROTECT_ENABLE if self.has_wpen else 0)
        self.nv_status = args[0] & writable
        self._start_cycle()
