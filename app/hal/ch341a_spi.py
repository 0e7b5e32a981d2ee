"""SPI on a CH341A, batched: every /CS-framed operation of a batch in as few USB writes
as the chip's packet rules allow.

Facts from flashrom's programmers/ch341a_spi.c: /CS is pin D0 (active low), driven with
the UIO stream (0xAB: 0x80|pins sets D0-D5, 0x40|mask sets their directions, 0x20 ends
the stream), and flashrom frames a command as "D0 high, high, high (a short delay),
low" in one padded UIO packet. The SPI stream (0xA8) is full duplex: the chip clocks out
each byte after the command byte of the packet (31 at most) and answers the byte it
clocked in, both least significant bit first, so the host bit-reverses every byte;
flashrom clocks 0xFF while reading. The clock is fixed (commonly measured at about
1.5 MHz; flashrom has no setting for it).

Batching: a packet shorter than 32 bytes must end its USB write (ch341a_usb.pack), so an
operation that only writes (WREN, PAGE PROGRAM, an erase) ends one, while a reading
operation is padded with extra read clocks up to a whole packet (reading on is harmless
for every read command of a memory part), and any number of reads, of any length, share
one write. WREN + PAGE PROGRAM + the first status read are three writes whose answers
are read in one pass (ch341a_usb.exchange).

WaitReady is polled from the host on the learned schedule of app.hal.busy_poll, its first
status read sent with the command.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Protocol

from app.hal.bus import SpiStep, WaitReady
from app.hal.busy_poll import BusyPoller, wait_on_host
from app.hal.ch341a_usb import PACKET, exchange, pack
from app.hal.errors import HalError
from app.hal.wch_usb import WchHandle

SPI_STREAM = 0xA8
UIO_STREAM = 0xAB
UIO_OUT = 0x80
UIO_DIR = 0x40
UIO_END = 0x20
#: D0-D2 (chip selects) high, D3 (SCK) low, D4 and D5 (MOSI) high
CS_HIGH = UIO_OUT | 0x37
CS_LOW = UIO_OUT | 0x36
OUTPUTS = 0x3F  # D0-D5 driven; D7 is MISO
SPI_PAYLOAD = PACKET - 1
CLOCK_HZ = 1_500_000
#: bit-reversal of every byte value, for bytes.translate
REVERSE = bytes(int(f"{value:08b}"[::-1], 2) for value in range(256))


def uio_packet(*commands: int) -> bytes:
    """A UIO stream packet, padded to a whole USB packet as flashrom pads it."""
    return bytes((UIO_STREAM, *commands, UIO_END)).ljust(PACKET, b"\x00")


def pins_packet(enable: bool) -> bytes:
    """/CS high, then the SPI outputs driven (or released: inputs)."""
    return uio_packet(CS_HIGH, UIO_DIR | (OUTPUTS if enable else 0))


class SpiLink(Protocol):
    """What the bus needs from its site (ch341a.Ch341Site)."""

    sleep: Callable[[float], None]
    now: Callable[[], float]

    def io(self, what: str) -> AbstractContextManager[WchHandle]:
        """Lock the board; map USB errors to LinkError (and mark the link lost)."""
        ...


class Batch:
    """The packets of /CS-framed operations and where each one's answer lies."""

    def __init__(self) -> None:
        self.packets: list[bytes] = []
        self.reply_len = 0
        self.reads: list[tuple[int, int, int]] = []  # (result slot, reply offset, length)

    def frame(self, write: bytes, read_len: int, slot: int) -> None:
        self.packets.append(uio_packet(CS_HIGH, CS_HIGH, CS_HIGH, CS_LOW))
        stream = write.translate(REVERSE) + b"\xff" * read_len
        if read_len:
            self.reads.append((slot, self.reply_len + len(write), read_len))
            stream += b"\xff" * (-len(stream) % SPI_PAYLOAD)  # read on to a whole packet
        for pos in range(0, len(stream), SPI_PAYLOAD):
            self.packets.append(bytes((SPI_STREAM,)) + stream[pos : pos + SPI_PAYLOAD])
        self.reply_len += len(stream)

    def run(self, handle: WchHandle, results: list[bytes]) -> None:
        """Send the batch (ending with /CS high) and store each read's answer."""
        reply = exchange(handle, pack([*self.packets, uio_packet(CS_HIGH)]), self.reply_len)
        for slot, offset, length in self.reads:
            results[slot] = reply[offset : offset + length].translate(REVERSE)


class Ch341SpiBus:
    """SpiBus on a CH341A (see the module docstring for the batching)."""

    max_clock_hz = CLOCK_HZ

    def __init__(self, link: SpiLink) -> None:
        self.link = link
        self.poller = BusyPoller()  # reset when the site powers up for a cycle

    def set_clock(self, hz: int) -> int:
        """The clock is fixed: a part that cannot take it is refused, not overclocked."""
        if hz < CLOCK_HZ:
            raise HalError(
                f"the CH341A clocks SPI at a fixed {CLOCK_HZ / 1e6:g} MHz, above this part's"
                f" maximum of {hz / 1e6:g} MHz: use another programmer"
            )
        return CLOCK_HZ

    def transfer(self, ops: Sequence[SpiStep]) -> list[bytes]:
        results: list[bytes] = [b""] * len(ops)
        with self.link.io("an SPI transfer") as handle:
            batch = Batch()
            for slot, op in enumerate(ops):
                if isinstance(op, WaitReady):
                    batch.frame(bytes((op.opcode,)), 1, slot)
                    batch.run(handle, results)
                    self._wait(handle, op, slot, results)
                    batch = Batch()
                else:
                    batch.frame(op.write, op.read_len, slot)
            if batch.packets:
                batch.run(handle, results)
        return results

    def _wait(self, handle: WchHandle, op: WaitReady, slot: int, results: list[bytes]) -> None:
        """The first status read went with the command; poll on until ready."""

        def read_status() -> int:
            poll = Batch()
            poll.frame(bytes((op.opcode,)), 1, slot)
            poll.run(handle, results)
            return results[slot][0]

        link = self.link
        wait_on_host(self.poller, op, results[slot][0], read_status, link.now, link.sleep)
