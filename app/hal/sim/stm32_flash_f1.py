"""The STM32F0/F1/F3 flash controller (FPEC), its option bytes and readout protection.

Sources: RM0008 (STM32F10x) 3.3.3 and PM0075 (STM32F10x flash programming) 2.3-2.5 and
3 "Register descriptions"; RM0091 (STM32F0x1/x2/x8) 3.2, 3.5, 4; RM0316 (STM32F303)
4.2, 4.5, 5. Register block at 0x40022000 on all three:

- KEYR 0x04: 0x45670123 then 0xCDEF89AB clear CR.LOCK; any other value locks the FPEC
  and CR until the next reset and answers a bus error (PM0075 2.3.1).
- OPTKEYR 0x08: the same two keys set CR.OPTWRE (with the FPEC unlocked).
- SR 0x0C: BSY 0, PGERR 2, WRPRTERR 4, EOP 5 (the last three cleared by writing 1).
- CR 0x10: PG 0, PER 1, MER 2, OPTPG 4, OPTER 5, STRT 6 (reads 1 until the erase ends),
  LOCK 7, OPTWRE 9, ERRIE 10, EOPIE 12, OBL_LAUNCH 13 (F0/F3: reload the option bytes
  and reset the system). Writes while LOCK is set are ignored.
- AR 0x14: an address in the page PER+STRT erases.
- OBR 0x1C: OPTERR 0; F1: RDPRT 1, USER 9:2, Data0 17:10, Data1 25:18; F0/F3: RDPRT 2:1
  (00 level 0, 01 level 1, 11 level 2), USER 15:8, Data0 23:16, Data1 31:24.
- WRPR 0x20: the four WRP option bytes.

Programming is by half-word with PG set; a write of another size is a bus error
(PM0075 2.3.3, RM0091 3.2.2). A half-word that is not 0xFFFF is programmed only with
0x0000; otherwise PGERR is set and nothing is written. While protected (RDP level >= 1)
a debugger's flash reads and writes are bus errors and a page erase sets WRPRTERR; mass
erase stays allowed (PM0075 2.4.1 table 4, RM0091 3.3.1).

Option bytes (0x1FFFF800, 16 bytes: RDP nRDP USER nUSER Data0 nData0 Data1 nData1 WRP0
nWRP0 .. WRP3 nWRP3): programmed by half-word with OPTPG (the low byte is written, the
high byte is its complement, made by the controller), erased by OPTER+STRT. A byte whose
complement does not match loads as 0xFF with OBR.OPTERR. RDP: F1 0xA5 is level 0,
anything else level 1; F0/F3 0xAA level 0, 0xCC level 2 (debug off for good), else
level 1. Going back to level 0 mass-erases the main flash: on F1 when RDP 0xA5 is
programmed while protected (PM0075 2.4.1 "Read protection disabling"), on F0/F3 when
the option bytes are erased at level 1 (RM0091 3.3.1). The option bytes are loaded at
power-on and, on F1, at every system reset (RM0008 2.5 / PM0075 2.5); on F0/F3 only at
power-on and OBL_LAUNCH (RM0091 4.1).

Timing (datasheets, "Flash memory characteristics"; where no typical figure is given
the minimum is used as typical): F1 DS5319 table 27: tprog 52.5 typ / 70 max us, page
erase 20 / 40 ms, mass erase 20 / 40 ms; F0 DS9773 (STM32F030) and F3 DS9118
(STM32F303xB/C): tprog 53.5 / 60 us, page erase 20 / 40 ms, mass erase 20 / 40 ms.
"""

from __future__ import annotations

from collections.abc import Callable

from app.hal.sim.flash_array import FlashArray
from app.hal.sim.mcu_memory import BusFault, Region, Registers
from app.hal.sim.stm32_keys import FLASH_KEYS, OPTION_KEYS_F1, KeyLock, RdpLevels

FLASH_REGS, OPTION_BYTES = 0x40022000, 0x1FFFF800
BSY, PGERR, WRPRTERR, EOP = 1 << 0, 1 << 2, 1 << 4, 1 << 5
PG, PER, MER, OPTPG, OPTER, STRT, LOCK, OPTWRE = 1, 2, 4, 16, 32, 64, 128, 512
OBL_LAUNCH = 1 << 13
#: (typ, max) in ms: one half-word, a page erase, a mass erase
TIMING = {
    "stm32f1": ((0.0525, 0.070), (20.0, 40.0), (20.0, 40.0)),
    "stm32f0": ((0.0535, 0.060), (20.0, 40.0), (20.0, 40.0)),
    "stm32f3": ((0.0535, 0.060), (20.0, 40.0), (20.0, 40.0)),
}
FACTORY_OPTIONS = {"stm32f1": 0xA5, "stm32f0": 0xAA, "stm32f3": 0xAA}


class Stm32FlashF1(RdpLevels):
    def __init__(
        self,
        kind: str,
        array: FlashArray,
        *,
        protected: bool,
        program_error_address: int | None,
        system_reset: Callable[[], None],
    ) -> None:
        self.kind = kind
        self.array = array
        self.program_error_address = program_error_address
        self.system_reset_request = system_reset
        self._program_ms, self._page_ms, self._mass_ms = TIMING[kind]
        rdp = 0x00 if protected else FACTORY_OPTIONS[kind]
        self.options = bytearray(16)
        for index, value in enumerate((rdp, 0xFF, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF)):
            self.options[2 * index : 2 * index + 2] = bytes((value, value ^ 0xFF))
        self.power_on()

    # -- resets and the option byte loader ---------------------------------------------

    def power_on(self) -> None:
        self.load_options()
        self.system_reset()

    def system_reset(self) -> None:
        self.keys = KeyLock("FLASH_KEYR", FLASH_KEYS, lockout=True)
        self.option_keys = KeyLock("FLASH_OPTKEYR", OPTION_KEYS_F1, lockout=False)
        self.cr = LOCK
        self.ar = 0
        self.errors = 0
        self._eop_pending = False
        self._erasing = False
        if self.kind == "stm32f1":
            self.load_options()

    def load_options(self) -> None:
        self.loaded = bytearray(8)
        self.opterr = False
        for index in range(8):
            value, complement = self.options[2 * index], self.options[2 * index + 1]
            if value ^ complement != 0xFF:
                self.opterr, value = True, 0xFF
            self.loaded[index] = value

    @property
    def rdp_level(self) -> int:
        rdp = self.loaded[0]
        if self.kind == "stm32f1":
            return 0 if rdp == 0xA5 else 1
        return {0xAA: 0, 0xCC: 2}.get(rdp, 1)

    @property
    def option_bytes(self) -> bytes:
        return bytes(self.options)

    # -- the bus ------------------------------------------------------------------------

    def regions(self) -> list[Region]:
        regs = Registers(FLASH_REGS, 0x400, "FLASH")
        regs.add(0x04, lambda: 0, self._write_keyr)
        regs.add(0x08, lambda: 0, self._write_optkeyr)
        regs.add(0x0C, self._sr, self._write_sr)
        regs.add(0x10, self._cr, self._write_cr)
        regs.add(0x14, lambda: self.ar, self._write_ar)
        regs.add(0x1C, self._obr)
        regs.add(0x20, lambda: int.from_bytes(self.loaded[4:8], "little"))
        return [regs, _OptionWindow(self)]

    def _settle(self) -> None:
        if self._eop_pending and not self.array.busy():
            self._eop_pending = self._erasing = False
            self.errors |= EOP

    def _sr(self) -> int:
        self._settle()
        return self.errors | (BSY if self.array.busy() else 0)

    def _write_sr(self, value: int) -> None:
        self._settle()
        self.errors &= ~(value & (PGERR | WRPRTERR | EOP))

    def _cr(self) -> int:
        self._settle()
        return self.cr | (STRT if self._erasing else 0)

    def _obr(self) -> int:
        level = self.rdp_level
        user, data0, data1 = self.loaded[1], self.loaded[2], self.loaded[3]
        if self.kind == "stm32f1":
            return (
                int(self.opterr)
                | (min(level, 1) << 1)
                | (user << 2)
                | (data0 << 10)
                | (data1 << 18)
            )
        rdprt = {0: 0b00, 1: 0b01, 2: 0b11}[level]
        return int(self.opterr) | (rdprt << 1) | (user << 8) | (data0 << 16) | (data1 << 24)

    @property
    def locked(self) -> bool:
        return self.keys.locked

    def _write_keyr(self, value: int) -> None:
        self.keys.write(value)
        if not self.keys.locked:
            self.cr &= ~LOCK

    def _write_optkeyr(self, value: int) -> None:
        if self.locked:
            return
        self.option_keys.write(value)
        if not self.option_keys.locked:
            self.option_keys.lock()
            self.cr |= OPTWRE

    def _write_ar(self, value: int) -> None:
        if not self.locked:
            self.ar = value

    def _write_cr(self, value: int) -> None:
        self._settle()
        if self.locked:
            return
        keep = self.cr & OPTWRE & value  # OPTWRE: set only by the key, cleared by 0
        self.cr = (value & (PG | PER | MER | OPTPG | OPTER | LOCK | 0x1400)) | keep
        if value & LOCK:
            self.keys.lock()
        if value & STRT:
            self._start_erase()
        if value & OBL_LAUNCH and self.kind != "stm32f1":
            self.load_options()
            self.system_reset_request()

    def _start_erase(self) -> None:
        if self.array.busy():
            return
        if self.cr & MER:
            self.array.erase_all()
            self._begin(self._mass_ms, erase=True)
        elif self.cr & PER:
            offset = self.ar - self.array.base
            if not 0 <= offset < self.array.size:
                return
            if self.read_protected:
                self.errors |= WRPRTERR
                return
            self.array.erase(self.array.sector_at(offset))
            self._begin(self._page_ms, erase=True)
        elif self.cr & OPTER and self.cr & OPTWRE:
            if self.kind != "stm32f1" and self.rdp_level == 1:
                self.array.erase_all()  # RM0091 3.3.1: leaving level 1 erases the flash
            self.options[:] = b"\xff" * 16
            self._begin(self._page_ms, erase=True)

    def _begin(self, figures: tuple[float, float], *, erase: bool = False) -> None:
        self.array.start(*figures)
        self._eop_pending = True
        self._erasing = erase

    # -- writes to flash and to the option bytes --------------------------------------

    def write_flash(self, offset: int, value: int, size: int) -> None:
        if self.read_protected:
            raise BusFault(f"flash write at 0x{self.array.base + offset:08X}: readout protection")
        if not self.cr & PG or self.locked:
            return
        if size != 2:
            raise BusFault(f"flash write of {size} bytes: the FPEC programs half-words only")
        address = self.array.base + offset
        if self._hits_program_error(address) or (
            not self.array.is_erased(offset, 2) and value != 0
        ):
            self.errors |= PGERR
            return
        self.array.program(offset, value, 2)
        self._begin(self._program_ms)

    def _hits_program_error(self, address: int) -> bool:
        target = self.program_error_address
        return target is not None and address <= target < address + 2

    def write_option(self, offset: int, value: int, size: int) -> None:
        if not (self.cr & OPTPG and self.cr & OPTWRE) or self.locked:
            return
        if size != 2:
            raise BusFault(f"option byte write of {size} bytes: half-words only")
        if self.options[offset : offset + 2] != b"\xff\xff":
            self.errors |= PGERR
            return
        byte = value & 0xFF
        if self.kind == "stm32f1" and offset == 0 and byte == 0xA5 and self.rdp_level:
            self.array.erase_all()  # PM0075 2.4.1: unprotecting forces a mass erase
            self.options[0:2] = bytes((byte, byte ^ 0xFF))
            self._begin(
                (self._mass_ms[0] + self._program_ms[0], self._mass_ms[1] + self._program_ms[1])
            )
            return
        self.options[offset : offset + 2] = bytes((byte, byte ^ 0xFF))
        self._begin(self._program_ms)


class _OptionWindow(Region):
    def __init__(self, control: Stm32FlashF1) -> None:
        super().__init__(OPTION_BYTES, 16, "option bytes")
        self.control = control

    def read(self, offset: int, size: int) -> int:
        return int.from_bytes(self.control.options[offset : offset + size], "little")

    def write(self, offset: int, value: int, size: int) -> None:
        self.control.write_option(offset, value, size)
