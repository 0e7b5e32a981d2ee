"""The CH341A's dialect of the WCH I2C stream (app.hal.wch_i2c).

The acknowledge semantics come from WCH's CH341DLL as quoted in its published C and
Python ports (IIC_InBlockByAck: 0xC0|n reads n bytes acknowledging each; a bare 0xC0
reads one byte and does not acknowledge it) and from the libusrio/i2c-ch341 drivers: a
bare 0x80 writes the one byte that follows and answers its acknowledge status (bit 7
set: no acknowledge), while 0x80|n answers nothing. The chip does not stop at a NACK, so
every byte is written with a bare 0x80 and every answer checked.

Each 32-byte packet is one stream ending in 0x00 (padding is more 0x00) that answers at
most 31 bytes (one short USB packet); a whole transaction (a 64-byte page: 67 status
bytes) is one pass of USB writes whose answers are read while they go out
(ch341a_usb.exchange).
"""

from __future__ import annotations

from collections.abc import Sequence

from app.hal.ch341a_usb import PACKET, exchange, pack
from app.hal.wch_i2c import Dialect, Packet, speed_stream
from app.hal.wch_usb import WchHandle

NAK = 0x80
MAX_IN = PACKET - 1  # bytes one packet answers at most (a short USB packet)


def speed_packet(clock_hz: int) -> bytes:
    return speed_stream(clock_hz).ljust(PACKET, b"\x00")


def _send(handle: WchHandle, packets: Sequence[Packet]) -> bytes:
    padded = [stream.ljust(PACKET, b"\x00") for stream, _answers in packets]
    return exchange(handle, pack(padded), sum(answers for _stream, answers in packets))


CH341_I2C = Dialect(
    packet=PACKET,
    max_answers=MAX_IN,
    max_run=MAX_IN,
    counted_out=False,
    acked=lambda status: not status & NAK,
    send=_send,
)
