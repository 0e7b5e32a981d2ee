"""What the simulated STM32 flash controllers share: the key registers and the readout
protection levels.

Keys: two keys in order unlock; the flash
KEYR answers any other value with a bus error and stays locked until the next reset
(PM0075 2.3.1, RM0090 3.5.1, RM0351 3.3.5, RM0444 3.3.6, RM0440 3.3.5). The option
key registers behave the same on G0/G4/L4 (RM0351 3.4.2) and are simply not
unlocked by a wrong key on F0/F1/F3/F2/F4."""

from __future__ import annotations

from app.hal.sim.mcu_memory import BusFault

FLASH_KEYS = (0x45670123, 0xCDEF89AB)
OPTION_KEYS_F1 = FLASH_KEYS  # PM0075 3.2: OPTKEYR takes the same keys
OPTION_KEYS = (0x08192A3B, 0x4C5D6E7F)  # RM0090 3.6.2, RM0351 3.4.2


class KeyLock:
    def __init__(self, name: str, keys: tuple[int, int], *, lockout: bool) -> None:
        self.name = name
        self.keys = keys
        self.lockout_on_error = lockout
        self.reset()

    def reset(self) -> None:
        self.locked, self.lockout, self._stage = True, False, 0

    def lock(self) -> None:
        self.locked, self._stage = True, 0

    def write(self, value: int) -> None:
        if self.lockout:
            raise BusFault(f"{self.name}: locked out by a wrong key until reset")
        if not self.locked:
            return
        if value == self.keys[self._stage]:
            self._stage += 1
            if self._stage == 2:
                self.locked, self._stage = False, 0
            return
        self._stage = 0
        if self.lockout_on_error:
            self.lockout = True
            raise BusFault(f"{self.name}: wrong key 0x{value:08X}")


class RdpLevels:
    """Readout protection as the RDP level says (each controller reads its own RDP):
    level 1 refuses the debugger the flash, level 2 turns debug off for good (RM0008
    2.5, RM0090 3.7.3, RM0351 3.5.1)."""

    @property
    def rdp_level(self) -> int:
        raise NotImplementedError

    @property
    def read_protected(self) -> bool:
        return self.rdp_level >= 1

    @property
    def debug_disabled(self) -> bool:
        return self.rdp_level == 2
