"""SPI on a CH347 through its SPI commands.

Facts from flashrom's programmers/ch347_spi.c, checked against WCH's ch34x_mphsi SPI
layer (its stream_hw_cfgs structure names the bytes flashrom only sets):

- 0xC0 sets the SPI configuration: a 26-byte payload, clock polarity in byte 6 bit 1 and
  phase in byte 8 bit 0 (both 0: mode 0), the clock divisor in byte 12 bits 5:3 (60 MHz
  halved that many times: 0 = 60 MHz ... 7 = 468.75 kHz), bit order in byte 14 bit 7
  (0: MSB first), chip-select polarities in byte 21 bits 7 and 6 (0: active low; flashrom
  says bit 7 is CS2 and WCH says it is CS1, so both stay 0), and 4, 1 in bytes 2-3
  (master mode), 2 in byte 11 (software chip select), 7 in byte 16 (CRC polynomial),
  which both drivers always set. WCH's driver reads its answer as ``[0xC0, 1, 0,
  status]``, 0 meaning accepted; flashrom reads and ignores it.
- 0xC1 drives the chip selects: a 10-byte payload, byte 0 for CS1 and byte 5 for CS2:
  0x80 changes that line, | 0x40 deasserts it (else asserts). No answer.
- 0xC4 writes its payload (at most 507 bytes a packet), each packet answered by a
  4-byte status ``[0xC4, 1, 0, 0]`` (WCH's driver checks the last byte is 0).
- 0xC3 reads: the payload is the count (32 bits, little endian) and the chip answers
  packets ``[0xC3, length, data]`` of at most 507 data bytes until it has sent them all.
- 0xC2 (WCH's driver; flashrom does not use it) clocks its payload out and answers
  ``[0xC2, length, the bytes clocked in]``: a short operation that reads (a status read,
  RDID) is one write and one answer.

Every command is its own USB write, as both drivers send them. An operation is CS
asserted, its bytes in as few packets as 507-byte payloads allow (0xC2 when the write and
the read fit in one, else 0xC4 packets and one 0xC3), CS deasserted. WaitReady is polled
from the host (app.hal.busy_poll.wait_on_host).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Protocol

from app.hal.bus import SpiStep, WaitReady
from app.hal.busy_poll import BusyPoller, wait_on_host
from app.hal.ch347_usb import MAX_PAYLOAD, answer, command, expect_ok
from app.hal.errors import HalError, LinkError
from app.hal.wch_usb import WchHandle

SPI_CONFIG = 0xC0
SPI_CS = 0xC1
SPI_DUPLEX = 0xC2
SPI_READ = 0xC3
SPI_WRITE = 0xC4
CS_CHANGE = 0x80
CS_DEASSERT = 0x40
BASE_HZ = 60_000_000
DIVISORS = range(8)
MIN_HZ = BASE_HZ >> DIVISORS[-1]


def clock_hz(divisor: int) -> int:
    return BASE_HZ >> divisor  # exact: 60 MHz / 128 is 468750 Hz


def divisor_for(hz: int) -> int | None:
    """The fastest clock not above ``hz``; None when even the slowest is above it."""
    return next((d for d in DIVISORS if clock_hz(d) <= hz), None)


def config_packet(divisor: int, mode: int = 0) -> bytes:
    """SPI ``mode`` (0 or 3: the modes memories take), MSB first, chip selects active
    low, the clock ``divisor``."""
    payload = bytearray(26)
    payload[2], payload[3] = 4, 1  # master mode
    if mode == 3:
        payload[6] |= 0x02  # clock polarity: idle high
        payload[8] |= 0x01  # clock phase: sample on the second edge
    payload[11] = 2  # software chip select
    payload[12] = divisor << 3
    payload[16] = 7  # CRC polynomial
    return command(SPI_CONFIG, bytes(payload))


def cs_packet(cs: int, select: bool) -> bytes:
    """Assert (``select``) or deassert chip select ``cs`` (1 or 2); the other is left."""
    payload = bytearray(10)
    payload[0 if cs == 1 else 5] = CS_CHANGE | (0 if select else CS_DEASSERT)
    return command(SPI_CS, bytes(payload))


class SpiLink(Protocol):
    """What the bus needs from its site (app.hal.ch347.Ch347Site)."""

    sleep: Callable[[float], None]
    now: Callable[[], float]

    def io(self, what: str) -> AbstractContextManager[WchHandle]:
        """Lock the board; map USB errors to LinkError (and mark the link lost)."""
        ...


class Ch347SpiBus:
    """SpiBus on a CH347 (see the module docstring)."""

    def __init__(self, link: SpiLink, *, cs: int, limit_hz: int, mode: int = 0) -> None:
        divisor = divisor_for(limit_hz)
        if divisor is None:
            raise HalError(f"the CH347's slowest SPI clock is {MIN_HZ} Hz")
        self.link = link
        self.cs = cs
        self.mode = mode
        self.divisor = divisor
        self.max_clock_hz = clock_hz(divisor)  # the spi_hz option's clock
        self.poller = BusyPoller()  # reset when the site powers up for a cycle

    def configure(self, handle: WchHandle) -> None:
        """Send the configuration (clock, mode) and leave the chip select high."""
        handle.write(config_packet(self.divisor, self.mode))
        expect_ok(handle, SPI_CONFIG)
        handle.write(cs_packet(self.cs, False))

    def set_clock(self, hz: int) -> int:
        divisor = divisor_for(min(hz, self.max_clock_hz))
        if divisor is None:
            raise HalError(
                f"the CH347's slowest SPI clock is {MIN_HZ / 1000:g} kHz, above this"
                f" part's maximum of {hz / 1000:g} kHz: use another programmer"
            )
        if divisor != self.divisor:
            with self.link.io("setting the SPI clock") as handle:
                self.divisor = divisor
                self.configure(handle)
        return clock_hz(divisor)

    def transfer(self, ops: Sequence[SpiStep]) -> list[bytes]:
        results: list[bytes] = []
        with self.link.io("an SPI transfer") as handle:
            for op in ops:
                if isinstance(op, WaitReady):
                    results.append(bytes((self._wait(handle, op),)))
                else:
                    results.append(self._frame(handle, op.write, op.read_len))
        return results

    def _frame(self, handle: WchHandle, write: bytes, read_len: int) -> bytes:
        """One chip-select frame: ``write``, then ``read_len`` bytes clocked in."""
        handle.write(cs_packet(self.cs, True))
        if read_len and len(write) + read_len <= MAX_PAYLOAD:
            handle.write(command(SPI_DUPLEX, write + b"\xff" * read_len))
            clocked = answer(handle, SPI_DUPLEX)
            if len(clocked) != len(write) + read_len:
                raise LinkError(f"CH347 clocked {len(clocked)} of {len(write) + read_len} bytes")
            data = clocked[len(write) :]
        else:
            for pos in range(0, len(write), MAX_PAYLOAD):
                handle.write(command(SPI_WRITE, write[pos : pos + MAX_PAYLOAD]))
                expect_ok(handle, SPI_WRITE)
            data = self._read(handle, read_len) if read_len else b""
        handle.write(cs_packet(self.cs, False))
        return data

    @staticmethod
    def _read(handle: WchHandle, count: int) -> bytes:
        handle.write(command(SPI_READ, count.to_bytes(4, "little")))
        data = bytearray()
        while len(data) < count:
            chunk = answer(handle, SPI_READ)
            if not chunk or len(data) + len(chunk) > count:
                raise LinkError(f"CH347 answered {len(data) + len(chunk)} of {count} bytes read")
            data += chunk
        return bytes(data)

    def _wait(self, handle: WchHandle, op: WaitReady) -> int:
        def read_status() -> int:
            return self._frame(handle, bytes((op.opcode,)), 1)[0]

        link = self.link
        return wait_on_host(self.poller, op, read_status(), read_status, link.now, link.sleep)
