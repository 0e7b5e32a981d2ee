"""CH341A USB access: the device seam (pyusb), and the packet stream both buses use.

Protocol facts, checked against flashrom's programmers/ch341a_spi.c: the chip is USB
1a86:5512; commands go to bulk OUT endpoint 0x02 and answers come from bulk IN 0x82; the
chip runs its OUT stream one 32-byte USB packet at a time, each packet starting with a
command byte (0xA8 SPI stream, 0xAA I2C stream, 0xAB UIO stream) and answers each SPI
packet with one IN packet of as many bytes as it clocked (31 at most, so a short packet:
one answer per IN transfer). flashrom pads every UIO packet to 32 bytes and queues 32 IN
transfers while its OUT transfer runs: the chip holds few answers, and a host that wrote
a long stream before reading any would stall it. :func:`exchange` does the same with a
writer thread.

Nothing here imports pyusb at module level: ``import app.hal`` stays cheap.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from app.hal.errors import HalError, LinkError

CH341A_VID = 0x1A86
CH341A_PID = 0x5512
EP_OUT = 0x02
EP_IN = 0x82
PACKET = 32
#: packets per USB write (flashrom's CH341_MAX_PACKETS); a batch continues in more writes
MAX_PACKETS = 256
USB_TIMEOUT_MS = 1000
IN_CHUNK = 4096  # asked of each IN transfer (the chip's short packets end it sooner)


@dataclass(frozen=True)
class Ch341Device:
    """One CH341A on the USB bus. Most boards have no serial number (``serial`` "")."""

    bus: int
    address: int
    serial: str = ""
    accessible: bool = True
    error: str | None = None  # why it is not accessible

    @property
    def location(self) -> str:
        """``bus:address`` in decimal, as lsusb prints them (changes on a re-plug)."""
        return f"{self.bus}:{self.address}"


class Ch341Handle(Protocol):
    """An opened CH341A: bulk transfers on its two endpoints."""

    def write(self, data: bytes) -> None:
        """One bulk OUT transfer."""
        ...

    def read(self, size: int) -> bytes:
        """One bulk IN transfer: up to ``size`` bytes (the chip's short packet ends it)."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Ch341Backend:
    """Everything this backend takes from pyusb and the host, so tests can swap it."""

    find_devices: Callable[[], list[Ch341Device]]
    open: Callable[[Ch341Device], Ch341Handle]
    #: errors that mean the USB link failed (-> LinkError, site.link_lost)
    link_errors: tuple[type[BaseException], ...]
    sleep: Callable[[float], None] = time.sleep
    now: Callable[[], float] = time.monotonic


# -- the real thing -----------------------------------------------------------------


class PyUsbHandle:
    """A CH341A opened with pyusb (interface 0 claimed, kernel driver detached)."""

    def __init__(self, dev: Any) -> None:  # usb.core.Device (pyusb ships no type hints)
        self.dev = dev

    def write(self, data: bytes) -> None:
        self.dev.write(EP_OUT, data, USB_TIMEOUT_MS)

    def read(self, size: int) -> bytes:
        return bytes(self.dev.read(EP_IN, size, USB_TIMEOUT_MS))

    def close(self) -> None:
        import usb.util

        usb.util.dispose_resources(self.dev)


def pyusb_backend() -> Ch341Backend:
    """pyusb (installed with pyftdi); imported only when a ch341a:// URL is opened."""
    import usb.core
    import usb.util

    from app.hal.ftdi_usb import find_libusb_backend

    libusb = find_libusb_backend()

    def matches() -> list[Any]:
        try:
            found = usb.core.find(
                find_all=True, idVendor=CH341A_VID, idProduct=CH341A_PID, backend=libusb
            )
            return sorted(found, key=lambda d: (d.bus, d.address))
        except (usb.core.USBError, OSError, ValueError) as err:
            raise HalError(f"cannot enumerate USB devices: {err}") from None

    def find_devices() -> list[Ch341Device]:
        devices = []
        for dev in matches():
            serial, error = "", None
            try:
                if dev.iSerialNumber:
                    serial = usb.util.get_string(dev, dev.iSerialNumber) or ""
            except (usb.core.USBError, ValueError, NotImplementedError) as err:
                error = "permission denied" if "langid" in str(err) else str(err)
            finally:
                usb.util.dispose_resources(dev)
            devices.append(Ch341Device(dev.bus, dev.address, serial, error is None, error))
        return devices

    def open_device(device: Ch341Device) -> Ch341Handle:
        for dev in matches():
            if (dev.bus, dev.address) == (device.bus, device.address):
                try:
                    if dev.is_kernel_driver_active(0):
                        dev.detach_kernel_driver(0)
                except (NotImplementedError, usb.core.USBError):
                    pass  # no kernel driver to detach on this system
                dev.set_configuration()
                usb.util.claim_interface(dev, 0)
                return PyUsbHandle(dev)
        raise usb.core.USBError(f"CH341A at {device.location} is gone")

    return Ch341Backend(
        find_devices=find_devices, open=open_device, link_errors=(usb.core.USBError,)
    )


# -- the packet stream --------------------------------------------------------------


def exchange(handle: Ch341Handle, writes: Sequence[bytes], reply_len: int) -> bytes:
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
