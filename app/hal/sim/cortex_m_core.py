"""The debug side of a simulated Cortex-M core: the System Control Space registers a
debugger uses, the ROM table and the CoreSight identification of its debug components.
The core runs its firmware abstractly (it is running or halted, and a halted core
reports its registers), except code a debugger resumes in RAM (``runs_code_at``): that
runs on app.hal.sim.thumb until its BKPT, as a flash loader does on a real part.

Sources: ARMv7-M Architecture Reference Manual (DDI 0403E) C1.6 "Debug system
registers" and B3.2 "System Control Space"; ARMv6-M ARM (DDI 0419C) C1.6; ADIv5.2
(IHI 0031C) D3 "ROM tables" and D1 "CoreSight component and peripheral ID registers";
the Cortex-M0/M0+/M3/M4 Technical Reference Manuals for CPUID and part numbers.

- CPUID 0xE000ED00 per core (TRMs: M0 r0p0 0x410CC200, M0+ r0p1 0x410CC601, M3 r1p1
  0x411FC231, M4 r0p1 0x410FC241).
- DHCSR 0xE000EDF0 (C1.6.2): a write takes effect only with DBGKEY 0xA05F in bits 31:16;
  C_DEBUGEN 0, C_HALT 1, C_STEP 2, C_MASKINTS 3; reads S_REGRDY 16, S_HALT 17,
  S_RETIRE_ST 24 and S_RESET_ST 25 (both sticky: cleared by the read).
- DCRSR 0xE000EDF4 (C1.6.3): REGSEL 6:0 (0-12 R0-R12, 13 SP, 14 LR, 15 DebugReturnAddress,
  16 xPSR, 17 MSP, 18 PSP, 20 CONTROL/FAULTMASK/BASEPRI/PRIMASK), REGWnR 16; the transfer
  with DCRDR 0xE000EDF8 completes only in Debug state (S_REGRDY).
- DEMCR 0xE000EDFC (C1.6.5): VC_CORERESET bit 0 halts the core on leaving reset when
  C_DEBUGEN is set; DEMCR and DHCSR's C_DEBUGEN are reset by power-on only.
- AIRCR 0xE000ED0C (B3.2.6): a write needs VECTKEY 0x05FA; SYSRESETREQ bit 2 asks for a
  system reset, VECTRESET bit 0 (ARMv7-M only) resets the core alone; reads VECTKEYSTAT
  0xFA05.
- DFSR 0xE000ED30 (C1.6.1): HALTED 0, BKPT 1, DWTTRAP 2, VCATCH 3, EXTERNAL 4; a write
  of 1 clears a bit.
- DHCSR S_LOCKUP 19: code that faulted (or that the model does not run) locks the core
  up; the model then holds it halted, S_LOCKUP set, until the next reset.
- On leaving reset SP_main and the PC come from the vector table at 0 (words 0 and 1),
  xPSR = 0x01000000 (Thumb bit), as B1.5.5 "Reset behavior" says.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from app.hal.sim.mcu_memory import MemoryMap, Registers
from app.hal.sim.thumb import Lockup, ThumbCore

SCS, DWT, FPB, ITM, ROM_TABLE = 0xE000E000, 0xE0001000, 0xE0002000, 0xE0000000, 0xE00FF000
CPUID, AIRCR, DFSR = 0xD00, 0xD0C, 0xD30
DHCSR, DCRSR, DCRDR, DEMCR = 0xDF0, 0xDF4, 0xDF8, 0xDFC
DBGKEY, VECTKEY = 0xA05F, 0x05FA
C_DEBUGEN, C_HALT, C_STEP, C_MASKINTS = 1 << 0, 1 << 1, 1 << 2, 1 << 3
S_REGRDY, S_HALT, S_RETIRE_ST, S_RESET_ST = 1 << 16, 1 << 17, 1 << 24, 1 << 25
VC_CORERESET = 1 << 0
DFSR_HALTED, DFSR_BKPT, DFSR_VCATCH = 1 << 0, 1 << 1, 1 << 3
S_LOCKUP = 1 << 19
SP, PC, XPSR, MSP, PSP, SPECIAL = 13, 15, 16, 17, 18, 20
ARM_JEP106 = (4, 0x3B)  # continuation code, identity: ARM Ltd (JEP106)
ST_JEP106 = (0, 0x20)  # STMicroelectronics


@dataclass(frozen=True)
class CoreModel:
    """What a core reports: CPUID, SW-DP IDCODE, AHB-AP IDR, debug component part
    numbers (ROM table, SCS, DWT, FPB/BPU, ITM) and comparator counts."""

    cpuid: int
    dp_idcode: int
    ap_idr: int
    rom_part: int
    scs_part: int
    dwt_part: int
    fpb_part: int
    itm_part: int | None
    dwt_ctrl: int  # NUMCOMP in 31:28
    fp_ctrl: int  # NUM_CODE 7:4 (and 14:12), NUM_LIT 11:8
    armv7: bool
    tar_wrap: int  # bytes TAR auto-increments within (see CORES)


#: DP IDCODEs: ADIv5 DPIDR as the TRMs give them (M0 SW-DP 0x0BB11477, M0+ DPv1
#: 0x0BC11477, M3 0x1BA01477, M4 0x2BA01477); AHB-AP IDRs: M0 0x04770021, M0+
#: 0x04770031, M3/M4 0x24770011. TAR auto-increment: ADIv5 (IHI 0031C 7.2.2) guarantees
#: TAR[9:0] only, 1 KiB, which a Cortex-M0+ AP keeps to (LibSWD issue #15: past 1 KiB it
#: wraps); the Cortex-M3/M4 AHB-AP increments across 4 KiB (OpenOCD v0.12.0
#: src/target/cortex_m.c, CORTEX_M_F_TAR_AUTOINCR_BLOCK_4K on both, citing IHI 0031C
#: 7.2.2; set for the M3 since OpenOCD r2051, 2009).
CORES: dict[str, CoreModel] = {
    "cortex-m0": CoreModel(
        0x410CC200, 0x0BB11477, 0x04770021, 0x471, 0x008, 0x00A, 0x00B, None,
        0x2000_0000, 0x40, False, 0x400,
    ),
    "cortex-m0+": CoreModel(
        0x410CC601, 0x0BC11477, 0x04770031, 0x4C0, 0x008, 0x00A, 0x00B, None,
        0x2000_0000, 0x40, False, 0x400,
    ),
    "cortex-m3": CoreModel(
        0x411FC231, 0x1BA01477, 0x24770011, 0x4C3, 0x000, 0x002, 0x003, 0x001,
        0x4000_0000, 0x260, True, 0x1000,
    ),
    "cortex-m4": CoreModel(
        0x410FC241, 0x2BA01477, 0x24770011, 0x4C4, 0x00C, 0x002, 0x003, 0x001,
        0x4000_0000, 0x260, True, 0x1000,
    ),
}  # fmt: skip


def add_component_ids(
    block: Registers, part: int, component_class: int, designer: tuple[int, int] = ARM_JEP106
) -> None:
    """PIDR4 (0xFD0), PIDR0-3 (0xFE0-0xFEC) and CIDR0-3 (0xFF0-0xFFC) of a 4 KiB
    CoreSight component (ADIv5.2 D1.2): the part number, the designer's JEP106 code and
    the component class (0x1 ROM table, 0xE generic IP)."""
    continuation, identity = designer
    block.constant(0xFD0, continuation)
    block.constant(0xFE0, part & 0xFF)
    block.constant(0xFE4, (part >> 8) | ((identity & 0xF) << 4))
    block.constant(0xFE8, (identity >> 4) | 0x08)  # JEDEC bit 3: the code is JEP106
    block.constant(0xFEC, 0)
    for offset, value in zip(
        (0xFF0, 0xFF4, 0xFF8, 0xFFC), (0x0D, component_class << 4, 0x05, 0xB1), strict=True
    ):
        block.constant(offset, value)


class CortexMCore:
    """The core's debug state. ``system_reset`` is called for AIRCR.SYSRESETREQ (the MCU
    resets its peripherals and then calls ``leave_reset``)."""

    def __init__(
        self,
        kind: str,
        memory: MemoryMap,
        rom_designer: tuple[int, int],
        rom_part: int | None = None,
    ) -> None:
        self.model = CORES[kind]
        self.kind = kind
        self.memory = memory
        self.system_reset: Callable[[], None] = self.leave_reset
        self.regs = [0] * 21
        self.dcrdr = 0
        self.in_reset = False
        self.halted = False
        self._halt_pending = False
        self._dhcsr_control = 0
        self._regrdy = True
        self._reset_seen = False
        self.demcr = 0
        self.dfsr = 0
        self._aircr_low = 0
        self._vtor = 0
        self.runs_code_at: Callable[[int], bool] = lambda _pc: False
        self.now: Callable[[], float] = lambda: 0.0
        self.pin_clock: Callable[[Callable[[], float] | None], None] = lambda _time: None
        self._code: ThumbCore | None = None
        self.next_event: Callable[[], float | None] = lambda: None
        self.lockup = ""  # why code run by the model stopped without its BKPT
        self._build(rom_designer, rom_part)

    # -- reset ------------------------------------------------------------------------

    def power_on(self) -> None:
        self._dhcsr_control = 0
        self.demcr = 0
        self.dfsr = 0
        self.leave_reset()

    def hold_reset(self) -> None:
        """NRST (or a reset request) holds the core: not halted, not running."""
        self._code = None
        self.in_reset = True
        self.halted = False

    def leave_reset(self) -> None:
        """The core leaves reset: registers from the vector table; it halts when
        VC_CORERESET is set with C_DEBUGEN (or a halt was asked for during reset)."""
        self.in_reset = False
        self._reset_seen = True
        self._vtor = 0
        self.lockup = ""
        self._code = None
        self.regs = [0] * 21
        self.regs[MSP] = self.regs[SP] = self._vector(0) & ~3
        self.regs[PC] = self._vector(4) & ~1
        self.regs[XPSR] = 0x0100_0000
        catch = self.demcr & VC_CORERESET
        if self._dhcsr_control & C_DEBUGEN and (catch or self._halt_pending):
            self._enter_halt(DFSR_VCATCH if catch else DFSR_HALTED)
        else:
            self.halted = False
        self._halt_pending = False

    def _vector(self, offset: int) -> int:
        try:
            return self.memory.read_word(offset)
        except Exception:  # an unreadable vector table: the core locks up; it reads as 0
            return 0

    def _enter_halt(self, reason: int) -> None:
        self.halted = True
        self._dhcsr_control |= C_HALT
        self.dfsr |= reason

    @property
    def running(self) -> bool:
        return not (self.halted or self.in_reset)

    @property
    def running_firmware(self) -> bool:
        """Running the part's own firmware (not code a debugger started in RAM)."""
        return self.running and self._code is None

    # -- registers --------------------------------------------------------------------

    def _dhcsr(self) -> int:
        value = self._dhcsr_control & 0xF
        value |= (S_REGRDY if self._regrdy else 0) | (S_HALT if self.halted else 0)
        value |= S_RETIRE_ST if self.running else 0
        value |= S_LOCKUP if self.lockup else 0
        if self._reset_seen:
            value |= S_RESET_ST
            self._reset_seen = False
        return value

    def _write_dhcsr(self, value: int) -> None:
        if value >> 16 != DBGKEY:
            return  # C1.6.2: writes without the key are ignored
        self._dhcsr_control = value & (C_DEBUGEN | C_HALT | C_STEP | C_MASKINTS)
        if not value & C_DEBUGEN:
            self._dhcsr_control &= ~C_HALT
            self._stop_code()  # code a debugger started does not outlive debug
            self.halted = False
            return
        if value & C_HALT:
            if self.in_reset:
                self._halt_pending = True
            elif not self.halted:
                self._stop_code()
                self._enter_halt(DFSR_HALTED)
        elif self.halted and not value & C_STEP:
            self.halted = False  # resume
            if self.runs_code_at(self.regs[PC]) and not self.lockup:
                self._execute()
        # C_STEP from halt: one instruction, which the model does not execute

    def _execute(self) -> None:
        """Start the code at the PC; it runs as the clock moves (catch_up)."""
        self._code = ThumbCore(self.memory, self.regs[:16], self.now(), self.next_event)
        self.catch_up()

    def catch_up(self) -> None:
        """Run resumed code up to the part's clock, with the clock reading the core's
        time meanwhile (the flash times the loader's stores from when the core makes
        them); at its BKPT (or a lockup) the core halts in Debug state. Called before
        every packet the debug port handles."""
        code = self._code
        if code is None:
            return
        until = self.now()
        self.pin_clock(lambda: code.time)
        try:
            done = code.run(until)
        except Lockup as err:
            self.lockup, done = str(err), -1
        finally:
            self.pin_clock(None)
        if done is None:
            return
        self._stop_code()
        self._enter_halt(DFSR_HALTED if self.lockup else DFSR_BKPT)

    def _stop_code(self) -> None:
        if self._code is not None:
            self.regs[:16] = self._code.regs
            self._code = None

    def _write_dcrsr(self, value: int) -> None:
        if not self.halted:
            self._regrdy = False  # a transfer outside Debug state never completes
            return
        select = value & 0x7F
        if select <= 18 or select == SPECIAL:
            if value & (1 << 16):
                self.regs[select] = self.dcrdr
                if select == SP:
                    self.regs[MSP] = self.dcrdr
                elif select == MSP:
                    self.regs[SP] = self.dcrdr
            else:
                self.dcrdr = self.regs[select]
        self._regrdy = True

    def _write_aircr(self, value: int) -> None:
        if value >> 16 != VECTKEY:
            return
        self._aircr_low = value & 0x0700  # PRIGROUP
        if value & (1 << 2):
            self.system_reset()
        elif value & 1 and self.model.armv7:
            self.leave_reset()  # VECTRESET: the core alone

    def _write_dfsr(self, value: int) -> None:
        self.dfsr &= ~value

    def _write_dcrdr(self, value: int) -> None:
        self.dcrdr = value

    def _write_demcr(self, value: int) -> None:
        self.demcr = value & (0x010F07F1 if self.model.armv7 else 0x01000401)

    def _write_vtor(self, value: int) -> None:
        self._vtor = value & 0xFFFFFF80

    def _build(self, rom_designer: tuple[int, int], rom_part: int | None) -> None:
        model = self.model
        scs = Registers(SCS, 0x1000, "SCS")
        scs.constant(CPUID, model.cpuid)
        scs.add(AIRCR, lambda: 0xFA05_0000 | self._aircr_low, self._write_aircr)
        scs.add(DFSR, lambda: self.dfsr, self._write_dfsr)
        scs.add(DHCSR, self._dhcsr, self._write_dhcsr)
        scs.add(DCRSR, lambda: 0, self._write_dcrsr)
        scs.add(DCRDR, lambda: self.dcrdr, self._write_dcrdr)
        scs.add(DEMCR, lambda: self.demcr, self._write_demcr)
        scs.add(0xD08, lambda: self._vtor, self._write_vtor)
        add_component_ids(scs, model.scs_part, 0xE)
        dwt = Registers(DWT, 0x1000, "DWT")
        dwt.constant(0x000, model.dwt_ctrl)
        add_component_ids(dwt, model.dwt_part, 0xE)
        fpb = Registers(FPB, 0x1000, "FPB")
        fpb.storage(0x000, model.fp_ctrl, writable=0b1)  # FP_CTRL: ENABLE
        add_component_ids(fpb, model.fpb_part, 0xE)
        # ROM table entries (ADIv5.2 D3.4): offset from the table, bit 1 format 32-bit,
        # bit 0 present; the list ends with 0.
        rom = Registers(ROM_TABLE, 0x1000, "ROM table")
        components = [SCS, DWT, FPB] + ([ITM] if model.itm_part is not None else [])
        for index, address in enumerate(components):
            rom.constant(4 * index, ((address - ROM_TABLE) & 0xFFFFF000) | 0b11)
        rom.constant(0xFCC, 1)  # MEMTYPE.SYSMEM: system memory is on this bus
        add_component_ids(
            rom, rom_part if rom_part is not None else model.rom_part, 0x1, rom_designer
        )
        blocks = [scs, dwt, fpb, rom]
        if model.itm_part is not None:
            itm = Registers(ITM, 0x1000, "ITM")
            add_component_ids(itm, model.itm_part, 0xE)
            blocks.append(itm)
        self.debug_blocks = blocks
