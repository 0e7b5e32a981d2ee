"""Bus-level model of a 24xx I2C EEPROM, driven by its device DB entry.

Device address 1010xxx: the part answers at 0x50 with its A pins low, and the low
``block_bits`` of the address carry the top memory-address bits (24C04/08/16, 24M01/02).
Page writes wrap inside the page; during the self-timed write cycle the part does not
acknowledge its address (acknowledge polling). Sequential reads roll over at the end.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.devicedb.facts import I2cEepromFacts
from app.hal.errors import I2cNack
from app.hal.sim.clock import SimClock
from app.hal.sim.spi_nor_chip import ChipFaults

if TYPE_CHECKING:
    from app.devicedb.models import Device

BASE_ADDRESS = 0x50


class I2cEepromChip:
    def __init__(
        self,
        device: Device,
        clock: SimClock,
        *,
        faults: ChipFaults | None = None,
        write_protected: bool = False,
    ) -> None:
        facts = device.facts_as(I2cEepromFacts)
        self.clock = clock
        self.size = device.size_bytes
        self.page_size = facts.page_size
        self.address_bytes = facts.address_bytes
        self.block_bits = facts.block_bits
        self.write_cycle = facts.write_cycle
        self.erased = device.erased_value
        self.memory = bytearray([self.erased]) * self.size
        self.faults = faults or ChipFaults()
        self.write_protected = write_protected
        self.pointer = 0
        self.busy_until = 0.0

    def power_cycle(self) -> None:
        self.busy_until = 0.0 if not self.faults.busy_forever else self.busy_until
        self.pointer = 0

    def answers(self, address: int) -> bool:
        block_mask = (1 << self.block_bits) - 1
        return (address & ~block_mask & 0x7F) == BASE_ADDRESS

    def busy(self) -> bool:
        return self.clock.now() < self.busy_until

    def _select(self, address: int) -> None:
        if not self.answers(address) or self.busy():
            raise I2cNack(f"no acknowledge from I2C address 0x{address:02X}")

    def _set_pointer(self, address: int, word: bytes) -> None:
        block = address & ((1 << self.block_bits) - 1)
        value = (block << (8 * self.address_bytes)) | int.from_bytes(word, "big")
        self.pointer = value % self.size

    def write(self, address: int, data: bytes) -> None:
        self._select(address)
        if len(data) < self.address_bytes:
            raise I2cNack(f"I2C write to 0x{address:02X} ended inside the memory address")
        self._set_pointer(address, data[: self.address_bytes])
        payload = data[self.address_bytes :]
        if not payload:
            return  # address-only write: sets the pointer for a following read
        if self.write_protected:
            return  # WP high: bytes are acknowledged and discarded
        page = self.pointer - self.pointer % self.page_size
        offset = self.pointer % self.page_size
        if len(payload) > self.page_size:
            payload = payload[-self.page_size :]
        for byte in payload:
            target = page + offset
            value = byte
            if target == self.faults.stuck_address:
                value = self._stuck(self.memory[target], byte)
            self.memory[target] = value
            offset = (offset + 1) % self.page_size
        self.pointer = page + offset
        if self.faults.busy_forever:
            self.busy_until = float("inf")
        else:
            cycle = self.write_cycle
            self.busy_until = self.clock.now() + self.clock.timing.duration(
                cycle.ms_typ, cycle.ms_max
            )

    def _stuck(self, old: int, new: int) -> int:
        """The stuck bit is the lowest one first written as 0; it stays 1 from then on."""
        if not self.faults.stuck_mask:
            zeros = ~new & 0xFF
            self.faults.stuck_mask = zeros & -zeros
        return new | self.faults.stuck_mask

    def read(self, address: int, n: int) -> bytes:
        self._select(address)
        out = bytearray()
        while len(out) < n:
            take = min(n - len(out), self.size - self.pointer)
            out += self.memory[self.pointer : self.pointer + take]
            self.pointer = (self.pointer + take) % self.size
        fa = self.faults.verify_address
        start = (self.pointer - n) % self.size
        if fa is not None and (fa - start) % self.size < n and self.memory[fa] != self.erased:
            out[(fa - start) % self.size] ^= 0x10
        return bytes(out)
