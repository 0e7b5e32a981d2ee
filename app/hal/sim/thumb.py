"""Enough of the ARMv6-M Thumb instruction set to run a debugger's flash loader in the
simulated core's RAM, written from the ARMv6-M Architecture Reference Manual (DDI 0419C,
A6.7 "Alphabetical list of ARMv6-M Thumb instructions"), not from any loader: loads and
stores with an immediate offset (LDR/STR T1, LDRH/STRH T1), MOVS/ADDS/SUBS with an 8-bit
immediate (T1/T2), TST and CMP of registers (T1), conditional and unconditional branches
(B T1/T2), BKPT (T1). Anything else is UNDEFINED here and stops the core (as a lockup
would); so does a bus fault.

Memory accesses go through the part's memory map, so the flash controller sees the
loader's stores as it sees a debugger's; an access the bus stalls (the flash busy)
waits: the core's time moves on until the access completes, as the bus holds the core.
The core runs in steps up to the part's clock (the host's packets move it; while it
runs, the part's clock reads the core's time), so a loader works while the debug port
carries the next buffer. Each instruction takes one cycle of ``hz`` (two for loads,
stores and taken branches; A6.7 leaves timing to the implementation, the Cortex-M0/M3
TRMs give these).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from app.hal.sim.mcu_memory import BusFault, BusStall, MemoryMap

STALL_STEP_S = 1e-6  # how far the clock moves while a stalled access waits
MAX_STALL_S = 10.0  # an access stalled this long: the bus is stuck, the core locks up
MAX_STEPS = 50_000_000


class Lockup(Exception):
    """The code did something this model does not run (or a bus fault)."""


class _Paused(Exception):
    """The core's time reached the host's: the instruction is retried on the next run."""


@dataclass
class ThumbCore:
    """R0-R15 in ``regs`` (R15 the PC), the APSR flags and the core's own time on the
    part's clock; runs in steps up to a given time (the host's), so a loader in RAM runs
    while the debug port carries the next buffer, as on a real part."""

    memory: MemoryMap
    regs: list[int]
    time: float  # the part's clock, as far as this core has run
    #: when the memory next changes by itself (a flash operation ending), or None
    next_event: Callable[[], float | None] = lambda: None
    hz: float = 8_000_000.0
    n: bool = False
    z: bool = False
    c: bool = False
    v: bool = False
    _steps: int = 0
    _stalled: float = 0.0
    _seen: dict[int, tuple[object, ...]] = field(default_factory=dict)

    def run(self, until: float) -> int | None:
        """Execute from regs[15] until the core's time reaches ``until`` (None: paused
        there, to go on later) or a BKPT (its immediate). Lockup: see the module."""
        while self.time < until:
            self._steps += 1
            if self._steps > MAX_STEPS:
                raise Lockup(f"no BKPT after {MAX_STEPS} instructions")
            pc = self.regs[15] & ~1
            try:
                half = self._read(pc, 2, until)
                self.regs[15] = pc + 2
                cycles, done = self._step(pc, half, until)
            except _Paused:  # a stalled access: nothing of the instruction happened yet
                self.regs[15] = pc
                return None
            self.time += cycles / self.hz
            if done is not None:
                self.regs[15] = pc  # the PC of the BKPT, as Debug state reports it
                return done
            if self.regs[15] < pc:  # a loop went round
                self._idle_if_spinning(until)
        return None

    def _idle_if_spinning(self, until: float) -> None:
        """A loop that went round with every register and flag as the last time round
        is polling memory that has not changed: it would spin the same until the memory
        changes by itself, so its time jumps there (a real core spins that long)."""
        state = (*self.regs, self.n, self.z, self.c, self.v)
        if self._seen.get(self.regs[15]) == state:
            event = self.next_event()
            if event is not None and math.isfinite(event) and event > self.time:
                self.time = min(event, until)
        self._seen[self.regs[15]] = state

    def _read(self, address: int, size: int, until: float) -> int:
        def read() -> int:
            return self.memory.read(address, size)

        return self._access(read, until)

    def _write(self, address: int, value: int, size: int, until: float) -> None:
        def write() -> int:
            self.memory.write(address, value, size)
            return 0

        self._access(write, until)

    def _access(self, operation: Callable[[], int], until: float) -> int:
        """The access, once the bus takes it: a stall holds the core until the flash is
        done (or, past ``until``, pauses the run); a bus fault locks it up."""
        while True:
            try:
                result = operation()
                self._stalled = 0.0
                return result
            except BusStall as stall:
                ready = self.time + STALL_STEP_S
                if stall.ready_at is not None and math.isfinite(stall.ready_at):
                    ready = max(ready, stall.ready_at)
                self._stalled += ready - self.time
                if self._stalled > MAX_STALL_S:
                    raise Lockup("a bus access stalled for good") from None
                if ready >= until:
                    self.time = until
                    raise _Paused from None
                self.time = ready
            except BusFault as err:
                raise Lockup(f"bus fault: {err}") from None

    def _flags(self, result: int) -> None:
        self.n = bool(result & 0x8000_0000)
        self.z = result & 0xFFFF_FFFF == 0

    def _add(self, a: int, b: int, carry: int) -> int:
        """AddWithCarry (A2.2.1): the 32-bit result; N, Z, C, V set."""
        unsigned = a + b + carry
        result = unsigned & 0xFFFF_FFFF
        signed = _signed(a) + _signed(b) + carry
        self._flags(result)
        self.c = unsigned > 0xFFFF_FFFF
        self.v = _signed(result) != signed
        return result

    def _condition(self, cond: int) -> bool:
        """A6.3.1: EQ NE CS CC MI PL VS VC HI LS GE LT GT LE."""
        table = {
            0: self.z,
            1: not self.z,
            2: self.c,
            3: not self.c,
            4: self.n,
            5: not self.n,
            6: self.v,
            7: not self.v,
            8: self.c and not self.z,
            9: not self.c or self.z,
            10: self.n == self.v,
            11: self.n != self.v,
            12: not self.z and self.n == self.v,
            13: self.z or self.n != self.v,
        }
        if cond not in table:
            raise Lockup(f"condition {cond} is not a B T1 condition")
        return table[cond]

    def _step(self, pc: int, op: int, until: float) -> tuple[int, int | None]:
        """One instruction: (cycles, the BKPT immediate or None)."""
        regs = self.regs
        low3, mid3, imm8 = op & 7, (op >> 3) & 7, op & 0xFF
        rd8 = (op >> 8) & 7
        top5 = op >> 11
        if top5 == 0b00100:  # MOVS Rd, #imm8 (A6.7.40 T1)
            regs[rd8] = imm8
            self._flags(imm8)
            return 1, None
        if top5 == 0b00101:  # CMP Rn, #imm8 (A6.7.18 T1)
            self._add(regs[rd8], ~imm8 & 0xFFFF_FFFF, 1)
            return 1, None
        if top5 == 0b00110:  # ADDS Rdn, #imm8 (A6.7.3 T2)
            regs[rd8] = self._add(regs[rd8], imm8, 0)
            return 1, None
        if top5 == 0b00111:  # SUBS Rdn, #imm8 (A6.7.66 T2)
            regs[rd8] = self._add(regs[rd8], ~imm8 & 0xFFFF_FFFF, 1)
            return 1, None
        if op >> 6 == 0b0100001000:  # TST Rn, Rm (A6.7.68 T1)
            self._flags(regs[low3] & regs[mid3])
            return 1, None
        if op >> 6 == 0b0100001010:  # CMP Rn, Rm (A6.7.19 T1)
            self._add(regs[low3], ~regs[mid3] & 0xFFFF_FFFF, 1)
            return 1, None
        if top5 in (0b01100, 0b01101, 0b10000, 0b10001):  # STR/LDR, STRH/LDRH imm
            size = 4 if top5 < 0b10000 else 2
            load = bool(top5 & 1)
            address = regs[mid3] + ((op >> 6) & 0x1F) * size
            if load:
                regs[low3] = self._read(address, size, until)
            else:
                self._write(address, regs[low3] & ((1 << (8 * size)) - 1), size, until)
            return 2, None
        if op >> 12 == 0b1101 and (op >> 8) & 0xF < 0xE:  # B<cond> (A6.7.10 T1)
            if self._condition((op >> 8) & 0xF):
                self.regs[15] = (pc + 4 + 2 * _sign_extend(imm8, 8)) & 0xFFFF_FFFF
                return 2, None
            return 1, None
        if top5 == 0b11100:  # B (A6.7.10 T2)
            self.regs[15] = (pc + 4 + 2 * _sign_extend(op & 0x7FF, 11)) & 0xFFFF_FFFF
            return 2, None
        if op >> 8 == 0xBE:  # BKPT #imm8 (A6.7.12 T1)
            return 1, imm8
        raise Lockup(f"instruction 0x{op:04X} at 0x{pc:08X} is not one this model runs")


def _signed(value: int) -> int:
    value &= 0xFFFF_FFFF
    return value - (1 << 32) if value & 0x8000_0000 else value


def _sign_extend(value: int, bits: int) -> int:
    return value - (1 << bits) if value & (1 << (bits - 1)) else value
