"""The STM32F2/F4 flash interface: sectors, program size by PSIZE, OPTCR and readout
protection.

Sources: RM0090 (STM32F405/407/415/417/427/429/437/439) 3.5-3.7 and 3.9; RM0033
(STM32F205/215/207/217) 2.3-2.4 and 2.7 (the same interface without the dual-bank
bits). Register block at 0x40023C00:

- KEYR 0x04 (0x45670123, 0xCDEF89AB; a wrong key: bus error, locked until reset),
  OPTKEYR 0x08 (0x08192A3B, 0x4C5D6E7F clear OPTCR.OPTLOCK).
- SR 0x0C: EOP 0, OPERR 1, WRPERR 4, PGAERR 5, PGPERR 6, PGSERR 7, BSY 16 (flags
  cleared by writing 1).
- CR 0x10: PG 0, SER 1, MER 2, SNB 6:3 (F42x/F43x 7:3: sectors 12-23 of bank 2 are
  0b10000 + n - 12), PSIZE 9:8 (x8, x16, x32, x64), MER1 15 (bank 2), STRT 16, LOCK 31;
  writes while LOCK is set are ignored.
- OPTCR 0x14: OPTLOCK 0, OPTSTRT 1, BOR_LEV 3:2, user bits 7:5, RDP 15:8 (0xAA level 0,
  0xCC level 2, else level 1), nWRP 27:16; reset value 0x0FFFAAED. OPTSTRT writes the
  option bytes from OPTCR (BSY while it runs); leaving level 1 for level 0 mass-erases
  the flash first (RM0090 3.7.3). The sim applies the new options when the write ends.

Programming (RM0090 3.5.4): with PG set, each write programs one unit of the PSIZE
size; a write of another size sets PGPERR, a write without PG sets PGSERR, and neither
programs. Bits only go from 1 to 0 (programming over data ANDs). In RDP level 1 a
debugger's flash reads and writes are bus errors and erases set WRPERR (RM0090 3.7.3
table 20: no read, write or erase of the main memory from a debugger at level 1).
The sim does not model write protection (nWRP) or OTP.

Timing: DS8626 (STM32F405/407) table 42 and DS6329 (STM32F205/207) table 39: word
(any PSIZE) 16 typ / 100 max us; sector erase by size and parallelism x8/x16/x32:
16 KiB 400/300/250 ms typ (max twice that), 64 KiB 1200/700/550, 128 KiB 2000/1300/1000;
mass erase 16/11/8 s typ, 32/22/16 max. x64 takes the x32 figures (the difference is
VPP, which a debugger does not supply).
"""

from __future__ import annotations

from app.hal.sim.flash_array import FlashArray
from app.hal.sim.mcu_memory import BusFault, Region, Registers
from app.hal.sim.stm32_keys import FLASH_KEYS, OPTION_KEYS, KeyLock, RdpLevels

FLASH_REGS, OPTION_BYTES = 0x40023C00, 0x1FFFC000
EOP, OPERR, WRPERR, PGAERR, PGPERR, PGSERR = 1, 2, 16, 32, 64, 128
BSY = 1 << 16
PG, SER, MER, MER1, STRT, LOCK = 1, 2, 4, 1 << 15, 1 << 16, 1 << 31
OPTLOCK, OPTSTRT = 1, 2
OPTCR_RESET = 0x0FFFAAED
PROGRAM_MS = (0.016, 0.100)
SECTOR_MS = {  # by sector size, then PSIZE 0..2: typ ms (max is twice)
    16 * 1024: (400, 300, 250),
    64 * 1024: (1200, 700, 550),
    128 * 1024: (2000, 1300, 1000),
}
MASS_MS = (16000, 11000, 8000)


class Stm32FlashF4(RdpLevels):
    def __init__(
        self,
        kind: str,
        array: FlashArray,
        *,
        protected: bool,
        program_error_address: int | None,
    ) -> None:
        self.kind = kind
        self.array = array
        self.program_error_address = program_error_address
        # two banks of 12 sectors (RM0090 3.3: F42x/F43x, F469/F479 with 2 MiB); the
        # F413/F423's 16 sectors are one bank, SNB 0-15 (RM0430 3.3)
        self.dual_bank = len(array.sectors) == 24
        self.optcr_stored = (OPTCR_RESET & ~0xFF00) | ((0x55 if protected else 0xAA) << 8)
        self.power_on()

    def power_on(self) -> None:
        self.system_reset()

    def system_reset(self) -> None:
        self.keys = KeyLock("FLASH_KEYR", FLASH_KEYS, lockout=True)
        self.option_keys = KeyLock("FLASH_OPTKEYR", OPTION_KEYS, lockout=False)
        self.cr = LOCK
        self.optcr = self.optcr_stored & ~(OPTLOCK | OPTSTRT)
        self.errors = 0
        self._pending = False
        self._new_options: int | None = None

    @property
    def rdp_level(self) -> int:
        return {0xAA: 0, 0xCC: 2}.get((self.optcr_stored >> 8) & 0xFF, 1)

    @property
    def option_bytes(self) -> bytes:
        return self.optcr_stored.to_bytes(4, "little")

    @property
    def psize(self) -> int:
        return (self.cr >> 8) & 3

    def regions(self) -> list[Region]:
        regs = Registers(FLASH_REGS, 0x400, "FLASH")
        regs.add(0x04, lambda: 0, self._write_keyr)
        regs.add(0x08, lambda: 0, self._write_optkeyr)
        regs.add(0x0C, self._sr, self._write_sr)
        regs.add(0x10, self._cr, self._write_cr)
        regs.add(0x14, self._optcr, self._write_optcr)
        options = Registers(OPTION_BYTES, 0x10, "option bytes")
        options.add(0x0, lambda: (self.optcr_stored >> 0) & 0xFFFC)  # USER, RDP
        options.add(0x8, lambda: (self.optcr_stored >> 16) & 0xFFF)  # nWRP
        return [regs, options]

    # -- status and control ---------------------------------------------------------

    def _settle(self) -> None:
        if self._pending and not self.array.busy():
            self._pending = False
            self.errors |= EOP
            if self._new_options is not None:
                self.optcr_stored, self._new_options = self._new_options, None

    def _sr(self) -> int:
        self._settle()
        return self.errors | (BSY if self.array.busy() else 0)

    def _write_sr(self, value: int) -> None:
        self._settle()
        self.errors &= ~(value & 0x1F3)

    def _cr(self) -> int:
        self._settle()
        return self.cr | (STRT if self._pending and self.array.busy() and not self.cr & PG else 0)

    def _optcr(self) -> int:
        self._settle()
        busy = OPTSTRT if self._new_options is not None else 0
        return self.optcr | busy | (OPTLOCK if self.option_keys.locked else 0)

    def _write_keyr(self, value: int) -> None:
        self.keys.write(value)
        if not self.keys.locked:
            self.cr &= ~LOCK

    def _write_optkeyr(self, value: int) -> None:
        self.option_keys.write(value)

    def _write_cr(self, value: int) -> None:
        self._settle()
        if self.keys.locked:
            return
        self.cr = value & (PG | SER | MER | 0xF8 | 0x300 | MER1 | (3 << 24) | LOCK)
        if value & LOCK:
            self.keys.lock()
        if value & STRT and not self.array.busy():
            self._erase()

    def _erase(self) -> None:
        if self.read_protected:
            self.errors |= WRPERR
            return
        parallelism = min(self.psize, 2)
        if self.cr & (MER | MER1):
            banks = [bool(self.cr & MER), bool(self.cr & MER1)] if self.dual_bank else [True]
            half = len(self.array.sectors) // len(banks)
            for index, chosen in enumerate(banks):
                if chosen:
                    self.array.erase(index * half, half)
            self._begin(MASS_MS[parallelism], 2 * MASS_MS[parallelism])
        elif self.cr & SER:
            snb = (self.cr >> 3) & (0x1F if self.dual_bank else 0xF)
            sector = snb - 16 + 12 if self.dual_bank and snb & 0x10 else snb
            if sector >= len(self.array.sectors) or (self.dual_bank and 12 <= snb < 16):
                self.errors |= PGSERR
                return
            self.array.erase(sector)
            typ = _sector_ms(self.array.sectors[sector], parallelism)
            self._begin(typ, 2 * typ)

    def _begin(self, typ_ms: float, max_ms: float) -> None:
        self.array.start(typ_ms, max_ms)
        self._pending = True

    def _write_optcr(self, value: int) -> None:
        self._settle()
        if self.option_keys.locked:
            return
        self.optcr = value & 0x0FFFFFEC
        if value & OPTLOCK:
            self.option_keys.lock()
        if value & OPTSTRT and not self.array.busy():
            new = self.optcr
            regress = self.rdp_level == 1 and (new >> 8) & 0xFF == 0xAA
            if regress:
                self.array.erase_all()
                typ, high = MASS_MS[2], 2 * MASS_MS[2]
            else:
                typ, high = SECTOR_MS[16 * 1024][2], 2 * SECTOR_MS[16 * 1024][2]
            self._new_options = new
            self._begin(typ, high)

    # -- programming ------------------------------------------------------------------

    def write_flash(self, offset: int, value: int, size: int) -> None:
        address = self.array.base + offset
        if self.read_protected:
            raise BusFault(f"flash write at 0x{address:08X}: readout protection")
        if self.keys.locked or not self.cr & PG:
            self.errors |= PGSERR
            return
        if size != {0: 1, 1: 2}.get(self.psize, 4):
            self.errors |= PGPERR
            return
        target = self.program_error_address
        if target is not None and address <= target < address + size:
            self.errors |= PGSERR  # F2/F4 have no program-failure flag of their own
            return
        self.array.program(offset, value, size)
        self._begin(*PROGRAM_MS)


def _sector_ms(size: int, parallelism: int) -> float:
    """The datasheet figure for the sector's size; other sizes scale from 128 KiB."""
    if size in SECTOR_MS:
        return SECTOR_MS[size][parallelism]
    return SECTOR_MS[128 * 1024][parallelism] * size / (128 * 1024)
