"""A Winbond SpiStack part (W25M512JV: two W25Q256JV dies behind one chip select),
modelled from the W25M512JV datasheet's "Software Die Select (C2h)" section:

- C2h followed by one byte, the die ID (00h, 01h), makes that die active; it is
  accepted at any time, also while a die is busy (so one die can be read while the
  other erases). After power-up die 0 is active.
- Every other instruction is executed by the active die only: JEDEC ID, status
  registers and their busy bit, Enter 4-Byte Address Mode, erases (the chip erase
  C7h/60h erases the active die), page program and reads; a read does not continue
  into the next die.

Each die is a full SpiNorChip of one die's size; faults address the die that holds the
faulty byte.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from app.devicedb.facts import SpiNorFacts
from app.hal.sim.clock import SimClock
from app.hal.sim.spi_nor_chip import ChipFaults, SpiNorChip

if TYPE_CHECKING:
    from app.devicedb.models import Device

_SOFTWARE_DIE_SELECT = 0xC2


class DieStack:
    def __init__(
        self,
        device: Device,
        clock: SimClock,
        *,
        jedec_override: bytes | None = None,
        faults: ChipFaults | None = None,
        protected: bool = False,
        unique_id: bytes = b"",
    ) -> None:
        facts = device.facts_as(SpiNorFacts)
        self.clock = clock
        self.size = device.size_bytes
        self.die_size = device.size_bytes // facts.dies
        one = dataclasses.replace(facts, dies=1, die_select=False)
        die_device = dataclasses.replace(device, size_bytes=self.die_size, facts=one)
        faults = faults or ChipFaults()
        self.dies = [
            SpiNorChip(
                die_device,
                clock,
                jedec_override=jedec_override,
                faults=self._die_faults(faults, die),
                protected=protected,
                unique_id=unique_id,
                sfdp="none",  # the W25M datasheet gives no SFDP for the stack
            )
            for die in range(facts.dies)
        ]
        self.active = 0

    def _die_faults(self, faults: ChipFaults, die: int) -> ChipFaults:
        lo, hi = die * self.die_size, (die + 1) * self.die_size

        def local(address: int | None) -> int | None:
            return address - lo if address is not None and lo <= address < hi else None

        return ChipFaults(
            stuck_address=local(faults.stuck_address),
            verify_address=local(faults.verify_address),
            busy_forever=faults.busy_forever,
            erase_fail_address=local(faults.erase_fail_address),
        )

    def power_cycle(self) -> None:
        for die in self.dies:
            die.power_cycle()
        self.active = 0

    def ready_at(self) -> float:
        return self.dies[self.active].ready_at()

    @property
    def memory(self) -> StackMemory:
        """The array as the dies hold it, read across die boundaries (for tests)."""
        return StackMemory(self)

    def transaction(self, write: bytes, read_len: int) -> bytes:
        """One chip-select frame: C2h is the stack's; the rest go to the active die."""
        if write[:1] == bytes([_SOFTWARE_DIE_SELECT]):
            if len(write) >= 2 and write[1] < len(self.dies):
                self.active = write[1]
            return b"\xff" * read_len
        return self.dies[self.active].transaction(write, read_len)


class StackMemory:
    """``stack.memory[a:b]`` / ``stack.memory[a]``: the dies' arrays end to end."""

    def __init__(self, stack: DieStack) -> None:
        self._stack = stack

    def __len__(self) -> int:
        return self._stack.size

    def __getitem__(self, key: int | slice) -> bytes | int:
        if isinstance(key, int):
            die, local = divmod(key, self._stack.die_size)
            return self._stack.dies[die].memory[local]
        start, stop, _ = key.indices(self._stack.size)
        out = bytearray()
        while start < stop:
            die, local = divmod(start, self._stack.die_size)
            n = min(stop - start, self._stack.die_size - local)
            out += self._stack.dies[die].memory[local : local + n]
            start += n
        return bytes(out)
