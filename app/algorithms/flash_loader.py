"""A flash loader: a few Thumb instructions the target's own core runs from RAM to copy
a buffer into its flash through the flash controller, so the debug probe moves only
the data (one block write a buffer) instead of a write and a wait per unit. What ST's,
SEGGER's, pyOCD's and OpenOCD's tools do; written here from the ARMv6-M Architecture
Reference Manual's encodings (DDI 0419C A6.7: LDR/STR/LDRH/STRH T1, TST T1, B T1,
ADDS/SUBS T2, BKPT T1) and the core debug registers (C1.6: DHCSR, DCRSR, DCRDR).

The loop, for units of ``accesses`` loads and stores of ``size`` bytes each:

    loop: LDR(H) r6, [r0, #k*size] ; STR(H) r6, [r1, #k*size]    (k = 0 .. accesses-1)
    wait: LDR r7, [r3]              the controller's status register
          TST r7, r4 ; BNE/BEQ wait until the busy bits read ready
          TST r7, r5 ; BNE done     an error flag ends the run
          ADDS r0, #unit ; ADDS r1, #unit ; SUBS r2, #1 ; BNE loop
    done: BKPT #0

r0 the source in RAM, r1 the flash address, r2 the units left (0 when all went in),
r3 the status register, r4 its busy mask, r5 its error mask; r7 the status last read.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from app.algorithms.base import ChipError
from app.hal.bus import DebugAccess

DHCSR, DCRSR, DCRDR = 0xE000_EDF0, 0xE000_EDF4, 0xE000_EDF8
DBGKEY, C_DEBUGEN, C_MASKINTS = 0xA05F << 16, 1 << 0, 1 << 3
S_REGRDY, S_HALT, S_LOCKUP = 1 << 16, 1 << 17, 1 << 19
REGWNR = 1 << 16
PC, XPSR = 15, 16
THUMB = 1 << 24  # xPSR.T
CODE_ROOM = 0x80  # bytes kept for the code at the start of RAM
BUFFER_MAX = 4096
RUN_MARGIN_S = 0.5
BUSY_POLLS = 200  # DHCSR polls without a pause before waiting longer between them


def _ldst(opcode: int, imm5: int, rn: int, rt: int) -> int:
    return opcode | (imm5 << 6) | (rn << 3) | rt


def _branch(cond: int, at: int, target: int) -> int:
    """B<cond> T1: imm8 = (target - (at + 4)) / 2, signed."""
    return 0xD000 | (cond << 8) | (((target - at - 4) // 2) & 0xFF)


def assemble(accesses: int, size: int, ready_when_set: bool) -> bytes:
    """The loop above as Thumb halfwords, little-endian."""
    load, store = (0x6800, 0x6000) if size == 4 else (0x8800, 0x8000)
    code: list[int] = []
    for k in range(accesses):
        code += [_ldst(load, k, 0, 6), _ldst(store, k, 1, 6)]
    wait = 2 * len(code)
    code += [_ldst(0x6800, 0, 3, 7), 0x4200 | (4 << 3) | 7]  # LDR r7, [r3]; TST r7, r4
    eq, ne = 0x0, 0x1
    code.append(_branch(eq if ready_when_set else ne, 2 * len(code), wait))
    code.append(0x4200 | (5 << 3) | 7)  # TST r7, r5
    done_branch = len(code)
    code.append(0)  # BNE done, patched below
    unit = accesses * size
    code += [0x3000 | (0 << 8) | unit, 0x3000 | (1 << 8) | unit, 0x3800 | (2 << 8) | 1]
    code.append(_branch(ne, 2 * len(code), 0))
    done = 2 * len(code)
    code.append(0xBE00)  # BKPT #0
    code[done_branch] = _branch(ne, 2 * done_branch, done)
    if len(code) % 2:
        code.append(0xBF00)  # NOP (never reached): whole words
    return b"".join(half.to_bytes(2, "little") for half in code)


@dataclass(frozen=True)
class LoaderSpec:
    """What the loop needs of a controller."""

    accesses: int  # loads/stores a unit
    size: int  # bytes each (2 or 4)
    status: int
    busy: int
    ready_when_set: bool  # nRF READY: the bit is set when ready
    errors: int

    @property
    def unit(self) -> int:
        return self.accesses * self.size


class FlashLoader:
    """Runs the loop on the halted core: the code at the start of RAM, then two
    buffers. While the core programs one, the probe fills the other (double buffering:
    the wire and the flash work at once)."""

    def __init__(self, port: DebugAccess, spec: LoaderSpec, ram_base: int, ram_bytes: int) -> None:
        self.port = port
        self.spec = spec
        self.code = assemble(spec.accesses, spec.size, spec.ready_when_set)
        self.code_at = ram_base
        room = min(2 * BUFFER_MAX, ram_bytes - CODE_ROOM - 256) // 2  # leave a little
        self.buffer_bytes = room - room % max(spec.unit, 4)
        if len(self.code) > CODE_ROOM or self.buffer_bytes < spec.unit:
            raise ValueError("the part's RAM is too small for the flash loader")
        self.buffers = (ram_base + CODE_ROOM, ram_base + CODE_ROOM + self.buffer_bytes)

    def _words(self, data: bytes) -> list[int]:
        padded = data + b"\xff" * (-len(data) % 4)
        return [int.from_bytes(padded[i : i + 4], "little") for i in range(0, len(padded), 4)]

    def _set(self, register: int, value: int) -> None:
        self.port.write_words(DCRDR, [value & 0xFFFF_FFFF])
        self.port.write_words(DCRSR, [REGWNR | register])

    def _get(self, register: int) -> int:
        self.port.write_words(DCRSR, [register])
        return self.port.read_words(DCRDR, 1)[0]

    def program(self, address: int, data: bytes, typ_s: float, max_s: float) -> int | None:
        """Program ``data`` (whole units) at ``address``; None, or the address of the
        unit the controller refused (its flags stay in its status register for the
        caller). ``typ_s``/``max_s``: a unit's typical and longest time (when to look
        for a run's BKPT, how long to)."""
        spec = self.spec
        self.port.write_words(self.code_at, self._words(self.code))
        for register, value in ((3, spec.status), (4, spec.busy), (5, spec.errors), (XPSR, THUMB)):
            self._set(register, value)
        running, started = 0, 0.0  # units of the run in progress, when it started
        for index, first in enumerate(range(0, len(data), self.buffer_bytes)):
            chunk = data[first : first + self.buffer_bytes]
            buffer = self.buffers[index % 2]
            self.port.write_words(buffer, self._words(chunk))  # while the last run works
            if running:
                refused = self._finish(running, started, typ_s, max_s)
                if refused is not None:
                    return refused
            running = len(chunk) // spec.unit
            for register, value in ((0, buffer), (1, address + first), (2, running)):
                self._set(register, value)
            self._set(PC, self.code_at)
            # run, with PendSV, SysTick and external interrupts masked (C1.6.2)
            self.port.write_words(DHCSR, [DBGKEY | C_DEBUGEN | C_MASKINTS])
            started = time.monotonic()
        return self._finish(running, started, typ_s, max_s) if running else None

    def _finish(self, units: int, started: float, typ_s: float, max_s: float) -> int | None:
        """Wait for the run's BKPT (first until its units' typical time is up, so the
        polls are few); what the controller refused, if anything."""
        early = started + units * typ_s - time.monotonic()
        if early > 0:
            time.sleep(early)
        self._wait_for_bkpt(started + units * max_s + RUN_MARGIN_S - time.monotonic())
        if self._get(2):  # units left: an error flag stopped the loop
            return self._get(1)
        return None

    def _wait_for_bkpt(self, timeout_s: float) -> None:
        """Poll DHCSR: at once for a while (each poll is a round trip to the probe),
        then with growing pauses for a long run."""
        deadline = time.monotonic() + timeout_s
        polls, pause = 0, 0.0
        while True:
            status = self.port.read_words(DHCSR, 1)[0]
            if status & S_LOCKUP:
                raise ChipError("the flash loader locked the core up (a fault while it ran)")
            if status & S_HALT:
                return
            if time.monotonic() > deadline:
                self.port.write_words(DHCSR, [DBGKEY | C_DEBUGEN | 2])  # C_HALT
                raise ChipError(f"the flash loader did not finish within {timeout_s:.1f} s")
            polls += 1
            if polls > BUSY_POLLS:
                time.sleep(pause)
                pause = min(max(pause * 2, 0.0002), 0.01)
