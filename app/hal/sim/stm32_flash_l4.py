"""The STM32G0/G4/L4 flash interface: double-word programming, pages, OPTR and
readout protection.

Sources: RM0351 (STM32L4x5/x6) 3.3-3.7; RM0444 (STM32G0x0/x1) 3.3-3.7; RM0440
(STM32G4) 3.3-3.7. Register block at 0x40022000:

- KEYR 0x08 (0x45670123, 0xCDEF89AB), OPTKEYR 0x0C (0x08192A3B, 0x4C5D6E7F, with CR.LOCK
  clear); a wrong key is a bus error and the lock stays until the next reset.
- SR 0x10: EOP 0, OPERR 1, PROGERR 3, WRPERR 4, PGAERR 5, SIZERR 6, PGSERR 7, MISERR 8,
  FASTERR 9, OPTVERR 15 (cleared by writing 1), BSY 16.
- CR 0x14: PG 0, PER 1, MER1 2, PNB from bit 3 (L4 8 bits, G0/G4 7 bits), BKER (L4/G4
  bit 11, G0 bit 13), MER2 15, STRT 16, OPTSTRT 17, FSTPG 18, OBL_LAUNCH 27 (reload the
  option bytes: a system reset), OPTLOCK 30, LOCK 31.
- OPTR 0x20: RDP 7:0 (0xAA level 0, 0xCC level 2, else level 1) and the user options;
  written while OPTLOCK is clear, stored by OPTSTRT, loaded at power-on and OBL_LAUNCH
  only (RM0351 3.4.2). Leaving level 1 for level 0 mass-erases the flash when OPTSTRT
  stores it (RM0351 3.5.1).

Programming (RM0351 3.3.7, RM0444 3.3.7): with PG set, two 32-bit writes to one
aligned double word start the programming. A byte or half-word write sets SIZERR; a
write to another double word before the second word sets PGAERR; a write without PG,
or while any of PROGERR, SIZERR, PGAERR, MISERR, FASTERR is still set, sets PGSERR; a
double word that is not all ones is programmed only with zeros, else PROGERR. None of
these programs anything. Fast programming (FSTPG, and so MISERR/FASTERR) is not
modelled. At RDP level 1 a debugger's flash reads and writes are bus errors and erases
set WRPERR (RM0351 3.5.1 table 19).

Pages: PNB selects the page within the bank BKER picks (``banks`` from McuSpec; one
bank unless the part is dual-bank).

Timing ("Flash memory characteristics" of the datasheets): L4 DS10198 (STM32L476)
table 50: 64-bit programming 81.69 typ / 90.76 max us, 2 KiB page erase 22.02 / 24.47
ms, mass erase 22.13 / 25 ms; G4 DS12288 (STM32G474) table 58: the same figures; G0
DS12232 (STM32G071) table 50: 85 / 125 us, 22.02 / 40 ms, 22.13 / 40.1 ms.
"""

from __future__ import annotations

from collections.abc import Callable

from app.hal.sim.flash_array import FlashArray
from app.hal.sim.mcu_memory import BusFault, Region, Registers
from app.hal.sim.stm32_keys import FLASH_KEYS, OPTION_KEYS, KeyLock, RdpLevels

FLASH_REGS = 0x40022000
EOP, OPERR, PROGERR, WRPERR, PGAERR, SIZERR, PGSERR, MISERR, FASTERR = (
    1, 2, 8, 16, 32, 64, 128, 256, 512,
)  # fmt: skip
OPTVERR, BSY = 1 << 15, 1 << 16
PROGRAMMING_ERRORS = PROGERR | SIZERR | PGAERR | MISERR | FASTERR
PG, PER, MER1, MER2, STRT, OPTSTRT = 1, 2, 4, 1 << 15, 1 << 16, 1 << 17
OBL_LAUNCH, OPTLOCK, LOCK = 1 << 27, 1 << 30, 1 << 31
#: family: (PNB width, BKER bit, OPTR reset value, (program, page, mass) (typ, max) ms)
FAMILY = {
    "stm32l4": (8, 11, 0xFFEFF8AA, ((0.08169, 0.09076), (22.02, 24.47), (22.13, 25.0))),
    "stm32g4": (7, 11, 0xFFEFF8AA, ((0.08169, 0.09076), (22.02, 24.47), (22.13, 25.0))),
    "stm32g0": (7, 13, 0xFFFFFEAA, ((0.085, 0.125), (22.02, 40.0), (22.13, 40.1))),
}


class Stm32FlashL4(RdpLevels):
    def __init__(
        self,
        kind: str,
        array: FlashArray,
        *,
        banks: int,
        protected: bool,
        program_error_address: int | None,
        system_reset: Callable[[], None],
    ) -> None:
        self.kind = kind
        self.array = array
        self.banks = banks
        self.program_error_address = program_error_address
        self.system_reset_request = system_reset
        pnb_bits, self._bker_bit, optr, timing = FAMILY[kind]
        self._pnb_mask = (1 << pnb_bits) - 1
        self._program_ms, self._page_ms, self._mass_ms = timing
        self.optr_stored = (optr & ~0xFF) | (0xBB if protected else 0xAA)
        self.power_on()

    def power_on(self) -> None:
        self.load_options()
        self.system_reset()

    def load_options(self) -> None:
        self.optr_loaded = self.optr_stored

    def system_reset(self) -> None:
        self.keys = KeyLock("FLASH_KEYR", FLASH_KEYS, lockout=True)
        self.option_keys = KeyLock("FLASH_OPTKEYR", OPTION_KEYS, lockout=True)
        self.cr = LOCK | OPTLOCK
        self.optr = self.optr_loaded
        self.errors = 0
        self._pending = False
        self._half: tuple[int, int] | None = None  # (offset, value) of a first word

    @property
    def rdp_level(self) -> int:
        return {0xAA: 0, 0xCC: 2}.get(self.optr_loaded & 0xFF, 1)

    @property
    def option_bytes(self) -> bytes:
        return self.optr_stored.to_bytes(4, "little")

    def regions(self) -> list[Region]:
        regs = Registers(FLASH_REGS, 0x400, "FLASH")
        regs.add(0x08, lambda: 0, self._write_keyr)
        regs.add(0x0C, lambda: 0, self._write_optkeyr)
        regs.add(0x10, self._sr, self._write_sr)
        regs.add(0x14, self._cr, self._write_cr)
        regs.add(0x20, lambda: self.optr, self._write_optr)
        return [regs]

    # -- status and control ---------------------------------------------------------

    def _settle(self) -> None:
        if self._pending and not self.array.busy():
            self._pending = False
            self.errors |= EOP

    def _sr(self) -> int:
        self._settle()
        return self.errors | (BSY if self.array.busy() else 0)

    def _write_sr(self, value: int) -> None:
        self._settle()
        self.errors &= ~(value & (0x3FB | OPTVERR))

    def _cr(self) -> int:
        self._settle()
        locks = (LOCK if self.keys.locked else 0) | (OPTLOCK if self.option_keys.locked else 0)
        return (self.cr & ~(LOCK | OPTLOCK)) | locks

    def _write_keyr(self, value: int) -> None:
        self.keys.write(value)

    def _write_optkeyr(self, value: int) -> None:
        if not self.keys.locked:
            self.option_keys.write(value)

    def _write_cr(self, value: int) -> None:
        self._settle()
        if self.keys.locked:
            return
        self.cr = value & ~(STRT | OPTSTRT | OBL_LAUNCH)
        if value & OPTLOCK:
            self.option_keys.lock()
        if value & LOCK:
            self.keys.lock()
            self.option_keys.lock()
        if not self.cr & PG:
            self._half = None
        if value & STRT and not self.array.busy():
            self._erase()
        if value & OPTSTRT and not self.option_keys.locked and not self.array.busy():
            self._store_options()
        if value & OBL_LAUNCH and not self.option_keys.locked:
            self.load_options()
            self.system_reset_request()

    def _erase(self) -> None:
        if self.read_protected:
            self.errors |= WRPERR
            return
        pages = len(self.array.sectors)
        per_bank = pages // self.banks
        if self.cr & (MER1 | MER2):
            chosen = [bool(self.cr & MER1), bool(self.cr & MER2)][: self.banks]
            for bank, erase in enumerate(chosen):
                if erase:
                    self.array.erase(bank * per_bank, per_bank)
            self._begin(self._mass_ms)
        elif self.cr & PER:
            pnb = (self.cr >> 3) & self._pnb_mask
            bank = 1 if self.banks > 1 and self.cr >> self._bker_bit & 1 else 0
            page = bank * per_bank + pnb % per_bank if self.banks > 1 else pnb
            if page >= pages:
                self.errors |= PGSERR
                return
            self.array.erase(page)
            self._begin(self._page_ms)

    def _begin(self, figures: tuple[float, float]) -> None:
        self.array.start(*figures)
        self._pending = True

    def _write_optr(self, value: int) -> None:
        if not self.keys.locked and not self.option_keys.locked:
            self.optr = value

    def _store_options(self) -> None:
        if self.rdp_level == 1 and self.optr & 0xFF == 0xAA:
            self.array.erase_all()  # RM0351 3.5.1: level 1 -> 0 mass-erases
            figures = self._mass_ms
        else:
            figures = self._page_ms
        self.optr_stored = self.optr
        self._begin(figures)

    # -- programming ------------------------------------------------------------------

    def write_flash(self, offset: int, value: int, size: int) -> None:
        if self.read_protected:
            raise BusFault(f"flash write at 0x{self.array.base + offset:08X}: readout protection")
        if self.keys.locked or not self.cr & PG or self.errors & PROGRAMMING_ERRORS:
            self.errors |= PGSERR
            self._half = None
            return
        if size != 4:
            self.errors |= SIZERR
            self._half = None
            return
        if self._half is None:
            self._half = (offset, value)
            return
        first, first_value = self._half
        self._half = None
        if first & ~7 != offset & ~7 or first == offset:
            self.errors |= PGAERR
            return
        start = offset & ~7
        low, high = (first_value, value) if first < offset else (value, first_value)
        double = low | (high << 32)
        address = self.array.base + start
        target = self.program_error_address
        hit = target is not None and address <= target < address + 8
        if hit or (double != 0 and not self.array.is_erased(start, 8)):
            self.errors |= PROGERR
            return
        self.array.program(start, double, 8)
        self._begin(self._program_ms)
