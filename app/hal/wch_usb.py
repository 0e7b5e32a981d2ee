"""USB access shared by the WCH programmer chips (CH341A, CH347): the device seam the
backends are written against, and the pyusb implementation of it.

Each chip is one :class:`UsbChip` (its USB ids, the vendor interface to claim and its
two bulk endpoints); everything above the seam (app.hal.wch_board, the chips' buses)
sees only :class:`WchBackend`, which the tests swap for packet-level fakes.

Nothing here imports pyusb at module level: ``import app.hal`` stays cheap.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

USB_TIMEOUT_MS = 1000


@dataclass(frozen=True)
class WchDevice:
    """One board on the USB bus. Most boards have no serial number (``serial`` "")."""

    bus: int
    address: int
    serial: str = ""
    accessible: bool = True
    error: str | None = None  # why it is not accessible
    product: int = 0  # the USB product id: which variant of the chip

    @property
    def location(self) -> str:
        """``bus:address`` in decimal, as lsusb prints them (changes on a re-plug)."""
        return f"{self.bus}:{self.address}"


class WchHandle(Protocol):
    """An opened board: transfers on its two endpoints (bulk; interrupt in HID modes)."""

    def write(self, data: bytes) -> None:
        """One bulk OUT transfer."""
        ...

    def read(self, size: int) -> bytes:
        """One bulk IN transfer: up to ``size`` bytes (a short USB packet ends it)."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class WchBackend:
    """Everything a WCH backend takes from pyusb and the host, so tests can swap it."""

    find_devices: Callable[[], list[WchDevice]]
    open: Callable[[WchDevice], WchHandle]
    #: errors that mean the USB link failed (-> LinkError, site.link_lost)
    link_errors: tuple[type[BaseException], ...]
    sleep: Callable[[float], None] = time.sleep
    now: Callable[[], float] = time.monotonic


@dataclass(frozen=True)
class UsbChip:
    """How one chip appears on USB."""

    name: str
    vendor: int
    #: product id -> the number of the interface that carries the bulk endpoints
    interfaces: Mapping[int, int]
    ep_out: int
    ep_in: int


# -- the real thing -----------------------------------------------------------------


class PyUsbHandle:
    """A board opened with pyusb (its interface claimed, kernel driver detached).

    ``Device.write`` and ``Device.read`` pick the transfer from the endpoint's type (bulk,
    or interrupt as on the CH347T's HID interface in mode 2), so one handle serves both."""

    def __init__(self, dev: Any, chip: UsbChip) -> None:  # usb.core.Device: no type hints
        self.dev = dev
        self.chip = chip

    def write(self, data: bytes) -> None:
        self.dev.write(self.chip.ep_out, data, USB_TIMEOUT_MS)

    def read(self, size: int) -> bytes:
        return bytes(self.dev.read(self.chip.ep_in, size, USB_TIMEOUT_MS))

    def close(self) -> None:
        import usb.util

        usb.util.dispose_resources(self.dev)


def pyusb_backend(chip: UsbChip) -> WchBackend:
    """pyusb (installed with pyftdi); imported only when a URL of the chip is opened."""
    import usb.core
    import usb.util

    from app.hal.ftdi_usb import find_usb, serial_of

    def matches() -> list[Any]:
        return find_usb(
            lambda dev: dev.idVendor == chip.vendor and dev.idProduct in chip.interfaces
        )

    def find_devices() -> list[WchDevice]:
        devices = []
        for dev in matches():
            serial, error = serial_of(dev)
            devices.append(
                WchDevice(dev.bus, dev.address, serial, error is None, error, dev.idProduct)
            )
        return devices

    def open_device(device: WchDevice) -> WchHandle:
        for dev in matches():
            if (dev.bus, dev.address) == (device.bus, device.address):
                interface = chip.interfaces[dev.idProduct]
                try:
                    if dev.is_kernel_driver_active(interface):
                        dev.detach_kernel_driver(interface)
                except (NotImplementedError, usb.core.USBError):
                    pass  # no kernel driver to detach on this system
                try:  # configured already: setting it again would reset the interfaces
                    dev.get_active_configuration()  # the kernel holds (the CH347's UART)
                except usb.core.USBError:
                    dev.set_configuration()
                usb.util.claim_interface(dev, interface)
                return PyUsbHandle(dev, chip)
        raise usb.core.USBError(f"{chip.name} at {device.location} is gone")

    return WchBackend(find_devices=find_devices, open=open_device, link_errors=(usb.core.USBError,))
