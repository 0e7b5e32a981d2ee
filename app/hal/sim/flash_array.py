"""The flash array of a simulated MCU: erased state 0xFF, pages or sectors, the time an
operation keeps it busy, and the array faults (a bit that never programs, a word that
never erases, an operation that never ends). The flash controllers
(app.hal.sim.stm32_flash_*, app.hal.sim.nrf_nvmc) decide what may be written when; the
window (``FlashWindow``) is what the AHB-AP sees: reads and writes stall while busy, as
every manual here says ("any attempt to read the flash memory while it is being written
or erased causes the bus to stall": RM0008 3.3.3, RM0090 3.5.4, RM0351 3.3.7; Nordic:
"the CPU is halted while the NVMC is writing")."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Protocol

from app.hal.sim.clock import SimClock, Timing
from app.hal.sim.mcu_memory import BusFault, BusStall, Region


@dataclass(frozen=True)
class ArrayFaults:
    stuck_address: int | None = None  # bit 0 of this byte never programs
    erase_fail_address: int | None = None  # this word keeps its contents through erases
    busy_forever: bool = False  # an operation, once started, never ends


class FlashArray:
    """``sectors``: the sizes of the pages/sectors from ``base`` up."""

    def __init__(
        self,
        base: int,
        sectors: Sequence[int],
        clock: SimClock,
        timing: Timing,
        faults: ArrayFaults,
    ) -> None:
        self.base = base
        self.sectors = tuple(sectors)
        self.starts = (0, *accumulate(self.sectors))
        self.data = bytearray(b"\xff") * self.starts[-1]
        self.clock = clock
        self.timing = timing
        self.faults = faults
        self.busy_until = 0.0
        self.operations = 0  # erases and programs started (for tests and benchmarks)

    @property
    def size(self) -> int:
        return len(self.data)

    def busy(self) -> bool:
        return self.clock.now() < self.busy_until

    def start(self, typ_ms: float, max_ms: float) -> None:
        """An operation begins now and lasts the timing's figure of (typ, max)."""
        self.operations += 1
        if self.faults.busy_forever:
            self.busy_until = math.inf
        else:
            self.busy_until = self.clock.now() + self.timing.duration(typ_ms, max_ms)

    def sector_at(self, offset: int) -> int:
        for index in range(len(self.sectors)):
            if offset < self.starts[index + 1]:
                return index
        raise IndexError(offset)

    def erase(self, first: int, count: int = 1) -> None:
        """Sectors ``first`` .. ``first + count - 1`` to 0xFF (but a failing word)."""
        start, end = self.starts[first], self.starts[first + count]
        kept = self._failing_word(start, end)
        self.data[start:end] = b"\xff" * (end - start)
        if kept is not None:
            offset, old = kept
            self.data[offset : offset + 4] = old

    def erase_all(self) -> None:
        self.erase(0, len(self.sectors))

    def _failing_word(self, start: int, end: int) -> tuple[int, bytes] | None:
        if self.faults.erase_fail_address is None:
            return None
        offset = (self.faults.erase_fail_address - self.base) & ~3
        if start <= offset < end:
            return offset, bytes(self.data[offset : offset + 4])
        return None

    def is_erased(self, offset: int, size: int) -> bool:
        return self.data[offset : offset + size] == b"\xff" * size

    def program(self, offset: int, value: int, size: int) -> None:
        """Cells only go from 1 to 0: the new contents are old AND value (the stuck bit
        stays 1)."""
        old = int.from_bytes(self.data[offset : offset + size], "little")
        new = old & value
        stuck = self.faults.stuck_address
        if stuck is not None and 0 <= stuck - self.base - offset < size:
            new |= 1 << (8 * (stuck - self.base - offset))
        self.data[offset : offset + size] = new.to_bytes(size, "little")


class FlashControl(Protocol):
    """What the window asks of a family's flash controller."""

    def write_flash(self, offset: int, value: int, size: int) -> None: ...

    @property
    def read_protected(self) -> bool: ...


class FlashController(FlashControl, Protocol):
    """A family's flash controller as app.hal.sim.mcu_target assembles it."""

    def regions(self) -> list[Region]: ...

    def power_on(self) -> None: ...

    def system_reset(self) -> None: ...

    @property
    def option_bytes(self) -> bytes: ...

    @property
    def debug_disabled(self) -> bool: ...


class FlashWindow(Region):
    """The flash array as the bus sees it at ``array.base`` (and at ``alias``)."""

    def __init__(self, array: FlashArray, control: FlashControl, base: int | None = None) -> None:
        super().__init__(array.base if base is None else base, array.size, "flash")
        self.array = array
        self.control = control
        self.debugger_refused: Callable[[], bool] = lambda: control.read_protected

    def read(self, offset: int, size: int) -> int:
        if self.array.busy():
            raise BusStall(self.array.busy_until)
        if self.debugger_refused():
            raise BusFault(f"flash read at 0x{self.base + offset:08X}: readout protection")
        return int.from_bytes(self.array.data[offset : offset + size], "little")

    def write(self, offset: int, value: int, size: int) -> None:
        if self.array.busy():
            raise BusStall(self.array.busy_until)
        self.control.write_flash(offset, value, size)
