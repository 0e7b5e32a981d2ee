"""The Cortex-M core through its debug registers (ARMv7-M Architecture Reference Manual
C1.6, ARMv6-M C1.6): halt, reset into a halt at the reset vector, and run.

The flash is programmed with the core halted, so firmware already on the part cannot
touch the flash controller, the watchdog or the SWD pins while the host works.
"""

from __future__ import annotations

import contextlib
import time

from app.algorithms.base import ChipError
from app.hal.bus import DebugAccess
from app.hal.errors import HalError

DHCSR = 0xE000_EDF0
DEMCR = 0xE000_EDFC
AIRCR = 0xE000_ED0C
DBGKEY = 0xA05F << 16
C_DEBUGEN, C_HALT = 1 << 0, 1 << 1
S_HALT = 1 << 17
VC_CORERESET = 1 << 0
VECTKEY_SYSRESETREQ = (0x05FA << 16) | (1 << 2)
HALT_TIMEOUT_S = 0.5


class CortexM:
    def __init__(self, port: DebugAccess) -> None:
        self.port = port

    def _read(self, address: int) -> int:
        return self.port.read_words(address, 1)[0]

    def _write(self, address: int, value: int) -> None:
        self.port.write_words(address, [value])

    def _wait_halted(self, what: str) -> None:
        deadline = time.monotonic() + HALT_TIMEOUT_S
        while True:
            try:
                if self._read(DHCSR) & S_HALT:
                    return
            except HalError:
                # during a system reset the debug port may answer FAULT once
                if time.monotonic() > deadline:
                    raise
            if time.monotonic() > deadline:
                raise ChipError(f"the core did not halt after {what} (DHCSR S_HALT stays 0)")
            time.sleep(0.0005)

    def halt(self) -> None:
        self._write(DHCSR, DBGKEY | C_DEBUGEN | C_HALT)
        self._wait_halted("a halt request")

    def reset_halt(self, *, under_reset: bool = False) -> None:
        """Reset the part and halt the core at its reset vector (vector catch), before
        any firmware instruction runs. ``under_reset``: NRST is being held low (connect
        under reset); releasing it is the reset."""
        self._write(DHCSR, DBGKEY | C_DEBUGEN | C_HALT)
        self._write(DEMCR, self._read(DEMCR) | VC_CORERESET)
        if under_reset:
            self.port.set_reset(False)
        else:
            self._write(AIRCR, VECTKEY_SYSRESETREQ)
        self._wait_halted("reset with vector catch")
        self._write(DEMCR, self._read(DEMCR) & ~VC_CORERESET)

    def run(self) -> None:
        """Leave debug and reset the part so it starts its (new) firmware."""
        self._write(DEMCR, self._read(DEMCR) & ~VC_CORERESET)
        self._write(DHCSR, DBGKEY)  # C_DEBUGEN off: the core runs free
        with contextlib.suppress(HalError):  # a part may drop the ACK as it resets
            self._write(AIRCR, VECTKEY_SYSRESETREQ)
