"""Nordic nRF51/nRF52: the NVMC, FICR, UICR, readout protection and the nRF52 CTRL-AP.

Sources: nRF51 Series Reference Manual v3.0 chapters 6 (NVMC), 7 (FICR), 8 (UICR) and
9.1 (readback protection, PALL); nRF52832 Product Specification v1.4 chapters 11
(NVMC), 12 (FICR), 14 (UICR) and 18.x (CTRL-AP, access port protection); nRF52840 PS
v1.7 4.3-4.5 and 6.x.

- NVMC at 0x4001E000: READY 0x400 (1 ready, 0 busy), CONFIG 0x504 (bits 1:0: 0 read
  only, 1 WEN, 2 EEN), ERASEPAGE 0x508 (the page's address), ERASEALL 0x50C (1: flash
  and UICR), ERASEPCR0 0x510 (as ERASEPAGE), ERASEUICR 0x514 (1). Erases happen only
  with EEN; full words written with WEN to word addresses program flash or UICR, bits
  going from 1 to 0 only (the new contents are old AND written); a byte or half-word
  write is a hard fault (bus error). Writes without WEN change nothing.
- FICR at 0x10000000: CODEPAGESIZE 0x010, CODESIZE 0x014 (pages), DEVICEID 0x060/0x064;
  nRF51: CONFIGID 0x05C (HWID 15:0, FWID 31:16 0xFFFF), NUMRAMBLOCK 0x034,
  SIZERAMBLOCKS 0x038; nRF52: INFO.PART 0x100, VARIANT 0x104 ("AAB0"), PACKAGE 0x108,
  RAM 0x10C and FLASH 0x110 in KiB.
- UICR at 0x10001000 (a flash page of its own): nRF51 RBPCONF 0x004 (PR0 7:0, PALL 15:8:
  0x00 enables, 0xFF disables); nRF52 APPROTECT 0x208 (PALL 7:0, the same values).
- Protection is latched at reset. nRF52 with APPROTECT: the AHB-AP reaches nothing (CSW
  DeviceEn 0, every transfer a bus error); the CTRL-AP (AP 1: RESET 0x000, ERASEALL
  0x004, ERASEALLSTATUS 0x008, APPROTECTSTATUS 0x00C: 1 not protected, IDR 0x0FC
  0x02880000) stays reachable: ERASEALL erases flash, UICR and RAM; the part is open
  after the next reset (CTRL-AP RESET 1 then 0, or NRST). nRF51 with PALL: the debugger
  cannot read or write code memory (bus error) but reaches RAM and the peripherals, so
  NVMC ERASEALL clears the protection (after a reset).

Timing (PS "NVMC electrical specification"; only maxima where no typical figure is
given): nRF52 tWRITE 41 typ / 67.5 max us, tERASEPAGE 85 ms, tERASEALL 169 ms; nRF51
(nRF51822 PS v3.1 table 40) tWRITE 42.5 / 46.3 us, tERASEPAGE 21.3 / 22.3 ms,
tERASEALL 21.3 / 22.3 ms per the page figures. These figures were not re-checked
against the documents in this session (see docs/swd/simulated-targets.md).
"""

from __future__ import annotations

from app.hal.sim.flash_array import FlashArray
from app.hal.sim.mcu_memory import BusFault, BusStall, Ram, Region, Registers

NVMC, FICR, UICR = 0x4001E000, 0x10000000, 0x10001000
UICR_SIZE = 0x400
WEN, EEN = 1, 2
CTRL_AP_IDR = 0x02880000
TIMING = {  # (typ, max) ms: word write, page erase, erase all
    "nrf52": ((0.041, 0.0675), (85.0, 85.0), (169.0, 169.0)),
    "nrf51": ((0.0425, 0.0463), (21.3, 22.3), (21.3, 22.3)),
}


class NrfNvmc:
    def __init__(
        self,
        kind: str,
        array: FlashArray,
        ram: Ram,
        *,
        part: int,
        protected: bool,
        program_error_address: int | None,
        device_id: bytes,
    ) -> None:
        self.kind = kind
        self.array = array
        self.ram = ram
        self.program_error_address = program_error_address
        self._write_ms, self._page_ms, self._all_ms = TIMING[kind]
        self.uicr = bytearray(b"\xff") * UICR_SIZE
        if protected:
            protect_at = 0x208 if kind == "nrf52" else 0x005
            self.uicr[protect_at] = 0x00
        self.ficr = _ficr(kind, array, ram.size, part, device_id)
        self.config = 0
        self.erase_all_pending = False
        self.power_on()

    # -- protection, latched at reset ------------------------------------------------

    def power_on(self) -> None:
        self.system_reset()

    def system_reset(self) -> None:
        self.config = 0
        self.protected_latched = self._protection_configured()

    def _protection_configured(self) -> bool:
        if self.kind == "nrf52":
            return self.uicr[0x208] != 0xFF
        return self.uicr[0x005] != 0xFF  # RBPCONF.PALL

    @property
    def read_protected(self) -> bool:
        return self.protected_latched

    @property
    def debug_disabled(self) -> bool:
        return False

    @property
    def ap_locked(self) -> bool:
        """nRF52 APPROTECT: the AHB-AP reaches nothing."""
        return self.kind == "nrf52" and self.protected_latched

    @property
    def option_bytes(self) -> bytes:
        return bytes(self.uicr)

    # -- the bus --------------------------------------------------------------------

    def regions(self) -> list[Region]:
        regs = Registers(NVMC, 0x1000, "NVMC")
        regs.add(0x400, lambda: 0 if self.array.busy() else 1)
        regs.add(0x504, lambda: self.config, self._write_config)
        regs.add(0x508, lambda: 0, self._erase_page)
        regs.add(0x50C, lambda: 0, self._erase_all)
        regs.add(0x510, lambda: 0, self._erase_page)
        regs.add(0x514, lambda: 0, self._erase_uicr)
        return [regs, _Ficr(self.ficr), _UicrWindow(self)]

    def _write_config(self, value: int) -> None:
        self.config = value & 3

    def _erase_page(self, address: int) -> None:
        offset = address - self.array.base
        if self.config != EEN or self.array.busy() or not 0 <= offset < self.array.size:
            return
        self.array.erase(self.array.sector_at(offset))
        self.array.start(*self._page_ms)

    def _erase_all(self, value: int) -> None:
        if self.config == EEN and value & 1 and not self.array.busy():
            self.wipe(ram=False)
            self.array.start(*self._all_ms)

    def _erase_uicr(self, value: int) -> None:
        if self.config == EEN and value & 1 and not self.array.busy():
            self.uicr[:] = b"\xff" * UICR_SIZE
            self.array.start(*self._page_ms)

    def wipe(self, *, ram: bool) -> None:
        """Flash and UICR (and RAM for the CTRL-AP's ERASEALL) erased."""
        self.array.erase_all()
        self.uicr[:] = b"\xff" * UICR_SIZE
        if ram:
            self.ram.data[:] = bytes(self.ram.size)

    def write_flash(self, offset: int, value: int, size: int) -> None:
        address = self.array.base + offset
        if self.kind == "nrf51" and self.protected_latched:
            raise BusFault(f"flash write at 0x{address:08X}: PALL readback protection")
        if size != 4:
            raise BusFault(f"flash write of {size} bytes at 0x{address:08X}: words only")
        if self.config != WEN:
            return
        target = self.program_error_address
        if target is None or not address <= target < address + 4:
            self.array.program(offset, value, 4)
        self.array.start(*self._write_ms)

    def write_uicr(self, offset: int, value: int, size: int) -> None:
        if size != 4:
            raise BusFault(f"UICR write of {size} bytes: words only")
        if self.config != WEN:
            return
        old = int.from_bytes(self.uicr[offset : offset + 4], "little")
        self.uicr[offset : offset + 4] = (old & value).to_bytes(4, "little")
        self.array.start(*self._write_ms)

    # -- the nRF52 CTRL-AP (AP 1) ------------------------------------------------------

    def ctrl_ap_read(self, register: int) -> int:
        if register == 0x008:
            if self.erase_all_pending and not self.array.busy():
                self.erase_all_pending = False
            return int(self.erase_all_pending)
        if register == 0x00C:
            return 0 if self.protected_latched else 1
        if register == 0x0FC:
            return CTRL_AP_IDR
        return 0

    def ctrl_ap_erase_all(self) -> None:
        if not self.array.busy():
            self.wipe(ram=True)
            self.array.start(*self._all_ms)
            self.erase_all_pending = True


class _Ficr(Region):
    def __init__(self, data: bytes) -> None:
        super().__init__(FICR, len(data), "FICR")
        self.data = data

    def read(self, offset: int, size: int) -> int:
        return int.from_bytes(self.data[offset : offset + size], "little")

    def write(self, offset: int, value: int, size: int) -> None:
        return


class _UicrWindow(Region):
    def __init__(self, nvmc: NrfNvmc) -> None:
        super().__init__(UICR, UICR_SIZE, "UICR")
        self.nvmc = nvmc

    def read(self, offset: int, size: int) -> int:
        if self.nvmc.array.busy():
            raise BusStall
        return int.from_bytes(self.nvmc.uicr[offset : offset + size], "little")

    def write(self, offset: int, value: int, size: int) -> None:
        self.nvmc.write_uicr(offset, value, size)


def _ficr(kind: str, array: FlashArray, ram_size: int, part: int, device_id: bytes) -> bytes:
    data = bytearray(b"\xff") * 0x400
    page = array.sectors[0]

    def word(offset: int, value: int) -> None:
        data[offset : offset + 4] = value.to_bytes(4, "little")

    word(0x010, page)
    word(0x014, array.size // page)
    data[0x060:0x068] = device_id[:8]
    if kind == "nrf52":
        word(0x100, part)
        word(0x104, int.from_bytes(b"AAB0", "big"))
        word(0x108, 0x2000)  # QFxx
        word(0x10C, ram_size // 1024)
        word(0x110, array.size // 1024)
    else:
        word(0x034, 2)  # NUMRAMBLOCK
        word(0x038, ram_size // 2)
        word(0x05C, 0xFFFF0000 | part)  # CONFIGID: FWID 0xFFFF, HWID
    return bytes(data)
