"""The memory map behind a simulated MCU's AHB-AP: RAM, flash windows and peripheral
register blocks, each a region with read/write callbacks.

An access answers a value, or raises ``BusFault`` (the AHB error response: the AP sets
STICKYERR, ADIv5 B2.2.5) or ``BusStall`` (the slave holds HREADY low, as flash does
while it programs or erases: the AP answers WAIT until the access can complete, ADIv5
B4.2.3 / the STM32 manuals' "read access stalls the bus").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


class BusFault(Exception):
    """The bus answered an error (unmapped address, protected memory, wrong size)."""


class BusStall(Exception):
    """The bus cannot complete the access yet (flash busy); ``ready_at``: the clock
    time it can, where known."""

    def __init__(self, ready_at: float | None = None) -> None:
        super().__init__()
        self.ready_at = ready_at


class Region:
    """``size`` bytes at ``base``; subclasses answer sized accesses by offset."""

    def __init__(self, base: int, size: int, name: str) -> None:
        self.base, self.size, self.name = base, size, name

    def read(self, offset: int, size: int) -> int:
        raise BusFault(f"{self.name}: not readable")

    def write(self, offset: int, value: int, size: int) -> None:
        raise BusFault(f"{self.name}: not writable")


class Ram(Region):
    def __init__(self, base: int, size: int, name: str = "RAM", fill: int = 0) -> None:
        super().__init__(base, size, name)
        self.data = bytearray([fill]) * size

    def read(self, offset: int, size: int) -> int:
        return int.from_bytes(self.data[offset : offset + size], "little")

    def write(self, offset: int, value: int, size: int) -> None:
        self.data[offset : offset + size] = value.to_bytes(size, "little")


Getter = Callable[[], int]
Setter = Callable[[int], None]


@dataclass
class Registers(Region):
    """32-bit registers by offset: a getter and an optional setter each. A byte or
    half-word access reads the word and takes its lanes; a narrower write merges its
    lanes into the current value before the setter sees it. Offsets without a register
    read 0 and ignore writes (reserved space), as most peripherals do."""

    base: int
    size: int
    name: str
    registers: dict[int, tuple[Getter, Setter | None]] = field(default_factory=dict)

    def add(self, offset: int, getter: Getter, setter: Setter | None = None) -> None:
        self.registers[offset] = (getter, setter)

    def constant(self, offset: int, value: int) -> None:
        self.registers[offset] = (lambda: value, None)

    def storage(self, offset: int, initial: int = 0, writable: int = 0xFFFFFFFF) -> None:
        """A plain read/write register: the ``writable`` bits take what is written."""
        cell = [initial]

        def write(value: int) -> None:
            cell[0] = (cell[0] & ~writable) | (value & writable)

        self.registers[offset] = (lambda: cell[0], write)

    def read(self, offset: int, size: int) -> int:
        entry = self.registers.get(offset & ~3)
        word = entry[0]() if entry else 0
        shift = 8 * (offset & 3)
        return (word >> shift) & ((1 << (8 * size)) - 1)

    def write(self, offset: int, value: int, size: int) -> None:
        entry = self.registers.get(offset & ~3)
        if entry is None or entry[1] is None:
            return
        if size != 4:
            shift = 8 * (offset & 3)
            mask = ((1 << (8 * size)) - 1) << shift
            value = (entry[0]() & ~mask) | ((value << shift) & mask)
        entry[1](value & 0xFFFFFFFF)


class MemoryMap:
    """Regions by address; the first region containing the access answers it."""

    def __init__(self) -> None:
        self.regions: list[Region] = []
        self.gate: Callable[[int], None] | None = None  # raises BusFault to refuse an address

    def add(self, region: Region) -> Region:
        self.regions.append(region)
        return region

    def find(self, address: int, size: int) -> tuple[Region, int]:
        if self.gate is not None:
            self.gate(address)
        for region in self.regions:
            offset = address - region.base
            if offset >= 0 and offset + size <= region.size:
                return region, offset
        raise BusFault(f"nothing mapped at 0x{address:08X}")

    def read(self, address: int, size: int) -> int:
        region, offset = self.find(address, size)
        return region.read(offset, size)

    def write(self, address: int, value: int, size: int) -> None:
        region, offset = self.find(address, size)
        region.write(offset, value & ((1 << (8 * size)) - 1), size)

    def read_word(self, address: int) -> int:
        return self.read(address, 4)
