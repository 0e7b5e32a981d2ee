"""24xx I2C EEPROMs: page writes with acknowledge polling, sequential reads.

The memory address is split between the device-address block bits (24C04/08/16,
24M01/02) and the 1 or 2 address bytes that follow. An EEPROM needs no erase; "erase"
is writing the erased value, which the engine plans as ordinary page writes.
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
    Geometry,
    Protection,
    Tick,
)
from app.devicedb.facts import I2cEepromFacts
from app.hal.bus import I2cBus
from app.hal.errors import BusTimeout, I2cNack

if TYPE_CHECKING:
    from app.devicedb.models import Device

BASE_ADDRESS = 0x50
READ_CHUNK = 4096


@register
class I2cEeprom(ChipAlgorithm):
    name = "i2c_eeprom"
    bus: I2cBus

    def __init__(self, bus: I2cBus, device: Device) -> None:
        super().__init__(bus, device)
        facts = device.facts_as(I2cEepromFacts)
        self.address_bytes = facts.address_bytes
        self.block_size = 256**self.address_bytes
        self.write_cycle = facts.write_cycle
        self._geometry = Geometry(
            size=device.size_bytes,
            page_size=facts.page_size,
            regions=(),
            chip_erase=None,
            erased_value=device.erased_value,
            program=facts.write_cycle,
            fill_pages=False,
        )

    @property
    def geometry(self) -> Geometry:
        return self._geometry

    def _split(self, address: int) -> tuple[int, bytes]:
        block, word = divmod(address, self.block_size)
        return BASE_ADDRESS | block, word.to_bytes(self.address_bytes, "big")

    def prepare(self) -> None:
        """Nothing to set up: the bus clock is the programmer's I2C clock."""

    def identify(self) -> ChipIdentity:
        try:
            self.bus.write_read(BASE_ADDRESS, self._split(0)[1], 1)
        except I2cNack:
            return ChipIdentity("i2c", b"", False)
        return ChipIdentity("i2c", bytes([BASE_ADDRESS]), True)

    def read(self, start: int, length: int, tick: Tick) -> bytes:
        out = bytearray()
        pos, end = start, start + length
        while pos < end:
            n = min(READ_CHUNK, end - pos, self.block_size - pos % self.block_size)
            device, word = self._split(pos)
            try:
                out += self.bus.write_read(device, word, n)
            except I2cNack as err:
                raise ChipError(f"read at 0x{pos:X}: {err}", pos) from None
            pos += n
            tick(pos - start)
        return bytes(out)

    def erase_blocks(self, blocks: Sequence[tuple[EraseBlock, int]], tick: Tick) -> None:
        if blocks:
            raise ChipError("I2C EEPROMs have no erase command")

    def erase_chip(self) -> None:
        raise ChipError("I2C EEPROMs have no erase command")

    def program(self, writes: Sequence[tuple[int, bytes]], tick: Tick) -> None:
        timeout = self.write_cycle.ms_max * 1.2 / 1000.0 + 0.02
        done = 0
        for address, data in writes:
            device, word = self._split(address)
            try:
                self.bus.write(device, word + data)
                self.bus.wait_ack(device, timeout, self.write_cycle.ms_typ / 1000.0)
            except BusTimeout as err:
                raise ChipError(
                    f"write cycle at 0x{address:X} did not finish: {err}"
                    f" (datasheet maximum {self.write_cycle.ms_max:g} ms)",
                    address,
                ) from None
            except I2cNack as err:
                raise ChipError(f"write at 0x{address:X}: {err}", address) from None
            done += len(data)
            tick(done)

    def protection(self) -> Protection:
        return Protection(False, "24xx EEPROMs are protected only by their WP pin")

    def unprotect(self) -> None:
        """Nothing to do in software: the WP pin decides."""

    def protect(self) -> None:
        raise ChipError("24xx EEPROMs cannot be protected in software (WP pin only)")
