"""Nordic nRF51/nRF52 flash through the NVMC, from the nRF51 Series Reference Manual
(ch. 6 NVMC, 7 FICR, 8 UICR) and the nRF52832/nRF52840 Product Specifications (NVMC,
FICR, UICR, CTRL-AP): word writes with CONFIG.WEN, page erase with CONFIG.EEN, READY
polled after each. Readout protection is UICR APPROTECT on nRF52 (cleared only by the
CTRL-AP's ERASEALL, on AP 1) and UICR RBPCONF.PALL on nRF51 (cleared by ERASEALL).
"""

from __future__ import annotations

import time

from app.algorithms.base import ChipError, Protection
from app.algorithms.flash_loader import LoaderSpec
from app.algorithms.swd_flash import FlashController, FlashTimes, controller
from app.devicedb.facts import Timing

NVMC = 0x4001_E000
READY, CONFIG, ERASEPAGE, ERASEALL = NVMC + 0x400, NVMC + 0x504, NVMC + 0x508, NVMC + 0x50C
REN, WEN, EEN = 0, 1, 2
DEVICEID = 0x1000_0060  # FICR DEVICEID[0..1]: 64-bit unique ID
UICR_APPROTECT = 0x1000_1208  # nRF52
UICR_RBPCONF = 0x1000_1004  # nRF51
CTRL_AP = 1
CTRL_RESET, CTRL_ERASEALL, CTRL_ERASEALLSTATUS, CTRL_APPROTECTSTATUS = 0x00, 0x04, 0x08, 0x0C
ERASEALL_TIMEOUT_S = 1.0


class NrfNvmc(FlashController):
    unit = 4

    def unlock(self) -> None:
        """The NVMC has no lock: CONFIG selects read, write or erase per operation."""

    def lock(self) -> None:
        self._config(REN)

    def _config(self, mode: int) -> None:
        self.write(CONFIG, mode)
        self.wait(READY, 1, 1, 0.0, 0.1)

    def _erase(self, register: int, value: int, what: str, timing: Timing) -> None:
        self._config(EEN)
        self.write(register, value)
        self.wait(READY, 1, 1, timing.ms_typ / 1000, self.timeout(timing))
        self._config(REN)

    def erase_sector(self, number: int) -> None:
        address = self.sector_address(number)
        self._erase(
            ERASEPAGE, address, f"page erase at 0x{address:08X}", self.sector_timing(number)
        )

    def mass_erase(self) -> None:
        self._erase(ERASEALL, 1, "erase all", self.times.mass_erase(self.layout.size))

    def program(self, address: int, data: bytes) -> None:
        """Word writes with CONFIG.WEN; the NVMC has no error flags, so a word that
        does not read back as written is the error."""
        self._config(WEN)
        bad = self.program_units(address, data)
        self._config(REN)
        if bad is not None:
            raise self.bad_unit(bad, "")

    def loader_spec(self) -> LoaderSpec:
        return LoaderSpec(1, 4, READY, 1, True, 0)  # READY set when ready; no error flags

    def unique_id(self) -> bytes | None:
        words = self.port.read_words(DEVICEID, 2)
        return b"".join(word.to_bytes(4, "little") for word in words)

    def _write_uicr(self, address: int, value: int) -> None:
        self._config(WEN)
        self.port.write_polled([(address, value)], 4, READY, 1, ready=1)
        self._config(REN)


_PROTECTED = (
    "readout protection ({what}) is on: the debugger cannot read the memory; removing it"
    " erases the whole flash and UICR"
)


@controller
class Nrf51Nvmc(NrfNvmc):
    kind = "nrf51"
    # nRF51822 Product Specification v3.x, "Flash specifications": tWRITE 46.3 us,
    # tERASEPAGE 22.3 ms, tERASEALL 22.3 ms (maximum figures; typical taken as equal)
    times = FlashTimes(
        program=Timing(0.0463, 0.0463),
        erase=lambda size: Timing(22.3, 22.3),
        mass_erase=lambda size: Timing(22.3, 22.3),
    )

    def protection(self) -> Protection:
        pall = (self.read(UICR_RBPCONF) >> 8) & 0xFF
        if pall == 0x00:
            return Protection(True, _PROTECTED.format(what="RBPCONF.PALL"), readable=False)
        return Protection(False, "readout protection off")

    def set_protection(self, on: bool) -> bool:
        if on:
            self._write_uicr(UICR_RBPCONF, 0xFFFF_00FF)
        else:
            self.mass_erase()  # ERASEALL clears UICR too, and PALL with it
        return False


@controller
class Nrf52Nvmc(NrfNvmc):
    kind = "nrf52"
    # nRF52832 Product Specification v1.4, "NVMC electrical specification": tWRITE
    # <= 67.5 us (41 us typical), tERASEPAGE <= 85 ms, tERASEALL <= 169 ms
    times = FlashTimes(
        program=Timing(0.041, 0.0675),
        erase=lambda size: Timing(85.0, 85.0),
        mass_erase=lambda size: Timing(169.0, 169.0),
    )

    def protection(self) -> Protection:
        if not self.port.ap_read(CTRL_AP, CTRL_APPROTECTSTATUS) & 1:
            return Protection(True, _PROTECTED.format(what="APPROTECT"), readable=False)
        return Protection(False, "readout protection off")

    def set_protection(self, on: bool) -> bool:
        if on:
            self._write_uicr(UICR_APPROTECT, 0xFFFF_FF00)
            return False
        self.port.ap_write(CTRL_AP, CTRL_ERASEALL, 1)
        deadline = time.monotonic() + ERASEALL_TIMEOUT_S
        while self.port.ap_read(CTRL_AP, CTRL_ERASEALLSTATUS) & 1:
            if time.monotonic() > deadline:
                raise ChipError("CTRL-AP ERASEALL did not finish (ERASEALLSTATUS stays 1)")
            time.sleep(0.005)
        self.port.ap_write(CTRL_AP, CTRL_RESET, 1)  # a reset applies the erased UICR
        self.port.ap_write(CTRL_AP, CTRL_RESET, 0)
        self.port.ap_write(CTRL_AP, CTRL_ERASEALL, 0)
        return True
