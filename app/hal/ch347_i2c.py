"""The CH347's dialect of the WCH I2C stream (app.hal.wch_i2c).

Sources: WCH's ch34x_mphsi Linux driver (i2c layer, ch347_i2c_stream, and its header
ch34x_mphsi.h) and Frank Zago's ch347 Linux driver (i2c.c). Both send the CH341's 0xAA
stream as raw bytes, without the ``[command, length]`` frame of the CH347's SPI
commands, and both read an acknowledge status for every byte written with 0x80|n: 0x01
when the byte was acknowledged (the CH341 answers only a bare 0x80, bit 7 set for NACK).
The answers of a stream come in order, acknowledges and read bytes interleaved as their
commands were. Where they differ:

- packets: WCH starts a stream at every 512-byte USB packet (padding the rest of a
  packet with 0x00, the end command) and sends up to 4 KiB (8 packets) in one USB write,
  each packet asking for fewer than 512 answer bytes, then reads the answers; Zago sends
  one short stream per USB write (at most 63 bytes of data) and reads its answer. This
  module follows WCH: 8 packets a write, at most 510 answers a packet.
- runs: WCH caps every 0x80|n and 0xC0|n at 63 bytes (CH347_CMD_I2C_STM_MAX); Zago
  writes 0x80|n with n up to 63 as well. Both agree here.
- acknowledges: WCH's address probe (a bare 0x80) takes any non-zero answer as an
  acknowledge, its streams and Zago's require 0x01; this module requires 0x01.
- speeds: Zago's 0-3 (20, 100, 400, 750 kHz) are the CH341's; WCH adds 4-7 (50 kHz,
  200 kHz, 1 MHz, 2 MHz) on firmware 3.41 and later, which this backend does not use.
- the CH347F: WCH first switches its pins to I2C (command 0xE2, ch347_usb.switch_to_i2c);
  Zago's driver predates the CH347F.

In mode 2 (HID reports, app.hal.ch347_usb.HidReports) a report carries at most 510 bytes,
so the stream of a packet is at most 510 bytes and every packet is its own report (i2cy's
CH347-HIDAPI sends one stream a report, its answers, acknowledges and data, in one input
report); a packet still asks for at most 510 answers, which fit one input report.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from app.hal.errors import LinkError
from app.hal.wch_i2c import I2C_END, Dialect, Packet
from app.hal.wch_usb import WchHandle

PACKET = 512  # the USB packet a stream fills at most
PACKETS_PER_WRITE = 8  # WCH's 4 KiB transfer buffer
HID_PACKET = 510  # mode 2: what a HID report carries after its length
MAX_ANSWERS = 510
MAX_RUN = 0x3F
ACK = 0x01

Send = Callable[[WchHandle, Sequence[Packet]], bytes]


def _sender(packet: int, packets_per_write: int) -> Send:
    """Send ``packets_per_write`` packets of ``packet`` bytes a USB write (each but the
    last padded: the next stream starts a packet) and read their answers."""

    def send(handle: WchHandle, packets: Sequence[Packet]) -> bytes:
        reply = bytearray()
        for first in range(0, len(packets), packets_per_write):
            group = packets[first : first + packets_per_write]
            streams = [stream for stream, _answers in group]
            padded = [s.ljust(packet, bytes((I2C_END,))) for s in streams[:-1]] + streams[-1:]
            handle.write(b"".join(padded))
            expected = len(reply) + sum(answers for _stream, answers in group)
            while len(reply) < expected:
                want = expected - len(reply)
                chunk = handle.read(-(-want // packet) * packet)
                if not chunk:
                    break
                reply += chunk
            if len(reply) != expected:
                raise LinkError(f"CH347 answered {len(reply)} of {expected} I2C status/data bytes")
        return bytes(reply)

    return send


def _dialect(packet: int, packets_per_write: int) -> Dialect:
    return Dialect(
        packet=packet,
        max_answers=MAX_ANSWERS,
        max_run=MAX_RUN,
        counted_out=True,
        acked=lambda status: status == ACK,
        send=_sender(packet, packets_per_write),
    )


CH347_I2C = _dialect(PACKET, PACKETS_PER_WRITE)  # bulk transfers (mode 1, the CH347F)
CH347_HID_I2C = _dialect(HID_PACKET, 1)  # HID reports (the CH347T in mode 2)
