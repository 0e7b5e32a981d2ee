"""What every chip algorithm offers the engine, and the types they share.

Algorithms are written against bus interfaces only (app.hal.bus); they know nothing of
sites' threads, events or the production log. Long operations take a ``tick`` callback,
called between pages/blocks with the bytes done so far; it raises Cancelled to stop.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

Tick = Callable[[int], None]


class Cancelled(Exception):
    """The operator stopped the cycle; raised from a tick callback."""


class ChipError(Exception):
    """A chip operation failed; ``address`` where it applies."""

    def __init__(self, message: str, address: int | None = None) -> None:
        super().__init__(message)
        self.address = address


@dataclass(frozen=True)
class EraseBlock:
    opcode: int
    size: int
    ms_typ: float
    ms_max: float


@dataclass(frozen=True)
class Geometry:
    """The layout the planner needs. ``erase_blocks`` ascend by size; empty means the part
    needs no erase (EEPROM: cells are rewritten directly)."""

    size: int
    page_size: int
    erase_blocks: tuple[EraseBlock, ...]
    chip_erase: EraseBlock | None
    erased_value: int
    program_ms_typ: float
    program_ms_max: float
    #: NOR pages are programmed whole (erased-value fill is a no-op); EEPROM writes only
    #: the bytes the image holds.
    fill_pages: bool = True
    #: where the memory sits in the image's address space (STM32 flash: 0x08000000). The
    #: engine relocates images by -base, so planner and algorithm work on 0-based offsets.
    base: int = 0


@dataclass(frozen=True)
class ChipIdentity:
    """What the part answered to its ID command."""

    bus: str  # "jedec", "i2c" or "stm32_pid"
    raw: bytes
    present: bool  # False: all bytes 0xFF or 0x00 (or no ACK): no part or bad contact

    @property
    def hex(self) -> str:
        return self.raw.hex().upper()


@dataclass(frozen=True)
class Protection:
    protected: bool
    description: str


def hex_field(value: Any) -> int:
    return value if isinstance(value, int) else int(str(value), 16)


class ChipAlgorithm(ABC):
    """Base of the registered algorithms; see app.algorithms.register."""

    name: ClassVar[str]

    def __init__(self, bus: Any, params: Mapping[str, Any]) -> None:
        self.bus = bus
        self.params = params

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
    def erase_blocks(self, blocks: Sequence[tuple[EraseBlock, int]], tick: Tick) -> None: ...

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
