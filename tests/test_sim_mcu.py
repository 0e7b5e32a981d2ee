"""The simulated Cortex-M microcontrollers (app.hal.sim.mcu_target) driven through their
SWD packet interface by app.hal.debug_port over app.hal.swd.PacketLink (the driver, not
what is checked). Register addresses and values here are taken from the vendors'
manuals (cited in the module docstrings of the simulator), written out again rather
than imported, so the tests and the model cannot be wrong together."""

from __future__ import annotations

import pytest

from app.hal.debug_port import DebugPort
from app.hal.sim.clock import SimClock, Timing
from app.hal.sim.mcu_target import McuFaults, McuSpec, SimMcu, make_mcu
from app.hal.swd import Access, PacketLink, SwdError, SwdFault, SwdMismatch

KEY1, KEY2 = 0x45670123, 0xCDEF89AB
DHCSR, DCRSR, DCRDR, DEMCR, AIRCR, DFSR = (
    0xE000EDF0, 0xE000EDF4, 0xE000EDF8, 0xE000EDFC, 0xE000ED0C, 0xE000ED30,
)  # fmt: skip
DBGKEY = 0xA05F << 16
S_REGRDY, S_HALT, S_RESET_ST = 1 << 16, 1 << 17, 1 << 25
RAM = 0x2000_0000
FLASH = 0x0800_0000
NO_FAULTS, INSTANT = McuFaults(), Timing()

F1 = McuSpec("stm32f1", FLASH, (1024,) * 64, RAM, 20 * 1024, 0x410)
# STM32F1 FPEC (PM0075 3): KEYR, OPTKEYR, SR, CR, AR, OBR
F1_KEYR, F1_OPTKEYR, F1_SR, F1_CR, F1_AR, F1_OBR = (
    0x40022004, 0x40022008, 0x4002200C, 0x40022010, 0x40022014, 0x4002201C,
)  # fmt: skip


class Rig:
    """A part, its clock and a debug port on it."""

    def __init__(
        self,
        spec: McuSpec,
        faults: McuFaults = NO_FAULTS,
        timing: Timing = INSTANT,
        **link: float,
    ) -> None:
        self.clock = SimClock(Timing())  # virtual only: no sleeping in tests
        self.mcu: SimMcu = make_mcu(spec, self.clock, timing, faults)
        self.port = DebugPort(PacketLink(self.mcu, **link))  # type: ignore[arg-type]

    def read(self, address: int) -> int:
        return self.port.read_words(address, 1)[0]

    def write(self, address: int, value: int) -> None:
        self.port.write_words(address, [value])

    def bus_error(self) -> bool:
        """CTRL/STAT.STICKYERR (ADIv5: a posted AP write that failed shows only there or
        as FAULT on the next AP access); cleared through ABORT."""
        (status,) = self.port.link.transfer([Access(False, True, 0x4)])
        self.port.link.transfer([Access(False, False, 0x0, 0b11110)])
        return bool(status & (1 << 5))

    def wait_clear(self, status: int, busy: int) -> int:
        for _ in range(100_000):
            value = self.read(status)
            if not value & busy:
                return value
        raise AssertionError("still busy")


def connected(spec: McuSpec = F1, faults: McuFaults = NO_FAULTS, **kw: object) -> Rig:
    rig = Rig(spec, faults, **kw)  # type: ignore[arg-type]
    rig.port.connect()
    return rig


def f1_unlock(rig: Rig) -> None:
    rig.write(F1_KEYR, KEY1)
    rig.write(F1_KEYR, KEY2)


def f1_program(rig: Rig, address: int, halfwords: list[int]) -> list[int]:
    rig.write(F1_CR, 1)  # PG
    units = [(address + 2 * i, v) for i, v in enumerate(halfwords)]
    return rig.port.write_polled(units, 2, F1_SR, 1)


# -- identification and the debug port ----------------------------------------------------


def test_identification_as_a_real_stm32f103_reports_it() -> None:
    rig = connected()
    assert rig.port.idcode == 0x1BA01477
    assert rig.read(0xE0042000) & 0xFFF == 0x410  # DBGMCU_IDCODE DEV_ID
    assert rig.read(0xE000ED00) == 0x411FC231  # CPUID Cortex-M3 r1p1
    assert rig.read(0x1FFFF7E0) & 0xFFFF == 64  # flash size in KiB
    uid = rig.port.read_words(0x1FFFF7E8, 3)
    assert b"".join(w.to_bytes(4, "little") for w in uid) == bytes.fromhex(
        "340029000f51333832323837"
    )  # make_mcu's default UID


def test_rom_table_and_component_ids() -> None:
    rig = connected()
    assert rig.port.ap_read(0, 0xFC) == 0x24770011  # AHB-AP IDR
    base = rig.port.ap_read(0, 0xF8)
    assert base == 0xE00FF003
    rom = base & ~0xFFF
    entries = rig.port.read_words(rom, 5)
    components = [(rom + (e & 0xFFFFF000)) & 0xFFFFFFFF for e in entries if e & 1]
    assert components == [0xE000E000, 0xE0001000, 0xE0002000, 0xE0000000] and entries[4] == 0

    def cid(address: int) -> int:
        words = rig.port.read_words(address + 0xFF0, 4)
        return sum((w & 0xFF) << (8 * i) for i, w in enumerate(words))

    def pid(address: int) -> tuple[int, int]:
        p0, p1, p2, _ = rig.port.read_words(address + 0xFE0, 4)
        return p0 | (p1 & 0xF) << 8, (p1 >> 4) | (p2 & 7) << 4  # part, JEP106 identity

    assert cid(rom) == 0xB105100D  # class 1: ROM table
    assert pid(rom) == (0x410, 0x20)  # ST's table names the part (DEV_ID)
    assert cid(0xE000E000) == 0xB105E00D  # SCS: generic IP class
    assert pid(0xE000E000) == (0x000, 0x3B)  # ARM's SCS-M3
    assert pid(0xE0002000) == (0x003, 0x3B)  # FPB


def test_each_packet_advances_the_clock_by_its_bits() -> None:
    rig = connected()
    before, packets = rig.clock.now(), rig.mcu.packets
    rig.read(RAM)
    n = rig.mcu.packets - packets
    assert rig.clock.now() - before == pytest.approx(n * (46 + 2) / 4e6)


# -- the core -------------------------------------------------------------------------------


def test_halt_registers_and_resume() -> None:
    rig = connected()
    assert not rig.mcu.halted
    rig.write(DHCSR, DBGKEY | 0b11)  # C_DEBUGEN | C_HALT
    assert rig.read(DHCSR) & S_HALT and rig.mcu.halted
    rig.write(DCRDR, 0x1234_5678)
    rig.write(DCRSR, (1 << 16) | 3)  # write R3
    assert rig.read(DHCSR) & S_REGRDY
    rig.write(DCRSR, 3)
    assert rig.read(DCRDR) == 0x1234_5678
    rig.write(DHCSR, 0b11)  # no DBGKEY: ignored
    rig.write(DHCSR, DBGKEY | 0b01)  # resume
    assert not rig.mcu.halted and not rig.read(DHCSR) & S_HALT


def test_vector_catch_on_system_reset_loads_sp_and_pc() -> None:
    rig = connected()
    rig.mcu.flash[0:8] = (0x2000_1000).to_bytes(4, "little") + (0x0800_0101).to_bytes(4, "little")
    rig.write(DHCSR, DBGKEY | 1)
    rig.write(DEMCR, 1)  # VC_CORERESET
    rig.write(AIRCR, 0x05FA_0004)  # SYSRESETREQ
    dhcsr = rig.read(DHCSR)
    assert dhcsr & S_HALT and dhcsr & S_RESET_ST
    assert not rig.read(DHCSR) & S_RESET_ST  # sticky until read
    assert rig.read(DFSR) & (1 << 3)  # VCATCH
    regs = {}
    for number in (13, 15, 16):
        rig.write(DCRSR, number)
        regs[number] = rig.read(DCRDR)
    assert regs == {13: 0x2000_1000, 15: 0x0800_0100, 16: 0x0100_0000}
    rig.write(DEMCR, 0)
    rig.write(AIRCR, 0x05FA_0004)
    assert not rig.mcu.halted
    rig.write(AIRCR, 0x0000_0004)  # no VECTKEY: nothing
    assert not rig.mcu.halted


def test_nrst_holds_the_system_and_release_resets_it() -> None:
    rig = connected()
    f1_unlock(rig)
    rig.mcu.set_reset(True)
    assert rig.read(0xE0042000) & 0xFFF == 0x410  # DBGMCU readable under reset
    rig.write(DHCSR, DBGKEY | 1)
    rig.write(DEMCR, 1)
    with pytest.raises(SwdFault):
        rig.port.read_words(RAM, 2)  # the second DRW read finds STICKYERR
    rig.mcu.set_reset(False)
    assert rig.mcu.halted  # caught at the reset vector
    assert rig.read(F1_CR) & 0x80  # the reset locked the FPEC again


# -- STM32F1 flash ------------------------------------------------------------------------


def test_f1_unlock_erase_program_read_back() -> None:
    rig = connected()
    rig.mcu.flash[0x400:0x800] = bytes(0x400)
    assert rig.read(F1_CR) & 0x80  # LOCK
    f1_unlock(rig)
    assert not rig.read(F1_CR) & 0x80
    rig.write(F1_CR, 2)  # PER
    rig.write(F1_AR, FLASH + 0x400)
    rig.write(F1_CR, 2 | 0x40)  # PER | STRT
    assert rig.wait_clear(F1_SR, 1) & 0x20  # EOP
    assert rig.mcu.flash[0x400:0x800] == b"\xff" * 0x400
    rig.write(F1_SR, 0x20)
    assert f1_program(rig, FLASH + 0x400, [0x1111, 0x2222, 0x3333, 0x4444]) == [0x20] * 4
    assert rig.port.read_words(FLASH + 0x400, 2) == [0x2222_1111, 0x4444_3333]
    rig.write(F1_CR, 0x80)  # LOCK
    assert rig.read(F1_CR) == 0x80


def test_f1_writes_while_locked_do_nothing() -> None:
    rig = connected()
    rig.write(F1_CR, 1)  # PG, but locked: ignored
    assert rig.read(F1_CR) == 0x80
    rig.port.write_polled([(FLASH, 0x1234)], 2, F1_SR, 1)
    assert rig.mcu.flash[0:2] == b"\xff\xff"


def test_f1_wrong_key_locks_the_fpec_until_reset() -> None:
    rig = connected()
    rig.write(F1_KEYR, 0x1111_1111)
    assert rig.bus_error()
    rig.write(F1_KEYR, KEY1)  # locked out: even the right key is a bus error now
    assert rig.bus_error()
    assert rig.read(F1_CR) & 0x80
    rig.mcu.set_reset(True)
    rig.mcu.set_reset(False)
    f1_unlock(rig)
    assert not rig.read(F1_CR) & 0x80


def test_f1_programming_errors() -> None:
    rig = connected()
    f1_unlock(rig)
    f1_program(rig, FLASH, [0x00FF])
    rig.write(F1_SR, 0x34)  # clear EOP (and the error flags)
    assert f1_program(rig, FLASH, [0x0F0F]) == [0x04]  # PGERR: not erased
    assert rig.mcu.flash[0:2] == b"\xff\x00"
    rig.write(F1_SR, 0x04)
    assert f1_program(rig, FLASH, [0x0000]) == [0x20]  # zero may be written over anything
    assert not rig.bus_error()
    rig.write(FLASH + 4, 0x1234_5678)  # a word: bus error (half-words only)
    assert rig.bus_error()
    assert rig.mcu.flash[4:8] == b"\xff" * 4


def test_f1_mass_erase() -> None:
    rig = connected()
    rig.mcu.flash[:] = bytes(len(rig.mcu.flash))
    f1_unlock(rig)
    rig.write(F1_CR, 4)
    rig.write(F1_CR, 4 | 0x40)
    rig.wait_clear(F1_SR, 1)
    assert rig.mcu.flash == b"\xff" * 64 * 1024


def test_f1_readout_protection_and_regression_mass_erases() -> None:
    rig = connected(faults=McuFaults(protected=True))
    rig.mcu.flash[0:4] = b"\x12\x34\x56\x78"
    assert rig.read(F1_OBR) & 0b10  # RDPRT
    with pytest.raises(SwdFault):
        rig.port.read_words(FLASH, 2)
    f1_unlock(rig)
    rig.write(F1_OPTKEYR, KEY1)
    rig.write(F1_OPTKEYR, KEY2)
    assert rig.read(F1_CR) & 0x200  # OPTWRE
    rig.write(F1_CR, 0x20 | 0x200)  # OPTER
    rig.write(F1_CR, 0x20 | 0x40 | 0x200)  # OPTER | STRT
    rig.wait_clear(F1_SR, 1)
    assert rig.mcu.flash[0:4] == b"\x12\x34\x56\x78"  # erasing the options alone keeps it
    rig.write(F1_CR, 0x10 | 0x200)  # OPTPG
    rig.port.write_polled([(0x1FFFF800, 0x00A5)], 2, F1_SR, 1)
    assert rig.mcu.flash == b"\xff" * 64 * 1024  # PM0075: unprotecting mass-erases
    assert rig.mcu.option_bytes[0:2] == b"\xa5\x5a"
    assert rig.mcu.protected  # until the option bytes are loaded again
    rig.mcu.set_reset(True)
    rig.mcu.set_reset(False)
    assert not rig.mcu.protected and not rig.read(F1_OBR) & 0b10
    assert rig.read(FLASH) == 0xFFFF_FFFF


def test_f1_page_erase_takes_the_datasheet_time_and_flash_reads_wait() -> None:
    rig = connected(timing=Timing("typ"), wait_retries=100_000)
    f1_unlock(rig)
    rig.write(F1_CR, 2)
    rig.write(F1_AR, FLASH)
    start = rig.clock.now()
    rig.write(F1_CR, 2 | 0x40)
    waits = rig.mcu.wait_acks
    assert rig.read(FLASH) == 0xFFFF_FFFF  # stalls (WAIT) until the erase is over
    assert rig.mcu.wait_acks - waits > 100
    assert rig.read(F1_SR) & 0x21 == 0x20  # EOP, not BSY
    assert 0.020 <= rig.clock.now() - start < 0.0205  # DS5319: tERASE 20 ms


# -- faults ---------------------------------------------------------------------------------


def test_no_target_and_wrong_idcode() -> None:
    with pytest.raises(SwdError, match="no acknowledge"):
        connected(faults=McuFaults(no_target=True))
    assert connected(faults=McuFaults(wrong_idcode=True)).port.idcode == 0x12345679


def test_wrong_dev_id_reports_another_part() -> None:
    rig = connected(faults=McuFaults(wrong_dev_id=True))
    assert rig.read(0xE0042000) & 0xFFF not in (0x410, 0)


def test_wait_storm_answers_wait_before_every_ap_access() -> None:
    rig = connected(faults=McuFaults(wait_storm=3))
    waits = rig.mcu.wait_acks
    rig.write(RAM, 0xABCD)
    assert rig.read(RAM) == 0xABCD
    assert rig.mcu.wait_acks - waits >= 3 * 4  # CSW, TAR, DRW, ... each 3 times
    storm = Rig(F1, McuFaults(wait_storm=50), wait_retries=10)
    storm.port.connect()
    with pytest.raises(SwdError, match="still WAIT"):
        storm.read(RAM)


def test_link_drops_after_n_packets() -> None:
    rig = connected(faults=McuFaults(drop_after_packets=40))
    with pytest.raises(SwdError, match="no acknowledge"):
        for _ in range(40):
            rig.read(RAM)
    with pytest.raises(SwdError, match="no acknowledge"):
        rig.port.connect()


def test_swd_off_while_running_only_connect_under_reset_gets_in() -> None:
    rig = Rig(F1, McuFaults(swd_off_when_running=True))
    with pytest.raises(SwdError, match="no acknowledge"):
        rig.port.connect()
    rig.port.connect(under_reset=True)
    rig.write(DHCSR, DBGKEY | 1)
    rig.write(DEMCR, 1)
    rig.port.set_reset(False)
    assert rig.mcu.halted and rig.read(DHCSR) & S_HALT
    with pytest.raises(SwdError, match="no acknowledge"):
        rig.write(DHCSR, DBGKEY | 1)  # run: the firmware takes the pins at once
    assert not rig.mcu.halted


def test_program_error_stuck_bit_and_erase_failure() -> None:
    rig = connected(
        faults=McuFaults(
            program_error_address=FLASH + 0x10,
            stuck_address=FLASH + 0x20,
            erase_fail_address=FLASH + 0x404,
        )
    )
    f1_unlock(rig)
    assert f1_program(rig, FLASH + 0x10, [0x0000]) == [0x04]  # PGERR
    rig.write(F1_SR, 0x34)
    assert f1_program(rig, FLASH + 0x20, [0x0000]) == [0x20]
    assert rig.read(FLASH + 0x20) & 0xFFFF == 0x0001  # bit 0 never programs
    rig.mcu.flash[0x400:0x408] = bytes(8)
    rig.write(F1_CR, 2)
    rig.write(F1_AR, FLASH + 0x400)
    rig.write(F1_CR, 0x42)
    rig.wait_clear(F1_SR, 1)
    assert rig.port.read_words(FLASH + 0x400, 2) == [0xFFFF_FFFF, 0]


def test_busy_forever_never_clears() -> None:
    rig = connected(faults=McuFaults(busy_forever=True), match_timeout_s=0.02)
    f1_unlock(rig)
    rig.write(F1_CR, 1)
    with pytest.raises(SwdMismatch, match="still reads"):
        rig.port.write_polled([(FLASH, 0x1234)], 2, F1_SR, 1)
