"""What every chip algorithm offers the engine, and the types they share.

Algorithms are written against bus interfaces only (app.hal.bus); they know nothing of
sites' threads, events or the production log. Long operations take a ``tick`` callback,
called between pages/blocks with the bytes done so far; it raises Cancelled to stop.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from app.devicedb.facts import Timing
from app.hal.bus import Bus

if TYPE_CHECKING:
    from app.devicedb.models import Device

Tick = Callable[[int], None]


class Cancelled(Exception):
    """The operator stopped the cycle; raised from a tick callback."""


class ChipError(Exception):
    """A chip operation failed; ``address`` where it applies."""

    def __init__(self, message: str, address: int | None = None) -> None:
        super().__init__(message)
        self.address = address


@dataclass(frozen=True, slots=True)
class EraseBlock:
    """One way to erase: the command (SPI NOR opcode, STM32 erase command), the bytes it
    erases and how long that takes."""

    opcode: int
    size: int
    timing: Timing


@dataclass(frozen=True, slots=True)
class EraseRegion:
    """[start, start + size) is erased in units of ``blocks`` (ascending sizes, each
    dividing ``size``); a block starts at a multiple of its size from ``start``.

    A SPI NOR part is one region with its 4/32/64 KiB erases; an STM32 F4 is three, one
    per sector size (4 x 16 KiB, 1 x 64 KiB, 7 x 128 KiB).
    """

    start: int
    size: int
    blocks: tuple[EraseBlock, ...]

    def __post_init__(self) -> None:
        sizes = [block.size for block in self.blocks]
        if not sizes or sizes != sorted(sizes) or any(self.size % size for size in sizes):
            raise ValueError(f"erase blocks {sizes} do not tile a {self.size}-byte region")

    @property
    def end(self) -> int:
        return self.start + self.size

    @property
    def unit(self) -> int:
        """The smallest erasable unit."""
        return self.blocks[0].size


@dataclass(frozen=True, slots=True)
class Geometry:
    """The layout the planner needs. ``regions`` ascend and do not overlap; none means
    the part needs no erase (EEPROM: cells are rewritten directly)."""

    size: int
    page_size: int
    regions: tuple[EraseRegion, ...]
    chip_erase: EraseBlock | None
    erased_value: int
    program: Timing  # one page
    #: NOR pages are programmed whole (erased-value fill is a no-op); EEPROM writes only
    #: the bytes the image holds.
    fill_pages: bool = True
    #: where the memory sits in the image's address space (STM32 flash: 0x08000000). The
    #: engine relocates images by -base, so planner and algorithm work on 0-based offsets.
    base: int = 0
    #: the part checks its own erase and reports a failed one (the STM32 bootloader
    #: NACKs an erase that did not complete, ST AN3155), so the engine reads nothing
    #: back after erasing; verify still reads every erased range when it runs
    erase_reported: bool = False

    def __post_init__(self) -> None:
        end = 0
        for region in self.regions:
            if region.start < end or region.end > self.size:
                raise ValueError(f"erase regions overlap or leave the {self.size}-byte part")
            end = region.end

    @property
    def erase_blocks(self) -> tuple[EraseBlock, ...]:
        """Every block erase of the part, smallest first; empty: it has none."""
        blocks = {block for region in self.regions for block in region.blocks}
        return tuple(sorted(blocks, key=lambda block: (block.size, block.opcode)))


@dataclass(frozen=True)
class ChipIdentity:
    """What the part answered to its ID command."""

    #: "jedec", "i2c", "stm32_pid", "status" (SPI EEPROMs: no ID command, presence
    #: from a status-register handshake; ``raw`` is empty when present) or "microwire"
    #: (presence from the READ's dummy 0)
    bus: str
    raw: bytes
    present: bool  # False: all bytes 0xFF or 0x00 (or no ACK): no part or bad contact
    #: why a part without an ID command was taken for absent (shown to the operator)
    absent_reason: str = ""

    @property
    def hex(self) -> str:
        return self.raw.hex().upper()


@dataclass(frozen=True)
class Protection:
    protected: bool
    description: str
    #: the memory can be read as it is (STM32 readout protection: not)
    readable: bool = True


class ChipAlgorithm(ABC):
    """Base of the registered algorithms; see app.algorithms.register.

    Each algorithm is written against one bus interface and narrows ``bus`` to it (the
    engine hands it the site's bus for the device's family)."""

    name: ClassVar[str]
    bus: Bus

    def __init__(self, bus: Bus, device: Device) -> None:
        self.bus = bus
        self.device = device

    @property
    @abstractmethod
    def geometry(self) -> Geometry: ...

    @abstractmethod
    def identify(self) -> ChipIdentity: ...

    @abstractmethod
    def prepare(self) -> None:
        """Set the bus clock and addressing mode for the part (after power-on)."""

    @abstractmethod
    def read(self, start: int, length: int, tick: Tick) -> bytes: ...

    @abstractmethod
    def erase_blocks(self, blocks: Sequence[tuple[EraseBlock, int]], tick: Tick) -> None:
        """Erase each (block, start address) the planner chose from ``geometry``."""

    @abstractmethod
    def erase_chip(self) -> None: ...

    @abstractmethod
    def program(self, writes: Sequence[tuple[int, bytes]], tick: Tick) -> None:
        """Write each (address, data); data never crosses a page boundary."""

    @abstractmethod
    def protection(self) -> Protection: ...

    @abstractmethod
    def unprotect(self) -> None: ...

    @abstractmethod
    def protect(self) -> None: ...

    def unique_id(self) -> bytes | None:
        return None

    def finish(self, passed: bool) -> None:  # noqa: B027 (an optional hook)
        """Leave the part when the cycle ends (before power-off); nothing by default."""
