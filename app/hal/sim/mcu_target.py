"""One simulated Cortex-M microcontroller behind its SWD debug port: ``make_mcu``
assembles the SW-DP/AHB-AP (app.hal.sim.swd_target), the core's debug registers and ROM
table (app.hal.sim.cortex_m_core), RAM, the flash array and the family's flash
controller (app.hal.sim.stm32_flash_f1 / _f4 / _l4, app.hal.sim.nrf_nvmc) and the
identification registers, over a virtual clock.

Every packet advances the clock by its bits at ``swd_hz``: request 8, turnaround 1,
acknowledge 3, data with parity 33, turnaround 1 (ADIv5 B4.2), and ``IDLE_CYCLES`` idle
clocks after it; a packet answered WAIT/FAULT (or not at all) has no data phase. A line
reset is 50 clocks high and 2 idle (ADIv5 B4.3.3).

STM32 identification (each family's reference manual, "Debug support" / "Device
electronic signature"): DBGMCU_IDCODE (REV_ID 31:16, DEV_ID 11:0) at 0x40015800 on
F0/G0 (RM0091 40.4.1, RM0444 40.4.1) and 0xE0042000 elsewhere (RM0008 31.6.1, RM0090
38.6.1, RM0316 33.6.1, RM0440 47.6.1, RM0351 48.6.1), readable under reset; the flash
size in KiB (16 bits) and the 96-bit unique ID at the addresses in ``STM32_INFO``.
While NRST is held the system is in reset: AHB-AP accesses other than the Private
Peripheral Bus (0xE0000000 up) and DBGMCU answer a bus error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from app.hal.sim.clock import SimClock, Timing
from app.hal.sim.cortex_m_core import CORES, ST_JEP106, CortexMCore
from app.hal.sim.flash_array import ArrayFaults, FlashArray, FlashController, FlashWindow
from app.hal.sim.mcu_memory import BusFault, MemoryMap, Ram, Region, Registers
from app.hal.sim.nrf_nvmc import NrfNvmc
from app.hal.sim.stm32_flash_f1 import Stm32FlashF1
from app.hal.sim.stm32_flash_f4 import Stm32FlashF4
from app.hal.sim.stm32_flash_l4 import Stm32FlashL4
from app.hal.sim.swd_target import SimSwdTarget

_OK, _WAIT, _NONE = 0b001, 0b010, 0b111
PACKET_BITS, SHORT_PACKET_BITS, IDLE_CYCLES, LINE_RESET_BITS = 46, 13, 2, 52
WRONG_IDCODE = 0x12345679  # designer 0x33C: no ARM DP answers this
REV_ID = 0x1000
NORDIC_JEP106 = (2, 0x44)  # Nordic VLSI ASA; its ROM tables: part 0x006 nRF52, 0x001 nRF51
DEFAULT_UID = bytes.fromhex("3400 2900 0f51 3338 3232 3837")
STM32_KINDS = (
    "stm32f0",
    "stm32f1",
    "stm32f3",
    "stm32f2",
    "stm32f4",
    "stm32g0",
    "stm32g4",
    "stm32l4",
)
NRF_KINDS = ("nrf51", "nrf52")


@dataclass(frozen=True)
class StmInfo:
    dbgmcu: int
    flash_size: int
    uid: int


STM32_INFO = {
    "stm32f0": StmInfo(0x40015800, 0x1FFFF7CC, 0x1FFFF7AC),  # RM0091 33.1
    "stm32f1": StmInfo(0xE0042000, 0x1FFFF7E0, 0x1FFFF7E8),  # RM0008 30.1-30.2
    "stm32f3": StmInfo(0xE0042000, 0x1FFFF7CC, 0x1FFFF7AC),  # RM0316 34.1-34.2
    "stm32f2": StmInfo(0xE0042000, 0x1FFF7A22, 0x1FFF7A10),  # RM0033 32.1-32.2
    "stm32f4": StmInfo(0xE0042000, 0x1FFF7A22, 0x1FFF7A10),  # RM0090 39.1-39.2
    "stm32g0": StmInfo(0x40015800, 0x1FFF75E0, 0x1FFF7590),  # RM0444 41.1-41.2
    "stm32g4": StmInfo(0xE0042000, 0x1FFF75E0, 0x1FFF7590),  # RM0440 48.1-48.2
    "stm32l4": StmInfo(0xE0042000, 0x1FFF75E0, 0x1FFF7590),  # RM0351 49.1-49.2
}


@dataclass(frozen=True)
class McuSpec:
    kind: str  # one of STM32_KINDS or NRF_KINDS
    flash_base: int
    sectors: tuple[int, ...]  # page/sector sizes in address order
    ram_base: int
    ram_size: int
    dev_id: int  # STM32 DEV_ID; nRF52 FICR INFO.PART; nRF51 FICR CONFIGID.HWID
    core: str = "cortex-m3"
    banks: int = 1  # G4/L4 (and G0B1): pages split equally over this many banks (BKER)


@dataclass(frozen=True)
class McuFaults:
    no_target: bool = False
    wrong_idcode: bool = False
    wrong_dev_id: bool = False
    protected: bool = False
    program_error_address: int | None = None
    stuck_address: int | None = None
    erase_fail_address: int | None = None
    busy_forever: bool = False
    wait_storm: int = 0
    drop_after_packets: int | None = None
    swd_off_when_running: bool = False


class Rom(Region):
    """Read-only bytes (factory information); writes are ignored."""

    def __init__(self, base: int, data: bytes, name: str) -> None:
        super().__init__(base, len(data), name)
        self.data = bytes(data)

    def read(self, offset: int, size: int) -> int:
        return int.from_bytes(self.data[offset : offset + size], "little")

    def write(self, offset: int, value: int, size: int) -> None:
        return


class SimMcu(SimSwdTarget):
    """The packet interface of SimSwdTarget plus NRST (``set_reset``); see make_mcu."""

    def __init__(
        self, spec: McuSpec, clock: SimClock, faults: McuFaults, swd_hz: int, array: FlashArray
    ) -> None:
        model = CORES[spec.core]
        super().__init__(
            regions={},
            idcode=WRONG_IDCODE if faults.wrong_idcode else model.dp_idcode,
            present=not faults.no_target,
            ap_idr=model.ap_idr,
            ap_base=0xE00FF003,  # ROM table at 0xE00FF000, present, ADIv5 format
            tar_wrap=model.tar_wrap,
        )
        self.spec = spec
        self.clock = clock
        self.faults = faults
        self.swd_hz = swd_hz
        self.array = array
        self.memory = MemoryMap()
        self.memory.gate = self._gate
        self.wait_acks = 0
        self.packets_seen = 0
        self._storm = faults.wait_storm
        self.nrst = False
        self.reset_passthrough: tuple[int, ...] = ()
        self.controller: FlashController
        self.core: CortexMCore
        self.nvmc: NrfNvmc | None = None
        self._ctrl_ap_reset = False

    # -- what tests and benchmarks look at ---------------------------------------------

    @property
    def flash(self) -> bytearray:
        return self.array.data

    @property
    def halted(self) -> bool:
        return self.core.halted

    @property
    def protected(self) -> bool:
        """Readout protection in force (RDP level >= 1, APPROTECT, PALL)."""
        return self.controller.read_protected

    @property
    def option_bytes(self) -> bytes:
        """STM32F0/F1/F3: the 16 option bytes; F2/F4: OPTCR's stored value; G0/G4/L4:
        OPTR's; nRF: the UICR."""
        return self.controller.option_bytes

    # -- the wire -----------------------------------------------------------------------

    def _tick(self, bits: int) -> None:
        """The wire's time passes; code the core runs keeps up with it."""
        self.clock.advance(bits / self.swd_hz)
        self.core.catch_up()

    def _silent(self) -> bool:
        """No ACK at all: the link has dropped, debug is off for good (RDP level 2), or
        the firmware took the pins while the core runs."""
        dropped = self.faults.drop_after_packets
        if dropped is not None and self.packets_seen >= dropped:
            return True
        if self.controller.debug_disabled:
            return True
        return self.faults.swd_off_when_running and self.core.running_firmware and not self.nrst

    def line_reset(self) -> None:
        self._tick(LINE_RESET_BITS)
        if not self._silent():
            super().line_reset()

    def sequence(self, bits: int, count: int) -> None:
        self._tick(count)
        if not self._silent():
            super().sequence(bits, count)
        else:
            self._reset_seen = False

    def packet(self, request: int, data: int | None) -> tuple[int, int | None]:
        if self._silent():
            self.packets_seen += 1
            self._tick(SHORT_PACKET_BITS + IDLE_CYCLES)
            return _NONE, None
        self.packets_seen += 1
        ack, value = super().packet(request, data)
        self._tick((PACKET_BITS if ack == _OK else SHORT_PACKET_BITS) + IDLE_CYCLES)
        if ack == _WAIT:
            self.wait_acks += 1
        return ack, value

    def _must_wait(self, request: int) -> bool:
        """The WAIT storm: every AP access (APnDP, request bit 1) is answered WAIT
        ``faults.wait_storm`` times before it is taken."""
        return bool(request & 0b10 and self._storm > 0) or super()._must_wait(request)

    def _waited(self, request: int) -> None:
        if request & 0b10 and self._storm > 0:
            self._storm -= 1

    def _ap(self, read: bool, address: int, data: int | None) -> tuple[int, int | None]:
        ack, value = super()._ap(read, address, data)
        if ack == _OK:
            self._storm = self.faults.wait_storm
        return ack, value

    # -- the bus behind the AHB-AP -----------------------------------------------------

    def _gate(self, address: int) -> None:
        if self.nrst and address < 0xE0000000 and address not in self.reset_passthrough:
            raise BusFault(f"0x{address:08X}: the system is held in reset (NRST)")

    def _device_enabled(self) -> bool:
        return not (self.nvmc is not None and self.nvmc.ap_locked)

    def _bus_read(self, address: int, size: int) -> int:
        if not self._device_enabled():
            raise BusFault("AHB-AP: APPROTECT")
        return self.memory.read(address, size)

    def _bus_write(self, address: int, value: int, size: int) -> None:
        if not self._device_enabled():
            raise BusFault("AHB-AP: APPROTECT")
        self.memory.write(address, value, size)

    # -- the nRF52 CTRL-AP (AP 1) -------------------------------------------------------

    def _other_ap_read(self, apsel: int, register: int) -> int:
        if apsel == 1 and self.nvmc is not None and self.spec.kind == "nrf52":
            if register == 0x000:
                return int(self._ctrl_ap_reset)
            return self.nvmc.ctrl_ap_read(register)
        return 0

    def _other_ap_write(self, apsel: int, register: int, data: int) -> None:
        if apsel != 1 or self.nvmc is None or self.spec.kind != "nrf52":
            return
        if register == 0x000:  # RESET: 1 holds the system in reset, 0 releases it
            if data & 1 and not self._ctrl_ap_reset:
                self._ctrl_ap_reset = True
                self.core.hold_reset()
            elif not data & 1 and self._ctrl_ap_reset:
                self._ctrl_ap_reset = False
                self.system_reset()
        elif register == 0x004 and data & 1:
            self.nvmc.ctrl_ap_erase_all()

    # -- resets -------------------------------------------------------------------------

    def set_reset(self, asserted: bool) -> None:
        """NRST: asserted holds the core and the system in reset; released, the system
        resets (flash controller locked, option bytes reloaded where the family does)
        and the core leaves reset."""
        if asserted and not self.nrst:
            self.nrst = True
            self.core.hold_reset()
        elif not asserted and self.nrst:
            self.nrst = False
            self.system_reset()

    def system_reset(self) -> None:
        self.controller.system_reset()
        self.core.leave_reset()

    def power_cycle(self) -> None:
        """Power off and on: the debug port back in JTAG mode, debug state cleared,
        option bytes loaded."""
        self.__post_init__()
        self.nrst = self._ctrl_ap_reset = False
        self.controller.power_on()
        self.core.power_on()


def make_mcu(
    spec: McuSpec,
    clock: SimClock,
    timing: Timing,
    faults: McuFaults = McuFaults(),
    *,
    swd_hz: int = 4_000_000,
    uid: bytes = DEFAULT_UID,
) -> SimMcu:
    """A powered-up part: factory option bytes (or protected), erased flash, the core
    running (nothing to run: the vector table is erased)."""
    if spec.kind not in STM32_KINDS + NRF_KINDS:
        raise ValueError(f"unknown MCU kind {spec.kind!r}")
    array = FlashArray(
        spec.flash_base,
        spec.sectors,
        clock,
        timing,
        ArrayFaults(faults.stuck_address, faults.erase_fail_address, faults.busy_forever),
    )
    mcu = SimMcu(spec, clock, faults, swd_hz, array)
    memory = mcu.memory
    ram = Ram(spec.ram_base, spec.ram_size)
    memory.add(ram)
    dev_id = spec.dev_id ^ 1 if faults.wrong_dev_id else spec.dev_id
    controller: FlashController
    if spec.kind in STM32_KINDS:
        controller = _stm32_controller(spec, array, faults, mcu.system_reset)
        window = FlashWindow(array, controller)
        memory.add(window)
        memory.add(FlashWindow(array, controller, base=0))  # boot from main flash
        info = STM32_INFO[spec.kind]
        mcu.reset_passthrough = tuple(range(info.dbgmcu, info.dbgmcu + 0x10, 4))
        memory.add(_dbgmcu(info.dbgmcu, REV_ID << 16 | dev_id))
        if spec.kind in DBGMCU_CLOCK:  # F0/G0: DBGMCU sits on APB behind an RCC enable
            memory.add(_rcc_enable(DBGMCU_CLOCK[spec.kind]))
        memory.add(_signature(info, array.size // 1024, uid))
        designer, rom_part = ST_JEP106, dev_id  # ST's ROM table names the part
    else:
        nvmc = NrfNvmc(
            spec.kind,
            array,
            ram,
            part=dev_id,
            protected=faults.protected,
            program_error_address=faults.program_error_address,
            device_id=uid[:8],
        )
        controller = mcu.nvmc = nvmc
        window = FlashWindow(array, controller)
        if spec.kind == "nrf52":
            window.debugger_refused = lambda: False  # APPROTECT closes the whole AP instead
        memory.add(window)
        designer, rom_part = NORDIC_JEP106, 0x006 if spec.kind == "nrf52" else 0x001
    for region in controller.regions():
        memory.add(region)
    mcu.controller = controller
    core = CortexMCore(spec.core, memory, designer, rom_part)
    for block in core.debug_blocks:
        memory.add(block)
    core.system_reset = mcu.system_reset
    # a debugger's flash loader: code resumed in RAM runs (app.hal.sim.thumb); the
    # firmware in flash runs abstractly, as before
    core.runs_code_at = lambda pc: spec.ram_base <= pc < spec.ram_base + spec.ram_size
    core.now = mcu.clock.now

    def pin(time: Callable[[], float] | None) -> None:
        mcu.clock.pinned = time

    core.pin_clock = pin
    core.next_event = lambda: array.busy_until if array.busy() else None
    mcu.core = core
    core.power_on()
    return mcu


def _stm32_controller(
    spec: McuSpec, array: FlashArray, faults: McuFaults, reset: Callable[[], None]
) -> FlashController:
    family, error = spec.kind, faults.program_error_address
    if family in ("stm32f0", "stm32f1", "stm32f3"):
        return Stm32FlashF1(
            family,
            array,
            protected=faults.protected,
            program_error_address=error,
            system_reset=reset,
        )
    if family in ("stm32f2", "stm32f4"):
        return Stm32FlashF4(family, array, protected=faults.protected, program_error_address=error)
    return Stm32FlashL4(
        family,
        array,
        banks=spec.banks,
        protected=faults.protected,
        program_error_address=error,
        system_reset=reset,
    )


#: the RCC enable register of DBGMCU's APB clock, where it has one: RCC_APB2ENR
#: (DBGMCUEN bit 22, RM0091 7.4.7) on F0, RCC_APBENR1 (DBGEN bit 27, RM0444 5.4.15) on G0.
#: Only that word of RCC is modelled; the rest of RCC still answers a bus error.
DBGMCU_CLOCK = {"stm32f0": 0x4002_1018, "stm32g0": 0x4002_103C}


def _rcc_enable(address: int) -> Registers:
    block = Registers(address, 4, "RCC clock enable")
    block.storage(0)
    return block


def _dbgmcu(base: int, idcode: int) -> Registers:
    """DBGMCU_IDCODE (read-only) and the CR and freeze registers a debugger writes."""
    block = Registers(base, 0x10, "DBGMCU")
    block.constant(0x0, idcode)
    for offset in (0x4, 0x8, 0xC):
        block.storage(offset)
    return block


def _signature(info: StmInfo, flash_kib: int, uid: bytes) -> Rom:
    """The unique ID and flash size words, in one read-only block spanning both."""
    if len(uid) != 12:
        raise ValueError("the STM32 unique ID is 96 bits (12 bytes)")
    base = min(info.uid, info.flash_size & ~3)
    end = max(info.uid + 12, (info.flash_size & ~3) + 4)
    data = bytearray(b"\xff") * (end - base)
    data[info.uid - base : info.uid - base + 12] = uid
    data[info.flash_size - base : info.flash_size - base + 2] = flash_kib.to_bytes(2, "little")
    return Rom(base, bytes(data), "device signature")
