"""I2C over an FTDI MPSSE interface through pyftdi's I2cController / I2cPort.

Wiring: SCL on ADBUS0, SDA on ADBUS1 *and* ADBUS2 (tied together), pull-ups to the
target's supply. pyftdi checks the ACK of every byte it writes, which costs one USB
round trip per byte written: a 64-byte EEPROM page is ~70 round trips. Reads are
batched by pyftdi (as many byte reads as the chip's FIFO holds per round trip).

The controller's retry count is set to 1 (see ftdi.py): a NACK surfaces at once as
I2cNack and acknowledge polling is done here, by addressing the part until it ACKs.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol

from app.hal.errors import BusTimeout, I2cNack

#: pyftdi refuses reads above PAYLOAD_MAX_LENGTH / 3 - 1 bytes in one exchange
MAX_READ = 16384


class I2cLink(Protocol):
    """What the bus needs from its FTDI interface (ftdi.FtdiSite)."""

    #: pyftdi's I2cController while open; pyftdi ships no type hints
    controller: Any
    sleep: Callable[[float], None]
    now: Callable[[], float]

    def io(self, what: str) -> AbstractContextManager[None]:
        """Lock the interface; map USB errors to LinkError (and mark the link lost)."""
        ...


class FtdiI2cBus:
    def __init__(self, link: I2cLink, *, clock_hz: int) -> None:
        self.link = link
        self.clock_hz = clock_hz

    def _port(self, address: int) -> Any:  # pyftdi's I2cPort
        return self.link.controller.get_port(address)

    def write(self, address: int, data: bytes) -> None:
        with self.link.io("an I2C write"):
            self._port(address).write(bytes(data), relax=True, start=True)

    def write_read(self, address: int, data: bytes, read_len: int) -> bytes:
        with self.link.io("an I2C read"):
            port = self._port(address)
            if read_len <= 0:
                if data:
                    port.write(bytes(data), relax=True, start=True)
                return b""
            first = min(read_len, MAX_READ)
            if data:
                out = bytearray(port.exchange(bytes(data), first, relax=True, start=True))
            else:
                out = bytearray(port.read(first, relax=True, start=True))
            while len(out) < read_len:
                # 24xx parts continue at their internal address pointer (current read)
                n = min(MAX_READ, read_len - len(out))
                out += port.read(n, relax=True, start=True)
            return bytes(out)

    def wait_ack(self, address: int, timeout_s: float, hint_s: float = 0.0) -> None:
        link = self.link
        started = link.now()
        with link.io("I2C acknowledge polling"):
            if hint_s > 0:
                link.sleep(hint_s)
            port = self._port(address)
            past_deadline = False
            while not port.poll(write=True, relax=True, start=True):
                if past_deadline:  # polled once more after the deadline: still busy
                    raise BusTimeout(
                        f"no acknowledge from 0x{address:02X} within {timeout_s * 1000:.0f} ms"
                    )
                past_deadline = link.now() - started > timeout_s
                if not past_deadline:
                    link.sleep(0.0005)


__all__ = ["FtdiI2cBus", "I2cNack"]
