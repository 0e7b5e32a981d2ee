"""I2C through the I2C stream command (0xAA) that the CH341A and the CH347 share; each
chip's dialect of it is a :class:`Dialect` (app.hal.ch341a_i2c, app.hal.ch347_i2c).

Sub-commands, the same on both chips (flashrom's programmers/ch341a_spi.c, WCH's
ch34x_mphsi Linux driver): 0x74 START, 0x75 STOP, 0x80|n write the n bytes that follow,
0xC0|n read n bytes acknowledging each, a bare 0xC0 reads one byte without acknowledging
it, 0x60|s set the speed (s: 0 = 20 kHz, 1 = 100 kHz, 2 = 400 kHz, 3 = 750 kHz), 0x00
ends the stream of a USB packet. A stream starts every USB packet of the chip (32 bytes
on the CH341A, 512 on the CH347), so a transaction spans packets. What differs is how a
written byte's acknowledge is answered, how many answers a packet may ask for, and how
packets travel (the dialect).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from app.hal.errors import BusTimeout, I2cNack
from app.hal.wch_usb import WchHandle

I2C_STREAM = 0xAA
I2C_START = 0x74
I2C_STOP = 0x75
I2C_OUT = 0x80
I2C_IN = 0xC0
I2C_SET = 0x60
I2C_END = 0x00
#: speed code of each clock both chips offer
SPEEDS = {20_000: 0, 100_000: 1, 400_000: 2, 750_000: 3}

#: one packet's stream (0xAA ... 0x00, not padded) and how many answer bytes it asks for
Packet = tuple[bytes, int]


@dataclass(frozen=True)
class Dialect:
    """One chip's way with the I2C stream."""

    packet: int  # bytes of a USB packet (a stream per packet)
    max_answers: int  # answer bytes one packet may ask for
    max_run: int  # bytes one 0x80|n or 0xC0|n may move
    #: True: 0x80|n answers n acknowledge bytes; False: only a bare 0x80 answers (its
    #: one byte's), so every byte is written with a bare 0x80
    counted_out: bool
    acked: Callable[[int], bool]  # an acknowledge answer byte: was the byte acknowledged?
    #: send the packets (one USB write or more) and return their answers, all of them
    send: Callable[[WchHandle, Sequence[Packet]], bytes]


def speed_stream(clock_hz: int) -> bytes:
    return bytes((I2C_STREAM, I2C_SET | SPEEDS[clock_hz], I2C_END))


class I2cLink(Protocol):
    """What the bus needs from its site (app.hal.wch_board.WchSite)."""

    sleep: Callable[[float], None]
    now: Callable[[], float]

    def io(self, what: str) -> AbstractContextManager[WchHandle]:
        """Lock the board; map USB errors to LinkError (and mark the link lost)."""
        ...


class Stream:
    """I2C stream commands packed into packets; ``reply`` counts the answer bytes."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.packets: list[Packet] = []
        self._body = bytearray()
        self._answers = 0
        self.reply = 0
        #: (reply offset, what) of every acknowledge answer byte
        self.acks: list[tuple[int, str]] = []

    def _command(self, command: bytes, answers: int) -> None:
        room = self.dialect.packet - 2  # the stream command and its end
        if len(self._body) + len(command) > room or (
            self._answers + answers > self.dialect.max_answers
        ):
            self._close()
        self._body += command
        self._answers += answers
        self.reply += answers

    def _close(self) -> None:
        if self._body:
            self.packets.append((bytes((I2C_STREAM, *self._body, I2C_END)), self._answers))
        self._body.clear()
        self._answers = 0

    def start(self) -> None:
        self._command(bytes((I2C_START,)), 0)

    def stop(self) -> None:
        self._command(bytes((I2C_STOP,)), 0)

    def out(self, data: bytes, what: Callable[[int], str]) -> None:
        """Write ``data``, every byte's acknowledge checked; ``what(n)`` names byte n."""
        run_len = self.dialect.max_run if self.dialect.counted_out else 1
        for pos in range(0, len(data), run_len):
            run = data[pos : pos + run_len]
            self.acks += [(self.reply + n, what(pos + n)) for n in range(len(run))]
            if self.dialect.counted_out:
                self._command(bytes((I2C_OUT | len(run), *run)), len(run))
            else:
                self._command(bytes((I2C_OUT, *run)), 1)

    def read(self, n: int) -> int:
        """Read ``n`` bytes, acknowledging all but the last; returns the reply offset."""
        offset = self.reply
        left = n - 1
        while left > 0:
            take = min(left, self.dialect.max_run)
            self._command(bytes((I2C_IN | take,)), take)
            left -= take
        self._command(bytes((I2C_IN,)), 1)
        return offset

    def run(self, handle: WchHandle) -> bytes:
        self._close()
        reply = self.dialect.send(handle, self.packets)
        for offset, what in self.acks:
            if not self.dialect.acked(reply[offset]):
                raise I2cNack(f"no acknowledge {what}")
        return reply


class WchI2cBus:
    """I2cBus on a WCH chip: every transaction is one stream, acknowledges all checked."""

    def __init__(self, link: I2cLink, dialect: Dialect, *, clock_hz: int) -> None:
        self.link = link
        self.dialect = dialect
        self.clock_hz = clock_hz

    @staticmethod
    def _address(stream: Stream, address: int, read: bool) -> None:
        stream.start()
        stream.out(
            bytes(((address << 1) | int(read),)), lambda _n: f"from I2C address 0x{address:02X}"
        )

    def _write(self, stream: Stream, address: int, data: bytes) -> None:
        self._address(stream, address, False)
        stream.out(data, lambda n: f"to byte {n} written to 0x{address:02X}")

    def write(self, address: int, data: bytes) -> None:
        stream = Stream(self.dialect)
        self._write(stream, address, data)
        stream.stop()
        with self.link.io("an I2C write") as handle:
            stream.run(handle)

    def write_read(self, address: int, data: bytes, read_len: int) -> bytes:
        if read_len <= 0:
            if data:
                self.write(address, data)
            return b""
        stream = Stream(self.dialect)
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
            stream = Stream(self.dialect)
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
