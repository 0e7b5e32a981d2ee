"""CH341A USB access: the chip on the WCH device seam (app.hal.wch_usb), and the packet
stream both buses use.

Protocol facts, checked against flashrom's programmers/ch341a_spi.c: the chip is USB
1a86:5512; commands go to bulk OUT endpoint 0x02 and answers come from bulk IN 0x82; the
chip runs its OUT stream one 32-byte USB packet at a time, each packet starting with a
command byte (0xA8 SPI stream, 0xAA I2C stream, 0xAB UIO stream) and answers each SPI
packet with one IN packet of as many bytes as it clocked (31 at most, so a short packet:
one answer per IN transfer). flashrom pads every UIO packet to 32 bytes and queues 32 IN
transfers while its OUT transfer runs: the chip holds few answers, and a host that wrote
a long stream before reading any would stall it. :func:`exchange` does the same with a
writer thread.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from app.hal import wch_usb
from app.hal.errors import LinkError
from app.hal.wch_usb import UsbChip, WchBackend, WchHandle

CH341A_VID = 0x1A86
CH341A_PID = 0x5512
EP_OUT = 0x02
EP_IN = 0x82
PACKET = 32
#: packets per USB write (flashrom's CH341_MAX_PACKETS); a batch continues in more writes
MAX_PACKETS = 256
IN_CHUNK = 4096  # asked of each IN transfer (the chip's short packets end it sooner)


CH341A = UsbChip("CH341A", CH341A_VID, {CH341A_PID: 0}, EP_OUT, EP_IN)


def pyusb_backend() -> WchBackend:
    """pyusb (installed with pyftdi); imported only when a ch341a:// URL is opened."""
    return wch_usb.pyusb_backend(CH341A)


# -- the packet stream --------------------------------------------------------------


def exchange(handle: WchHandle, writes: Sequence[bytes], reply_len: int) -> bytes:
    """Send ``writes`` (one USB transfer each) and return the ``reply_len`` bytes the
    chip answers, read while the writes go out (see the module docstring)."""
    if not reply_len:
        for data in writes:
            handle.write(data)
        return b""
    failed: list[BaseException] = []

    def write_all() -> None:
        try:
            for data in writes:
                handle.write(data)
        except BaseException as err:  # handed to the reading thread
            failed.append(err)

    writer = threading.Thread(target=write_all, name=f"{threading.current_thread().name}-usb")
    writer.start()
    reply = bytearray()
    try:
        while len(reply) < reply_len and not failed:
            chunk = handle.read(min(IN_CHUNK, reply_len - len(reply)))
            if not chunk:
                break
            reply += chunk
    finally:
        writer.join()
    if failed:
        raise failed[0]
    if len(reply) != reply_len:
        raise LinkError(f"CH341A answered {len(reply)} of {reply_len} bytes")
    return bytes(reply)


def pack(packets: Sequence[bytes]) -> list[bytes]:
    """Join packets into USB writes. A packet shorter than 32 bytes ends its write: the
    chip takes a USB packet's length as the command's, so a short packet followed by
    more bytes in the same transfer would swallow the start of the next command."""
    writes: list[bytes] = []
    current = bytearray()
    count = 0
    for packet in packets:
        current += packet
        count += 1
        if len(packet) < PACKET or count == MAX_PACKETS:
            writes.append(bytes(current))
            current.clear()
            count = 0
    if current:
        writes.append(bytes(current))
    return writes
