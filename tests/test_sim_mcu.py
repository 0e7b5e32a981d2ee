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
        self.faulted = False  # a write the debug port reported as a bus error

    def read(self, address: int) -> int:
        return self.port.read_words(address, 1)[0]

    def write(self, address: int, value: int) -> None:
        """One word; a bus error is noted for bus_error(), not raised (DebugPort checks
        CTRL/STAT after each batch and raises SwdFault)."""
        try:
            self.port.write_words(address, [value])
        except SwdFault:
            self.faulted = True

    def bus_error(self) -> bool:
        """The last writes ended in a bus error: seen by the debug port's batch check,
        or CTRL/STAT.STICKYERR (ADIv5: a posted AP write that failed shows only there or
        as FAULT on the next AP access); cleared through ABORT."""
        (status,) = self.port.link.transfer([Access(False, True, 0x4)])
        self.port.link.transfer([Access(False, False, 0x0, 0b11110)])
        seen, self.faulted = self.faulted or bool(status & (1 << 5)), False
        return seen

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
    rig.write(DHCSR, 0)  # no DBGKEY: ignored, so the core stays halted
    assert rig.mcu.halted
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


# -- STM32F0/F3: RDP regression at the option erase, options loaded by OBL_LAUNCH ----------

F0 = McuSpec("stm32f0", FLASH, (1024,) * 32, RAM, 4096, 0x444, core="cortex-m0")


def test_f0_identification_at_its_own_addresses() -> None:
    rig = connected(F0)
    assert rig.port.idcode == 0x0BB11477
    assert rig.read(0x40015800) & 0xFFF == 0x444  # DBGMCU on the APB (RM0091)
    assert rig.read(0xE000ED00) == 0x410CC200
    assert rig.read(0x1FFFF7CC) & 0xFFFF == 32


def test_f0_regression_erases_at_option_erase_and_applies_at_obl_launch() -> None:
    rig = connected(F0, McuFaults(protected=True))
    rig.mcu.flash[:4] = b"\x01\x02\x03\x04"
    assert (rig.read(F1_OBR) >> 1) & 3 == 0b01  # RDPRT level 1
    f1_unlock(rig)
    rig.write(F1_OPTKEYR, KEY1)
    rig.write(F1_OPTKEYR, KEY2)
    rig.write(F1_CR, 0x220)
    rig.write(F1_CR, 0x260)  # OPTER | STRT
    rig.wait_clear(F1_SR, 1)
    assert rig.mcu.flash[:4] == b"\xff" * 4  # RM0091: the option erase at level 1 mass-erases
    rig.write(F1_CR, 0x210)  # OPTPG
    rig.port.write_polled([(0x1FFFF800, 0x00AA)], 2, F1_SR, 1)
    rig.mcu.set_reset(True)
    rig.mcu.set_reset(False)
    assert rig.mcu.protected  # a system reset does not load the option bytes on F0
    f1_unlock(rig)
    rig.write(F1_OPTKEYR, KEY1)
    rig.write(F1_OPTKEYR, KEY2)
    rig.port.write_words(F1_CR, [0x2200])  # OBL_LAUNCH: load and reset
    assert not rig.mcu.protected and (rig.read(F1_OBR) >> 1) & 3 == 0


# -- STM32F2/F4 -------------------------------------------------------------------------------

F4 = McuSpec(
    "stm32f4", FLASH, (16384,) * 4 + (65536,) + (131072,) * 7, RAM, 128 * 1024, 0x413,
    core="cortex-m4",
)  # fmt: skip
F42X = McuSpec(
    "stm32f4", FLASH, ((16384,) * 4 + (65536,) + (131072,) * 7) * 2, RAM, 192 * 1024, 0x419,
    core="cortex-m4",
)  # fmt: skip
F4_KEYR, F4_OPTKEYR, F4_SR, F4_CR, F4_OPTCR = (
    0x40023C04, 0x40023C08, 0x40023C0C, 0x40023C10, 0x40023C14,
)  # fmt: skip
F4_BSY = 1 << 16


def f4_unlock(rig: Rig) -> None:
    rig.write(F4_KEYR, KEY1)
    rig.write(F4_KEYR, KEY2)


def f4_erase_sector(rig: Rig, snb: int, psize: int = 2) -> int:
    cr = 0x2 | (snb << 3) | (psize << 8)
    rig.write(F4_CR, cr)
    rig.write(F4_CR, cr | (1 << 16))
    return rig.wait_clear(F4_SR, F4_BSY)


def test_f4_identification() -> None:
    rig = connected(F4)
    assert rig.port.idcode == 0x2BA01477
    assert rig.read(0xE0042000) & 0xFFF == 0x413
    assert rig.read(0xE000ED00) == 0x410FC241
    assert rig.read(0x1FFF7A20) >> 16 == 1024  # flash size (KiB) at 0x1FFF7A22


def test_f4_sector_erase_and_programming_by_psize() -> None:
    rig = connected(F4)
    rig.mcu.flash[0x4000:0x8000] = bytes(0x4000)  # sector 1
    rig.mcu.flash[0x0:0x10] = bytes(0x10)  # sector 0 keeps this
    f4_unlock(rig)
    assert f4_erase_sector(rig, 1) & 1  # EOP
    assert rig.mcu.flash[0x4000:0x8000] == b"\xff" * 0x4000
    assert rig.mcu.flash[0x0:0x10] == bytes(0x10)
    rig.write(F4_SR, 0xF3)
    rig.write(F4_CR, 0x1 | (2 << 8))  # PG, x32
    rig.port.write_words(FLASH + 0x4000, [0x1122_3344, 0x5566_7788])
    assert rig.port.read_words(FLASH + 0x4000, 2) == [0x1122_3344, 0x5566_7788]
    assert rig.read(F4_SR) == 1  # EOP only
    half = [(FLASH + 0x4008, 0xAAAA)]
    rig.port.write_polled(half, 2, F4_SR, 0)  # a half-word write while PSIZE is x32
    assert rig.read(F4_SR) & 0x40  # PGPERR
    assert rig.mcu.flash[0x4008:0x400A] == b"\xff\xff"
    rig.write(F4_SR, 0xF3)
    rig.write(F4_CR, 0x1 | (1 << 8))  # x16 now
    rig.port.write_polled(half, 2, F4_SR, 0)
    rig.wait_clear(F4_SR, F4_BSY)
    assert rig.mcu.flash[0x4008:0x400A] == b"\xaa\xaa"


def test_f4_write_without_pg_is_a_sequence_error_and_locked_cr_ignores_writes() -> None:
    rig = connected(F4)
    rig.write(F4_CR, 0x1)
    assert rig.read(F4_CR) == 1 << 31  # LOCK: the write was ignored
    rig.write(FLASH, 0)
    assert rig.read(F4_SR) & 0x80  # PGSERR
    assert rig.read(FLASH) == 0xFFFF_FFFF


def test_f42x_bank_two_sector_numbers_and_mass_erase() -> None:
    rig = connected(F42X)
    start = sum(F42X.sectors[:12])
    rig.mcu.flash[:] = bytes(len(rig.mcu.flash))
    f4_unlock(rig)
    f4_erase_sector(rig, 0x10)  # SNB 0b10000: sector 12, the first of bank 2
    assert rig.mcu.flash[start : start + 16384] == b"\xff" * 16384
    assert rig.mcu.flash[start - 4 : start] == bytes(4)
    rig.write(F4_CR, 0x4 | (1 << 15) | (2 << 8))  # MER | MER1
    rig.write(F4_CR, 0x4 | (1 << 15) | (2 << 8) | (1 << 16))
    rig.wait_clear(F4_SR, F4_BSY)
    assert rig.mcu.flash == b"\xff" * (2 * 1024 * 1024)


def test_f4_rdp_regression_mass_erases() -> None:
    rig = connected(F4, McuFaults(protected=True))
    rig.mcu.flash[:4] = b"\x55" * 4
    assert (rig.read(F4_OPTCR) >> 8) & 0xFF == 0x55
    with pytest.raises(SwdFault):
        rig.port.read_words(FLASH, 2)
    rig.write(F4_OPTKEYR, 0x08192A3B)
    rig.write(F4_OPTKEYR, 0x4C5D6E7F)
    assert not rig.read(F4_OPTCR) & 1  # OPTLOCK clear
    rig.write(F4_OPTCR, 0x0FFFAAEC)
    rig.write(F4_OPTCR, 0x0FFFAAEE)  # OPTSTRT
    rig.wait_clear(F4_SR, F4_BSY)
    assert rig.mcu.flash == b"\xff" * len(rig.mcu.flash) and not rig.mcu.protected
    assert rig.read(FLASH) == 0xFFFF_FFFF


def test_f4_sector_erase_time_follows_size_and_parallelism() -> None:
    rig = connected(F4, timing=Timing("typ"), wait_retries=100_000)
    f4_unlock(rig)
    cr = 0x2 | (0 << 3) | (2 << 8)
    rig.write(F4_CR, cr)
    start = rig.clock.now()
    rig.write(F4_CR, cr | (1 << 16))
    assert rig.mcu.array.busy_until - start == pytest.approx(0.250, abs=1e-4)  # 16 KiB x32
    rig.clock.advance(0.25)
    assert rig.read(F4_SR) == 1
    cr = 0x2 | (5 << 3) | (0 << 8)  # 128 KiB sector at x8
    rig.write(F4_CR, cr)
    start = rig.clock.now()
    rig.write(F4_CR, cr | (1 << 16))
    assert rig.mcu.array.busy_until - start == pytest.approx(2.0, abs=1e-4)


# -- STM32G0/G4/L4 ----------------------------------------------------------------------------

L4 = McuSpec("stm32l4", FLASH, (2048,) * 512, RAM, 96 * 1024, 0x415, core="cortex-m4", banks=2)
G0 = McuSpec("stm32g0", FLASH, (2048,) * 64, RAM, 36 * 1024, 0x460, core="cortex-m0+")
G4 = McuSpec("stm32g4", FLASH, (2048,) * 256, RAM, 128 * 1024, 0x469, core="cortex-m4")
L4_KEYR, L4_OPTKEYR, L4_SR, L4_CR, L4_OPTR = (
    0x40022008, 0x4002200C, 0x40022010, 0x40022014, 0x40022020,
)  # fmt: skip
L4_BSY = 1 << 16


def l4_unlock(rig: Rig) -> None:
    rig.write(L4_KEYR, KEY1)
    rig.write(L4_KEYR, KEY2)


def l4_erase_page(rig: Rig, page: int, bker_bit: int = 11, bank2: bool = False) -> int:
    cr = 0x2 | (page << 3) | ((1 << bker_bit) if bank2 else 0)
    rig.write(L4_CR, cr)
    rig.write(L4_CR, cr | (1 << 16))
    return rig.wait_clear(L4_SR, L4_BSY)


@pytest.mark.parametrize(
    ("spec", "dbgmcu", "cpuid", "idcode"),
    [
        (L4, 0xE0042000, 0x410FC241, 0x2BA01477),
        (G4, 0xE0042000, 0x410FC241, 0x2BA01477),
        (G0, 0x40015800, 0x410CC601, 0x0BC11477),
    ],
)
def test_g0_g4_l4_identification(spec: McuSpec, dbgmcu: int, cpuid: int, idcode: int) -> None:
    rig = connected(spec)
    assert rig.port.idcode == idcode
    assert rig.read(dbgmcu) & 0xFFF == spec.dev_id
    assert rig.read(0xE000ED00) == cpuid
    assert rig.read(0x1FFF75E0) & 0xFFFF == len(spec.sectors) * 2


@pytest.mark.parametrize("spec", [L4, G0, G4])
def test_double_word_programming_and_its_errors(spec: McuSpec) -> None:
    rig = connected(spec)
    l4_unlock(rig)
    rig.write(L4_CR, 1)  # PG
    rig.port.write_words(FLASH + 0x100, [0x1111_1111, 0x2222_2222])
    assert rig.port.read_words(FLASH + 0x100, 2) == [0x1111_1111, 0x2222_2222]
    assert rig.read(L4_SR) == 1  # EOP
    rig.write(L4_SR, 0x3FB)
    rig.port.write_words(FLASH + 0x100, [0x0F0F_0F0F, 0])  # not erased, not zero
    assert rig.read(L4_SR) & 0x8  # PROGERR
    assert rig.read(FLASH + 0x100) == 0x1111_1111
    rig.port.write_words(FLASH + 0x200, [0, 0])
    assert rig.read(L4_SR) & 0x80  # PGSERR: PROGERR still set
    assert rig.read(FLASH + 0x200) == 0xFFFF_FFFF
    rig.write(L4_SR, 0x3FB)
    rig.port.write_polled([(FLASH + 0x200, 0x1234)], 2, L4_SR, 0)  # a half-word
    assert rig.read(L4_SR) & 0x40  # SIZERR
    rig.write(L4_SR, 0x3FB)
    rig.write(FLASH + 0x300, 0)
    rig.write(FLASH + 0x30C, 0)  # the second word in another double word
    assert rig.read(L4_SR) & 0x20  # PGAERR
    rig.write(L4_SR, 0x3FB)
    rig.write(L4_CR, 0)
    rig.write(FLASH + 0x400, 0)
    assert rig.read(L4_SR) & 0x80  # PGSERR: no PG


def test_l4_page_erase_in_bank_two_and_mass_erase() -> None:
    rig = connected(L4)
    rig.mcu.flash[:] = bytes(len(rig.mcu.flash))
    l4_unlock(rig)
    l4_erase_page(rig, 3, bank2=True)
    at = (256 + 3) * 2048
    assert rig.mcu.flash[at : at + 2048] == b"\xff" * 2048
    assert rig.mcu.flash[3 * 2048 : 3 * 2048 + 4] == bytes(4)
    rig.write(L4_CR, 0x4 | (1 << 15))  # MER1 | MER2
    rig.write(L4_CR, 0x4 | (1 << 15) | (1 << 16))
    rig.wait_clear(L4_SR, L4_BSY)
    assert rig.mcu.flash == b"\xff" * len(rig.mcu.flash)


def test_g0_bker_is_bit_13_and_pnb_seven_bits() -> None:
    dual = McuSpec("stm32g0", FLASH, (2048,) * 256, RAM, 144 * 1024, 0x467, "cortex-m0+", 2)
    rig = connected(dual)
    rig.mcu.flash[:] = bytes(len(rig.mcu.flash))
    l4_unlock(rig)
    l4_erase_page(rig, 5, bker_bit=13, bank2=True)
    at = (128 + 5) * 2048
    assert rig.mcu.flash[at : at + 4] == b"\xff" * 4


def test_l4_rdp_regression_at_optstrt_applies_at_obl_launch() -> None:
    rig = connected(L4, McuFaults(protected=True))
    assert rig.read(L4_OPTR) & 0xFF == 0xBB
    rig.mcu.flash[:4] = bytes(4)
    l4_unlock(rig)
    rig.write(L4_OPTKEYR, 0x08192A3B)
    rig.write(L4_OPTKEYR, 0x4C5D6E7F)
    assert not rig.read(L4_CR) & (1 << 30)  # OPTLOCK clear
    rig.write(L4_OPTR, (rig.read(L4_OPTR) & ~0xFF) | 0xAA)
    rig.write(L4_CR, 1 << 17)  # OPTSTRT
    rig.wait_clear(L4_SR, L4_BSY)
    assert rig.mcu.flash[:4] == b"\xff" * 4
    assert rig.mcu.protected  # until the options are loaded
    rig.mcu.set_reset(True)
    rig.mcu.set_reset(False)
    assert rig.mcu.protected  # a system reset does not load them (RM0351 3.4.2)
    l4_unlock(rig)
    rig.write(L4_OPTKEYR, 0x08192A3B)
    rig.write(L4_OPTKEYR, 0x4C5D6E7F)
    rig.port.write_words(L4_CR, [1 << 27])  # OBL_LAUNCH
    assert not rig.mcu.protected and rig.read(FLASH) == 0xFFFF_FFFF


def test_l4_protected_part_refuses_debug_flash_access_and_erases() -> None:
    rig = connected(L4, McuFaults(protected=True))
    with pytest.raises(SwdFault):
        rig.port.read_words(FLASH, 2)
    l4_unlock(rig)
    assert l4_erase_page(rig, 0) & 0x10  # WRPERR


# -- Nordic ---------------------------------------------------------------------------------

NRF52 = McuSpec("nrf52", 0x0, (4096,) * 128, RAM, 64 * 1024, 0x52832, core="cortex-m4")
NRF51 = McuSpec("nrf51", 0x0, (1024,) * 256, RAM, 16 * 1024, 0x0072, core="cortex-m0")
NVMC_READY, NVMC_CONFIG, NVMC_ERASEPAGE, NVMC_ERASEALL = (
    0x4001E400, 0x4001E504, 0x4001E508, 0x4001E50C,
)  # fmt: skip


def nrf_wait(rig: Rig) -> None:
    for _ in range(100_000):
        if rig.read(NVMC_READY) & 1:
            return
    raise AssertionError("NVMC still busy")


def test_nrf52_ficr_identifies_the_part() -> None:
    rig = connected(NRF52)
    assert rig.read(0x10000100) == 0x52832  # INFO.PART
    assert rig.read(0x10000010) == 4096 and rig.read(0x10000014) == 128
    assert rig.read(0x10000110) == 512  # INFO.FLASH KiB
    assert rig.port.ap_read(1, 0xFC) == 0x02880000  # CTRL-AP IDR


def test_nrf51_ficr_configid() -> None:
    rig = connected(NRF51)
    assert rig.port.idcode == 0x0BB11477
    assert rig.read(0x1000005C) & 0xFFFF == 0x0072  # CONFIGID.HWID
    assert rig.read(0x10000010) == 1024


@pytest.mark.parametrize("spec", [NRF51, NRF52])
def test_nvmc_erase_and_word_writes_and_into_erased_flash(spec: McuSpec) -> None:
    rig = connected(spec)
    page = spec.sectors[0]
    rig.mcu.flash[page : 2 * page] = bytes(page)
    rig.write(NVMC_CONFIG, 2)  # EEN
    rig.write(NVMC_ERASEPAGE, page)
    nrf_wait(rig)
    assert rig.mcu.flash[page : 2 * page] == b"\xff" * page
    rig.write(NVMC_CONFIG, 1)  # WEN
    rig.write(page, 0xF0F0_FFFF)
    rig.write(page, 0xFFFF_0F0F)
    assert rig.read(page) == 0xF0F0_0F0F  # bits only go to 0
    rig.write(page + 4, 0x1234)
    rig.write(NVMC_CONFIG, 0)
    rig.write(page + 8, 0)  # writing not enabled: nothing
    assert rig.port.read_words(page, 3) == [0xF0F0_0F0F, 0x1234, 0xFFFF_FFFF]
    rig.write(NVMC_CONFIG, 1)
    with pytest.raises(SwdFault):  # a byte: hard fault; the next AP access sees it
        rig.port.write_polled([(page + 12, 0x55)], 1, NVMC_READY, 0)
    assert rig.mcu.flash[page + 12] == 0xFF


def test_nrf52_approtect_ctrl_ap_erase_all_and_reset() -> None:
    rig = connected(NRF52, McuFaults(protected=True))
    rig.mcu.flash[:4] = bytes(4)
    assert rig.port.ap_read(1, 0x00C) == 0  # APPROTECTSTATUS: protected
    assert not rig.port.ap_read(0, 0x00) & (1 << 6)  # AHB-AP CSW DeviceEn 0
    with pytest.raises(SwdFault):
        rig.port.read_words(RAM, 2)
    rig.port.ap_write(1, 0x004, 1)  # ERASEALL
    for _ in range(1000):
        if rig.port.ap_read(1, 0x008) == 0:
            break
    assert rig.mcu.flash == b"\xff" * len(rig.mcu.flash)
    assert rig.port.ap_read(1, 0x00C) == 0  # still locked until a reset
    rig.port.ap_write(1, 0x000, 1)
    rig.port.ap_write(1, 0x000, 0)
    assert rig.port.ap_read(1, 0x00C) == 1
    assert rig.read(0x10000100) == 0x52832


def test_nrf52_approtect_written_to_uicr_takes_effect_at_reset() -> None:
    rig = connected(NRF52)
    rig.write(NVMC_CONFIG, 1)
    rig.write(0x10001208, 0xFFFF_FF00)  # UICR.APPROTECT = enabled
    assert not rig.mcu.protected
    rig.mcu.set_reset(True)
    rig.mcu.set_reset(False)
    assert rig.mcu.protected and rig.port.ap_read(1, 0x00C) == 0


def test_nrf51_pall_blocks_code_reads_but_erase_all_through_nvmc_clears_it() -> None:
    rig = connected(NRF51, McuFaults(protected=True))
    rig.mcu.flash[:4] = bytes(4)
    with pytest.raises(SwdFault):
        rig.port.read_words(0x0, 2)
    rig.write(RAM, 0x1234)  # RAM stays reachable
    assert rig.read(RAM) == 0x1234
    rig.write(NVMC_CONFIG, 2)
    rig.write(NVMC_ERASEALL, 1)
    nrf_wait(rig)
    assert rig.read(0x10001004) == 0xFFFF_FFFF  # RBPCONF erased
    rig.mcu.set_reset(True)
    rig.mcu.set_reset(False)
    assert not rig.mcu.protected and rig.read(0x0) == 0xFFFF_FFFF


def test_nvmc_ready_low_and_flash_reads_stall_during_an_erase() -> None:
    rig = connected(NRF52, timing=Timing("typ"), wait_retries=100_000)
    rig.write(NVMC_CONFIG, 2)
    start = rig.clock.now()
    rig.write(NVMC_ERASEPAGE, 0x1000)
    assert rig.read(NVMC_READY) == 0
    waits = rig.mcu.wait_acks
    rig.read(0x1000)
    assert rig.mcu.wait_acks > waits
    assert rig.clock.now() - start == pytest.approx(0.085, abs=1e-3)  # tERASEPAGE


def test_f1_a_write_while_programming_stalls_until_the_first_ends() -> None:
    rig = connected(timing=Timing("typ"), wait_retries=100_000)
    f1_unlock(rig)
    rig.write(F1_CR, 1)
    start, waits = rig.clock.now(), rig.mcu.wait_acks
    rig.port.link.transfer(  # CSW half-word + increment, TAR, two DRW writes back to back
        [
            Access(True, False, 0x0, 0x2300_0011),
            Access(True, False, 0x4, FLASH),
            Access(True, False, 0xC, 0x1111),
            Access(True, False, 0xC, 0x2222 << 16),
            Access(False, True, 0xC),
        ]
    )
    assert rig.mcu.wait_acks > waits  # the second half-word waited on the bus
    assert rig.clock.now() - start >= 0.0525e-3  # DS5319 tprog typ
    assert rig.mcu.flash[0:4] == bytes.fromhex("11112222")


def test_f0_rdp_level_2_turns_the_debug_port_off_for_good() -> None:
    rig = connected(F0)
    f1_unlock(rig)
    rig.write(F1_OPTKEYR, KEY1)
    rig.write(F1_OPTKEYR, KEY2)
    rig.write(F1_CR, 0x260)  # OPTER | STRT
    rig.wait_clear(F1_SR, 1)
    rig.write(F1_CR, 0x210)  # OPTPG
    rig.port.write_polled([(0x1FFFF800, 0x00CC)], 2, F1_SR, 1)
    with pytest.raises(SwdError, match="no acknowledge"):
        rig.port.write_words(F1_CR, [0x2200])  # OBL_LAUNCH: level 2 from now on
    rig.mcu.power_cycle()
    with pytest.raises(SwdError, match="no acknowledge"):
        rig.port.connect(under_reset=True)


def test_a_ctrl_stat_read_while_a_write_is_held_cancels_it_with_wdataerr() -> None:
    """The AP holds a write the flash stalls; a CTRL/STAT read may not be answered WAIT,
    so it cancels the write and sets WDATAERR (bit 7; Arm KA16363); AP accesses FAULT
    until ABORT.WDERRCLR (bit 3)."""
    rig = connected(timing=Timing("typ"), wait_retries=100_000)
    f1_unlock(rig)
    rig.write(F1_CR, 1)
    status, *_ = rig.port.link.transfer(
        [
            Access(True, False, 0x0, 0x2300_0011),
            Access(True, False, 0x4, FLASH),
            Access(True, False, 0xC, 0x1111),  # programs
            Access(True, False, 0xC, 0x2222 << 16),  # held: the flash is busy
            Access(False, True, 0x4),  # CTRL/STAT
        ]
    )
    assert status & (1 << 7)
    with pytest.raises(SwdFault):
        rig.read(RAM)
    rig.port.link.transfer([Access(False, False, 0x0, 1 << 3)])  # ABORT WDERRCLR
    assert rig.read(FLASH) == 0xFFFF_1111  # the held half-word was never written


# -- the MEM-AP as OpenOCD uses it ----------------------------------------------------


def test_banked_data_registers_reach_tars_16_byte_block_and_leave_tar_alone() -> None:
    """BDn (AP 0x10 + 4n) is the word at TAR[31:4] + 4n, without auto-increment (ADIv5
    7.2.2; DDI 0314H 2.8.7). OpenOCD reads the debug registers and the CoreSight IDs
    through them: without them it could not halt the core or read a component ID."""
    rig = connected()
    rig.write(DEMCR, 0x0100_0001)
    dhcsr, dcrdr, demcr, tar, *cidr = rig.port.link.transfer(
        [
            Access(False, False, 0x8, 0x00),  # SELECT AP 0, bank 0
            Access(True, False, 0x0, 0x2300_0012),  # CSW word, increment single
            Access(True, False, 0x4, DCRDR),  # TAR: DCRDR, in DHCSR's 16-byte block
            Access(False, False, 0x8, 0x10),  # bank 1: BD0-BD3
            Access(True, False, 0x8, 0xFEED_C0DE),  # BD2 write: DCRDR
            Access(True, True, 0x0),  # BD0: DHCSR
            Access(True, True, 0x8),  # BD2: DCRDR
            Access(True, True, 0xC),  # BD3: DEMCR
            Access(False, False, 0x8, 0x00),
            Access(True, True, 0x4),  # TAR: where it was
            Access(True, False, 0x4, 0xE000_EFF4),  # the SCS's CIDR0-3 (0xFF0-0xFFC)
            Access(False, False, 0x8, 0x10),
            *(Access(True, True, 4 * n) for n in range(4)),
            Access(False, False, 0x8, 0x00),
        ]
    )
    assert dhcsr & S_REGRDY and dcrdr == 0xFEED_C0DE and demcr == 0x0100_0001
    assert tar == DCRDR
    assert cidr == [0x0D, 0xE0, 0x05, 0xB1]  # ADIv5.2 D1.2: preamble, class 0xE


@pytest.mark.parametrize(
    ("spec", "wrap"), [(F1, 0x1000), (F4, 0x1000), (F0, 0x400)], ids=["m3", "m4", "m0"]
)
def test_tar_auto_increment_wraps_at_4_kib_on_m3_m4_and_1_kib_on_m0(spec, wrap) -> None:
    """ADIv5 guarantees TAR[9:0]; the Cortex-M3/M4 AHB-AP increments across 4 KiB
    (OpenOCD's cortex_m.c reads 4 KiB blocks with one TAR write on them), an M0 wraps
    at 1 KiB."""
    rig = connected(spec)
    rig.port.write_words(RAM, [0xAAAA_AAAA])
    rig.port.write_words(RAM + 0x3FC, [0x1111_1111, 0x2222_2222])  # split at 1 KiB
    first, second, tar = rig.port.link.transfer(
        [
            Access(False, False, 0x8, 0x00),
            Access(True, False, 0x0, 0x2300_0012),
            Access(True, False, 0x4, RAM + 0x3FC),
            Access(True, True, 0xC),
            Access(True, True, 0xC),
            Access(True, True, 0x4),
        ]
    )
    assert first == 0x1111_1111
    if wrap == 0x1000:
        assert (second, tar) == (0x2222_2222, RAM + 0x404)
    else:
        assert (second, tar) == (0xAAAA_AAAA, RAM + 0x004)
