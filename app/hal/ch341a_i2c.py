"""I2C on a CH341A through its I2C stream command (0xAA).

Sub-commands, as flashrom's programmers/ch341a_spi.c defines them (flashrom uses only
the speed setting): 0x74 START, 0x75 STOP, 0x80|n write the n bytes that follow,
0xC0|n read n bytes, 0x60|s set the speed (s: 0 = 20 kHz, 1 = 100 kHz, 2 = 400 kHz,
3 = 750 kHz), 0x00 end of the packet's stream. The acknowledge semantics come from WCH's
CH341DLL as quoted in its published C and Python ports (IIC_InBlockByAck: 0xC0|n reads
n bytes acknowledging each; a bare 0xC0 reads one byte and does not acknowledge it) and
from the libusrio/i2c-ch341 drivers: a bare 0x80 writes the one byte that follows and
answers its acknowledge status (bit 7 set: no acknowledge), while 0x80|n answers
nothing. The chip does not stop at a NACK, so this bus writes every byte with a bare
0x80 and checks every answer.

Each 32-byte packet is one stream ending in 0x00 (padding is more 0x00); a transaction
may span packets, and a whole transaction (a 64-byte page: 67 status bytes) is one pass
of USB writes whose answers are read while they go out (ch341a_usb.exchange).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Protocol

from app.hal.ch341a_usb import PACKET, Ch341Handle, exchange, pack
from app.hal.errors import BusTimeout, I2cNack

I2C_STREAM = 0xAA
I2C_START = 0x74
I2C_STOP = 0x75
I2C_OUT = 0x80
I2C_IN = 0xC0
I2C_SET = 0x60
I2C_END = 0x00
NAK = 0x80
#: speed code of each clock the chip offers
SPEEDS = {20_000: 0, 100_000: 1, 400_000: 2, 750_000: 3}
MAX_IN = 31  # bytes one packet answers at most (a short USB packet)


def speed_packet(clock_hz: int) -> bytes:
    return bytes((I2C_STREAM, I2C_SET | SPEEDS[clock_hz], I2C_END)).ljust(PACKET, b"\x00")


class I2cLink(Protocol):
    """What the bus needs from its site (ch341a.Ch341Site)."""

    sleep: Callable[[float], None]
    now: Callable[[], float]

    def io(self, what: str) -> AbstractContextManager[Ch341Handle]:
        """Lock the board; map USB errors to LinkError (and mark the link lost)."""
        ...


class Stream:
    """I2C stream commands packed into packets; ``reply`` counts the answer bytes."""

    def __init__(self) -> None:
        self.packets: list[bytes] = []
        self._body = bytearray()
        self._answers = 0
        self.reply = 0
        #: (reply offset, what) of every acknowledge status byte
        self.acks: list[tuple[int, str]] = []

    def _command(self, command: bytes, answers: int) -> None:
        if len(self._body) + len(command) > PACKET - 2 or self._answers + answers > MAX_IN:
            self._close()
        self._body += command
        self._answers += answers
        self.reply += answers

    def _close(self) -> None:
        if self._body:
            packet = bytes((I2C_STREAM, *self._body, I2C_END))
            self.packets.append(packet.ljust(PACKET, b"\x00"))
        self._body.clear()
        self._answers = 0

    def start(self) -> None:
        self._command(bytes((I2C_START,)), 0)

    def stop(self) -> None:
        self._command(bytes((I2C_STOP,)), 0)

    def out(self, byte: int, what: str) -> None:
        self.acks.append((self.reply, what))
        self._command(bytes((I2C_OUT, byte)), 1)

    def read(self, n: int) -> int:
        """Read ``n`` bytes, acknowledging all but the last; returns the reply offset."""
        offset = self.reply
        left = n - 1
        while left > 0:
            take = min(left, MAX_IN)
            self._command(bytes((I2C_IN | take,)), take)
            left -= take
        self._command(bytes((I2C_IN,)), 1)
        return offset

    def run(self, handle: Ch341Handle) -> bytes:
        self._close()
        reply = exchange(handle, pack(self.packets), self.reply)
        for offset, what in self.acks:
            if reply[offset] & NAK:
                raise I2cNack(f"no acknowledge {what}")
        return reply


class Ch341I2cBus:
    def __init__(self, link: I2cLink, *, clock_hz: int) -> None:
        self.link = link
        self.clock_hz = clock_hz

    @staticmethod
    def _address(stream: Stream, address: int, read: bool) -> None:
        stream.start()
        stream.out((address << 1) | int(read), f"from I2C address 0x{address:02X}")

    @classmethod
    def _write(cls, stream: Stream, address: int, data: bytes) -> None:
        cls._address(stream, address, False)
        for n, byte in enumerate(data):
            stream.out(byte, f"to byte {n} written to 0x{address:02X}")

    def write(self, address: int, data: bytes) -> None:
        stream = Stream()
        self._write(stream, address, data)
        stream.stop()
        with self.link.io("an I2C write") as handle:
            stream.run(handle)

    def write_read(self, address: int, data: bytes, read_len: int) -> bytes:
        if read_len <= 0:
            if data:
                self.write(address, data)
            return b""
        stream = Stream()
        if data:
            self._write(stream, address, data)
        self._address(stream, address, True)
        offset = stream.read(read_len)
        stream.stop()
        with self.link.io("an I2C read") as handle:
            reply = stream.run(handle)
        return reply[offset : offset + read_len]

    def wait_ack(self, address: int, timeout_s: float, hint_s: float = 0.0) -> None:
        link = self.link
        started = link.now()
        if hint_s > 0:
            link.sleep(hint_s)
        past_deadline = False
        while True:
            stream = Stream()
            self._address(stream, address, False)
            stream.stop()
            try:
                with link.io("I2C acknowledge polling") as handle:
                    stream.run(handle)
                return
            except I2cNack:
                if past_deadline:  # polled once more after the deadline: still busy
                    raise BusTimeout(
                        f"no acknowledge from 0x{address:02X} within {timeout_s * 1000:.0f} ms"
                    ) from None
            past_deadline = link.now() - started > timeout_s
            if not past_deadline:
                link.sleep(0.0005)
