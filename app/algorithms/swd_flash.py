"""Flash controllers driven through the debug port: what the Cortex-M algorithm asks of
each (unlock, erase a page/sector, mass erase, program, readout protection), and the
waits and error checks they share. One subclass per controller kind
(app.algorithms.swd_flash_stm32, app.algorithms.swd_flash_nrf), registered by the kind
the device database's SWD series maps to (app.devicedb.facts.SWD_SERIES).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, TypeVar

from app.algorithms.base import ChipError, Protection
from app.algorithms.flash_loader import FlashLoader, LoaderSpec
from app.devicedb.facts import MemoryLayout, SwdFacts, Timing
from app.hal.bus import DebugAccess

#: the longest first pause of a busy wait; later pauses grow to a tenth of the
#: operation's typical time, so a wait costs few polls and overshoots by little
FIRST_POLL_S = 0.0002


@dataclass(frozen=True)
class FlashTimes:
    """Datasheet times of a controller's operations (per unit, per page/sector)."""

    program: Timing  # one programming unit (half-word, word, double-word)
    erase: Callable[[int], Timing]  # one page/sector of the given size
    mass_erase: Callable[[int], Timing]  # the whole flash of the given size


class FlashController(ABC):
    """One part's flash controller. Addresses are absolute (flash_base included)."""

    kind: ClassVar[str]
    unit: ClassVar[int]  # bytes per programming access
    times: ClassVar[FlashTimes]

    def __init__(
        self, port: DebugAccess, facts: SwdFacts, layout: MemoryLayout, flash_base: int
    ) -> None:
        self.port = port
        self.facts = facts
        self.layout = layout
        self.flash_base = flash_base
        self.loader: FlashLoader | None = None

    # -- register access --------------------------------------------------------------

    def read(self, address: int) -> int:
        return self.port.read_words(address, 1)[0]

    def write(self, address: int, value: int) -> None:
        self.port.write_words(address, [value])

    def wait(self, status: int, busy: int, ready: int, typ_s: float, timeout_s: float) -> int:
        """Poll the word at ``status`` until ``status & busy == ready``; its value. The
        pauses grow from FIRST_POLL_S to a tenth of the typical time."""
        deadline = time.monotonic() + timeout_s
        pause = FIRST_POLL_S
        while True:
            value = self.read(status)
            if value & busy == ready:
                return value
            if time.monotonic() > deadline:
                raise ChipError(
                    f"flash controller still busy after {timeout_s * 1000:.0f} ms"
                    f" (status register 0x{status:08X} reads 0x{value:08X})"
                )
            time.sleep(pause)
            pause = min(pause * 2, max(FIRST_POLL_S, typ_s / 10))

    # -- what the algorithm uses ------------------------------------------------------

    def prepare_halted(self) -> None:  # noqa: B027 (an optional hook)
        """Set up what programming a halted part needs (STM32: freeze the watchdogs)."""

    @abstractmethod
    def unlock(self) -> None: ...

    @abstractmethod
    def lock(self) -> None: ...

    @abstractmethod
    def erase_sector(self, number: int) -> None:
        """Erase page/sector ``number`` of the layout."""

    @abstractmethod
    def mass_erase(self) -> None: ...

    @abstractmethod
    def program(self, address: int, data: bytes) -> None:
        """Program ``data`` (a whole number of units, unit-aligned) at ``address``."""

    @abstractmethod
    def protection(self) -> Protection: ...

    @abstractmethod
    def set_protection(self, on: bool) -> bool:
        """Set (on) or clear (off: mass-erases) readout protection; True when the part
        was reset to apply it (the caller reconnects)."""

    @abstractmethod
    def unique_id(self) -> bytes | None: ...

    # -- helpers ----------------------------------------------------------------------

    def units(self, address: int, data: bytes) -> list[tuple[int, int]]:
        """(address, value) per unit of ``data``, little-endian as the core stores it."""
        n = self.unit if self.unit <= 4 else 4
        return [
            (address + i, int.from_bytes(data[i : i + n], "little")) for i in range(0, len(data), n)
        ]

    def loader_spec(self) -> LoaderSpec:
        """What the flash loader's loop needs of this controller."""
        raise NotImplementedError

    def use_loader(self, ram_base: int, ram_bytes: int) -> None:
        """Program through a flash loader in the part's RAM from now on."""
        self.loader = FlashLoader(self.port, self.loader_spec(), ram_base, ram_bytes)

    def program_units(self, address: int, data: bytes) -> tuple[int, int, int] | None:
        """Program ``data`` (whole units at ``address``) through the flash loader where
        one is in use, else unit by unit from the host (write_units); the first unit
        refused, as write_units says it, or None."""
        if self.loader is None:
            return self.write_units(address, data)
        program = self.times.program
        refused = self.loader.program(address, data, program.ms_typ / 1000, program.ms_max / 1000)
        return None if refused is None else (refused, 0, 0)

    def write_units(self, address: int, data: bytes) -> tuple[int, int, int] | None:
        """Program ``data`` unit by unit, each unit read back as the bus finishes it
        (DebugAccess.write_read_back); the first unit that reads back otherwise, as
        (address, written, read), or None when all did."""
        accesses = self.units(address, data)
        per_unit = max(1, self.unit // 4)  # a double-word is two word writes
        units = [accesses[i : i + per_unit] for i in range(0, len(accesses), per_unit)]
        size = min(self.unit, 4)
        for unit, value in zip(units, self.port.write_read_back(units, size), strict=True):
            if value != unit[-1][1]:
                return unit[0][0], unit[-1][1], value
        return None

    def bad_unit(self, bad: tuple[int, int, int], flags: str) -> ChipError:
        address, written, found = bad
        width = 2 * min(self.unit, 4)
        why = flags or f"reads back 0x{found:0{width}X}, not 0x{written:0{width}X}"
        return ChipError(f"programming 0x{address:08X} failed: {why}", address)

    def sector_address(self, number: int) -> int:
        return self.flash_base + self.layout.sectors[number].start

    def sector_timing(self, number: int) -> Timing:
        return self.times.erase(self.layout.sectors[number].size)

    @staticmethod
    def timeout(timing: Timing) -> float:
        return 2 * timing.ms_max / 1000 + 0.5


C = TypeVar("C", bound=type[FlashController])
CONTROLLERS: dict[str, type[FlashController]] = {}


def controller(cls: C) -> C:
    CONTROLLERS[cls.kind] = cls
    return cls


def open_controller(
    port: DebugAccess, facts: SwdFacts, layout: MemoryLayout, flash_base: int
) -> FlashController:
    """The driver registered for the part's controller kind (the driver modules
    register themselves when imported; app.algorithms.cortex_m_swd imports them)."""
    return CONTROLLERS[facts.controller](port, facts, layout, flash_base)
