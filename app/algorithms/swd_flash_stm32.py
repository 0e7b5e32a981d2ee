"""STM32 flash controllers programmed through the debug port, from ST's reference
manuals: the F0/F1/F3 controller (RM0091 ch. 3, RM0008 ch. 3 with PM0075, RM0316
ch. 4: half-word programming, pages), the F2/F4 one (RM0033 ch. 2, RM0090 ch. 3:
sectors, program size PSIZE) and the G0/G4/L4 one (RM0444 ch. 3, RM0440 ch. 3,
RM0351 ch. 3: double-word programming, pages).

The three share their shape (a key sequence on KEYR, CR selecting an operation that
STRT starts, BSY and error flags in SR) and differ in addresses and bits, which each
subclass gives. Every operation starts with the error flags cleared and ends with them
read: a flag set names the operation and the address. Programming writes each unit and
reads it back in one batch (FlashController.write_units).
"""

from __future__ import annotations

from typing import ClassVar

from app.algorithms.base import ChipError, Protection
from app.algorithms.flash_loader import LoaderSpec
from app.algorithms.swd_flash import FlashController, FlashTimes, controller
from app.devicedb.facts import Timing

KEY1, KEY2 = 0x4567_0123, 0xCDEF_89AB
OPTKEY1, OPTKEY2 = 0x0819_2A3B, 0x4C5D_6E7F  # F2/F4 and G0/G4/L4
RDP_LEVEL0_F1 = 0xA5  # RM0008 2.5: RDP = 0xA5 unprotects
RDP_LEVEL0 = 0xAA  # F0/F3, F2/F4, G0/G4/L4
#: 96-bit unique device ID (each RM's "Device electronic signature" chapter)
UID_ADDRESS = {
    "stm32f0": 0x1FFF_F7AC,
    "stm32f1": 0x1FFF_F7E8,
    "stm32f3": 0x1FFF_F7AC,
    "stm32f2": 0x1FFF_7A10,
    "stm32f4": 0x1FFF_7A10,
    "stm32g0": 0x1FFF_7590,
    "stm32g4": 0x1FFF_7590,
    "stm32l4": 0x1FFF_7590,
}


#: series -> (RCC word and bit enabling DBGMCU's clock or None, DBGMCU freeze register,
#: its IWDG and WWDG stop bits): a halted core must not be reset by a watchdog the
#: firmware (or the hardware-watchdog option) started. RM0091 40.4.4 / 7.4.7,
#: RM0008 31.16.3, RM0316 33.16.4, RM0033 32.16.4, RM0090 38.16.4, RM0444 40.4.4 /
#: 5.4.15, RM0440 46.16.4, RM0351 48.16.4 (as OpenOCD's stm32 target scripts set them).
WATCHDOG_FREEZE: dict[str, tuple[tuple[int, int] | None, int, int]] = {
    "stm32f0": ((0x4002_1018, 1 << 22), 0x4001_5808, (1 << 12) | (1 << 11)),
    "stm32f1": (None, 0xE004_2004, (1 << 8) | (1 << 9)),
    "stm32f3": (None, 0xE004_2008, (1 << 12) | (1 << 11)),
    "stm32f2": (None, 0xE004_2008, (1 << 12) | (1 << 11)),
    "stm32f4": (None, 0xE004_2008, (1 << 12) | (1 << 11)),
    "stm32g0": ((0x4002_103C, 1 << 27), 0x4001_5808, (1 << 12) | (1 << 11)),
    "stm32g4": (None, 0xE004_2008, (1 << 12) | (1 << 11)),
    "stm32l4": (None, 0xE004_2008, (1 << 12) | (1 << 11)),
}


def _errors(value: int, names: dict[int, str]) -> str:
    return ", ".join(name for bit, name in names.items() if value & bit)


def _rdp_state(rdp: int) -> Protection:
    """Protection from an RDP byte where 0xAA is level 0 and 0xCC level 2."""
    if rdp == RDP_LEVEL0:
        return Protection(False, "readout protection off")
    level = 2 if rdp == 0xCC else 1
    return Protection(
        True,
        f"readout protection level {level} (RDP 0x{rdp:02X}); removing it mass-erases the flash",
        readable=False,
    )


class Stm32Controller(FlashController):
    KEYR: ClassVar[int]
    OPTKEYR: ClassVar[int]
    SR: ClassVar[int]
    CR: ClassVar[int]
    BSY: ClassVar[int]
    EOP: ClassVar[int]
    STRT: ClassVar[int]
    LOCK: ClassVar[int]
    #: CR while units are programmed
    PROGRAM_CR: ClassVar[int]
    OPTION_KEYS: ClassVar[tuple[int, int]] = (OPTKEY1, OPTKEY2)  # F2/F4 and G0/G4/L4
    ERRORS: ClassVar[dict[int, str]]

    @property
    def error_mask(self) -> int:
        return sum(self.ERRORS)

    def unique_id(self) -> bytes | None:
        words = self.port.read_words(UID_ADDRESS[self.facts.series], 3)
        return b"".join(word.to_bytes(4, "little") for word in words)

    def prepare_halted(self) -> None:
        """Stop the independent and window watchdogs while the core is halted."""
        clock, freeze, bits = WATCHDOG_FREEZE[self.facts.series]
        if clock is not None:
            address, bit = clock
            self.write(address, self.read(address) | bit)
        self.write(freeze, self.read(freeze) | bits)

    def unlock(self) -> None:
        if self.read(self.CR) & self.LOCK:
            self.write(self.KEYR, KEY1)
            self.write(self.KEYR, KEY2)
            if self.read(self.CR) & self.LOCK:
                raise ChipError("the flash controller stays locked after its key sequence")
        self.write(self.SR, self.EOP | self.error_mask)

    def lock(self) -> None:
        self.write(self.CR, self.LOCK)

    def check(self, status: int, what: str, address: int | None = None) -> None:
        if status & self.error_mask:
            self.write(self.SR, self.error_mask)
            raise ChipError(f"{what} failed: {_errors(status, self.ERRORS)}", address)

    def select(self, cr: int, address: int | None) -> None:
        """Set CR for the operation (F0/F1/F3 also take its address in AR)."""
        self.write(self.CR, cr)

    def run(
        self, cr: int, what: str, timing: Timing, address: int | None = None, after: int = 0
    ) -> int:
        """Select the operation ``cr``, start it, wait for BSY to clear, leave CR at
        ``after``, check the error flags; SR at the end."""
        self.select(cr, address)
        self.write(self.CR, cr | self.STRT)
        status = self.wait(self.SR, self.BSY, 0, timing.ms_typ / 1000, self.timeout(timing))
        self.write(self.CR, after)
        self.check(status, what, address)
        return status

    def loader_spec(self) -> LoaderSpec:
        size = min(self.unit, 4)
        return LoaderSpec(self.unit // size, size, self.SR, self.BSY, False, self.error_mask)

    def program(self, address: int, data: bytes) -> None:
        self.write(self.CR, self.PROGRAM_CR)
        bad = self.program_units(address, data)
        self.write(self.CR, 0)
        status = self.read(self.SR)
        if bad is not None or status & self.error_mask:
            self.write(self.SR, self.error_mask)
            raise self.bad_unit(bad or (address, 0, 0), _errors(status, self.ERRORS))

    def option_unlock(self, locked: bool) -> None:
        """The option key sequence, where the option bytes are locked."""
        if locked:
            for key in self.OPTION_KEYS:
                self.write(self.OPTKEYR, key)


# -- F0 / F1 / F3 ----------------------------------------------------------------------


@controller
class Stm32F1Flash(Stm32Controller):
    """FLASH at 0x40022000 (RM0008 3.4): KEYR 0x04, OPTKEYR 0x08, SR 0x0C, CR 0x10,
    AR 0x14, OBR 0x1C; option bytes at 0x1FFFF800."""

    kind = "stm32f1"
    unit = 2
    # STM32F103 datasheet (DS5319) table "Flash memory characteristics"; the F0/F3
    # datasheets give the same page and mass erase times and tPROG <= 70 us
    times = FlashTimes(
        program=Timing(0.0525, 0.070),
        erase=lambda size: Timing(20.0, 40.0),
        mass_erase=lambda size: Timing(20.0, 40.0),
    )
    BASE = 0x4002_2000
    KEYR, OPTKEYR, SR, CR = BASE + 0x04, BASE + 0x08, BASE + 0x0C, BASE + 0x10
    AR, OBR = BASE + 0x14, BASE + 0x1C
    BSY, PGERR, WRPRTERR, EOP = 1 << 0, 1 << 2, 1 << 4, 1 << 5
    PG, PER, MER, OPTPG, OPTER, STRT, LOCK, OPTWRE = 1, 2, 4, 16, 32, 64, 128, 512
    PROGRAM_CR = PG
    OPTION_KEYS = (KEY1, KEY2)  # PM0075 2.4: OPTKEYR takes the flash keys
    OBL_LAUNCH = 1 << 13  # F0/F3 only
    RDPRT = 1 << 1  # OBR: readout protection active (F0/F3: level bits 2:1)
    OPTION_RDP = 0x1FFF_F800
    ERRORS: ClassVar[dict[int, str]] = {
        PGERR: "PGERR (not erased or bad alignment)",
        WRPRTERR: "WRPRTERR (write-protected)",
    }

    def select(self, cr: int, address: int | None) -> None:
        self.write(self.CR, cr)
        if address is not None:
            self.write(self.AR, address)

    def erase_sector(self, number: int) -> None:
        address = self.sector_address(number)
        self.run(self.PER, f"page erase at 0x{address:08X}", self.sector_timing(number), address)

    def mass_erase(self) -> None:
        self.run(self.MER, "mass erase", self.times.mass_erase(self.layout.size))

    # -- readout protection (RM0008 2.5, PM0075 2.4; RM0091 3.3.1) ------------------------

    def protection(self) -> Protection:
        if self.read(self.OBR) & self.RDPRT:
            return Protection(
                True,
                "readout protection (RDP) is active: the debugger cannot read the flash;"
                " removing it mass-erases the flash",
                readable=False,
            )
        return Protection(False, "readout protection off")

    def set_protection(self, on: bool) -> bool:
        """Erase the option bytes (RDP reads 0xFF: level 1) and, to clear protection,
        program RDP back to its level-0 value; the part mass-erases its flash when
        protection goes. OPTWRE must stay set from the option erase to the RDP write
        (writing CR without it clears it). Reloaded by a system reset (F1) or
        OBL_LAUNCH (F0/F3)."""
        self.unlock()
        self.option_unlock(not self.read(self.CR) & self.OPTWRE)
        timing = self.times.mass_erase(self.layout.size)
        self.run(self.OPTER | self.OPTWRE, "option byte erase", timing, after=self.OPTWRE)
        if not on:
            level0 = RDP_LEVEL0_F1 if self.facts.series == "stm32f1" else RDP_LEVEL0
            self.write(self.CR, self.OPTPG | self.OPTWRE)
            self.port.write_polled([(self.OPTION_RDP, level0)], 2, self.SR, self.BSY)
            status = self.read(self.SR)
            self.write(self.CR, 0)
            self.check(status, "programming the RDP option byte")
        if self.facts.series == "stm32f1":
            return False  # the caller's system reset reloads the option bytes
        self.write(self.CR, self.OBL_LAUNCH)  # reloads the option bytes and resets the part
        return True


# -- F2 / F4 ---------------------------------------------------------------------------


def _f4_erase(size: int) -> Timing:
    """Sector erase at x32 (STM32F405 datasheet DS8626, table 43): 16 KiB 400/800 ms,
    64 KiB 1200/2400 ms, 128 KiB 2000/4000 ms."""
    known = {16384: 400.0, 32768: 700.0, 65536: 1200.0, 131072: 2000.0}
    typ = known.get(size, 2000.0 * size / 131072)
    return Timing(typ, 2 * typ)


@controller
class Stm32F4Flash(Stm32Controller):
    """FLASH at 0x40023C00 (RM0090 3.9): KEYR 0x04, OPTKEYR 0x08, SR 0x0C, CR 0x10,
    OPTCR 0x14. Programs words (PSIZE x32: a supply of 2.7-3.6 V, as most boards)."""

    kind = "stm32f4"
    unit = 4
    times = FlashTimes(
        program=Timing(0.016, 0.100),
        erase=_f4_erase,
        mass_erase=lambda size: Timing(8000.0 * size / 1048576, 16000.0 * size / 1048576),
    )
    BASE = 0x4002_3C00
    KEYR, OPTKEYR, SR, CR, OPTCR = BASE + 0x04, BASE + 0x08, BASE + 0x0C, BASE + 0x10, BASE + 0x14
    EOP, BSY = 1, 1 << 16
    ERRORS: ClassVar[dict[int, str]] = {
        1 << 1: "OPERR",
        1 << 4: "WRPERR (write-protected)",
        1 << 5: "PGAERR (alignment)",
        1 << 6: "PGPERR (parallelism)",
        1 << 7: "PGSERR (sequence)",
    }
    PG, SER, MER, STRT, LOCK = 1, 2, 4, 1 << 16, 1 << 31
    MER1 = 1 << 15  # the second bank's mass erase (F42x/F43x, F469/F479)
    PSIZE_X32 = 2 << 8
    PROGRAM_CR = PG | PSIZE_X32
    OPTLOCK, OPTSTRT = 1, 2

    def _snb(self, number: int) -> int:
        """Sector number as CR.SNB takes it: on the dual-bank parts (24 sectors) bank
        2's sectors are 0b1_0000 + n (RM0090 3.9.8)."""
        if len(self.layout.sectors) == 24 and number >= 12:
            return 0x10 | (number - 12)
        return number

    def erase_sector(self, number: int) -> None:
        address = self.sector_address(number)
        cr = self.SER | (self._snb(number) << 3) | self.PSIZE_X32
        what = f"sector {number} erase at 0x{address:08X}"
        self.run(cr, what, self.sector_timing(number), address)

    def mass_erase(self) -> None:
        cr = self.MER | self.PSIZE_X32
        if len(self.layout.sectors) == 24:
            cr |= self.MER1
        self.run(cr, "mass erase", self.times.mass_erase(self.layout.size))

    # -- readout protection (RM0090 3.7.3, 3.9.10 FLASH_OPTCR) ------------------------------

    def protection(self) -> Protection:
        return _rdp_state((self.read(self.OPTCR) >> 8) & 0xFF)

    def set_protection(self, on: bool) -> bool:
        """OPTCR's RDP byte and OPTSTRT; going to level 0 mass-erases (BSY until done)."""
        self.unlock()
        self.option_unlock(bool(self.read(self.OPTCR) & self.OPTLOCK))
        optcr = self.read(self.OPTCR) & ~0xFF00 & ~self.OPTSTRT
        rdp = RDP_LEVEL0 if not on else 0x55  # anything but 0xAA/0xCC: level 1
        self.write(self.OPTCR, optcr | (rdp << 8))
        self.write(self.OPTCR, optcr | (rdp << 8) | self.OPTSTRT)
        timing = self.times.mass_erase(self.layout.size)
        status = self.wait(self.SR, self.BSY, 0, timing.ms_typ / 1000, self.timeout(timing))
        self.write(self.OPTCR, self.read(self.OPTCR) | self.OPTLOCK)
        self.check(status, "option byte programming")
        return False


# -- G0 / G4 / L4 ----------------------------------------------------------------------


@controller
class Stm32L4Flash(Stm32Controller):
    """FLASH at 0x40022000 (RM0351 3.7, RM0444 3.7, RM0440 3.7): KEYR 0x08,
    OPTKEYR 0x0C, SR 0x10, CR 0x14, OPTR 0x20. Programs double-words: two word writes,
    the first at an 8-byte boundary."""

    kind = "stm32l4"
    unit = 8
    # STM32L476 datasheet (DS10198) and STM32G071 datasheet (DS12232), flash tables
    times = FlashTimes(
        program=Timing(0.085, 0.125),
        erase=lambda size: Timing(22.0, 40.0),
        mass_erase=lambda size: Timing(22.1, 40.0),
    )
    BASE = 0x4002_2000
    KEYR, OPTKEYR, SR, CR, OPTR = BASE + 0x08, BASE + 0x0C, BASE + 0x10, BASE + 0x14, BASE + 0x20
    EOP, BSY = 1, 1 << 16
    ERRORS: ClassVar[dict[int, str]] = {
        1 << 1: "OPERR",
        1 << 3: "PROGERR (not erased)",
        1 << 4: "WRPERR (write-protected)",
        1 << 5: "PGAERR (alignment)",
        1 << 6: "SIZERR (size)",
        1 << 7: "PGSERR (sequence)",
        1 << 8: "MISSERR (second word missing)",
        1 << 9: "FASTERR",
        1 << 14: "RDERR (PCROP read)",
        1 << 15: "OPTVERR (option validity)",
    }
    PG, PER, MER1, STRT, OPTSTRT = 1, 2, 4, 1 << 16, 1 << 17
    PROGRAM_CR = PG
    OBL_LAUNCH, OPTLOCK, LOCK = 1 << 27, 1 << 30, 1 << 31

    MER2 = 1 << 15
    #: BKER, the bank a page erase is in: bit 11 on L4 and G4, 13 on G0 (RM0444 3.7.5)
    BKER_BIT: ClassVar[dict[str, int]] = {"stm32g0": 13}

    def erase_sector(self, number: int) -> None:
        """PER with the page's number within its bank (PNB) and, on dual-bank parts,
        the bank (BKER): RM0351 3.3.6, RM0440 3.3.7."""
        address = self.sector_address(number)
        per_bank = len(self.layout.sectors) // self.facts.banks
        bank, page = divmod(number, per_bank)
        cr = self.PER | (page << 3) | (bank << self.BKER_BIT.get(self.facts.series, 11))
        self.run(cr, f"page {number} erase at 0x{address:08X}", self.sector_timing(number), address)

    def mass_erase(self) -> None:
        cr = self.MER1 | (self.MER2 if self.facts.banks == 2 else 0)
        self.run(cr, "mass erase", self.times.mass_erase(self.layout.size))

    # -- readout protection (RM0351 3.5.1, 3.7.8 FLASH_OPTR) -------------------------------

    def protection(self) -> Protection:
        return _rdp_state(self.read(self.OPTR) & 0xFF)

    def set_protection(self, on: bool) -> bool:
        """Write OPTR's RDP, OPTSTRT, then OBL_LAUNCH: the part reloads its option
        bytes (mass-erasing when protection goes) and resets."""
        self.unlock()
        self.option_unlock(bool(self.read(self.CR) & self.OPTLOCK))
        rdp = RDP_LEVEL0 if not on else 0xBB
        self.write(self.OPTR, (self.read(self.OPTR) & ~0xFF) | rdp)
        self.write(self.CR, self.OPTSTRT)
        timing = self.times.mass_erase(self.layout.size)
        status = self.wait(self.SR, self.BSY, 0, timing.ms_typ / 1000, self.timeout(timing))
        self.check(status, "option byte programming")
        self.write(self.CR, self.OBL_LAUNCH)
        return True
