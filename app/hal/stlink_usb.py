"""ST-LINK USB access: the probes' USB ids and endpoints, the device seam the ST-LINK
driver (app.hal.stlink) is written against, and the pyusb implementation of it.

USB facts, from OpenOCD's src/jtag/drivers/stlink_usb.c (the STLINK_*_PID defines and
the endpoint choice in stlink_usb_usb_open) and pyOCD's pyocd/probe/stlink/usb.py
(USB_PID_EP_MAP), which agree where both list a product:

- vendor 0x0483 (STMicroelectronics); the debug interface is interface 0;
- ST-LINK/V2 (0x3748) takes commands on bulk OUT 0x02; ST-LINK/V2-1 (0x374B, 0x3752
  without mass storage, 0x374A per pyOCD) and STLINK-V3 (0x374E V3E, 0x374F V3SET,
  0x3753 two virtual COM ports, 0x3754 V3E without mass storage, 0x3757 V3PWR) on bulk
  OUT 0x01; all answer on bulk IN 0x81;
- 0x374D and 0x3755 are the STLINK-V3 / V3PWR USB loader (the firmware updater's mode):
  no debug commands there.

The driver sees only :class:`StlinkBackend` (find the probes, open one), which the tests
swap for a packet-level fake (tests/stlink_fake.py). Nothing here imports pyusb at module
level.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from app.hal.usb_naming import location

ST_VID = 0x0483
DEBUG_INTERFACE = 0
EP_IN = 0x81
USB_TIMEOUT_MS = 1000
#: the IN endpoint's largest packet on full speed (V2, V2-1): a read asks for at least it
FULL_SPEED_PACKET = 64


@dataclass(frozen=True)
class StlinkModel:
    """A USB product id of ST's: which probe, and where it takes commands."""

    name: str
    ep_out: int
    loader: bool = False  # the firmware-update loader, not a debug probe


PRODUCTS: dict[int, StlinkModel] = {
    0x3748: StlinkModel("ST-LINK/V2", 0x02),
    0x374A: StlinkModel("ST-LINK/V2-1 (audio)", 0x01),
    0x374B: StlinkModel("ST-LINK/V2-1", 0x01),
    0x3752: StlinkModel("ST-LINK/V2-1 (no mass storage)", 0x01),
    0x374E: StlinkModel("STLINK-V3E", 0x01),
    0x374F: StlinkModel("STLINK-V3SET", 0x01),
    0x3753: StlinkModel("STLINK-V3 (two VCPs)", 0x01),
    0x3754: StlinkModel("STLINK-V3E (no mass storage)", 0x01),
    0x3757: StlinkModel("STLINK-V3PWR", 0x01),
    0x374D: StlinkModel("STLINK-V3 in its USB loader", 0x01, loader=True),
    0x3755: StlinkModel("STLINK-V3PWR in its USB loader", 0x01, loader=True),
}


class StlinkDevice(Protocol):
    """One probe on the USB bus, as enumerated (before it is opened)."""

    @property
    def bus(self) -> int: ...

    @property
    def address(self) -> int: ...

    @property
    def serial(self) -> str: ...

    @property
    def product(self) -> int: ...

    @property
    def accessible(self) -> bool: ...

    @property
    def error(self) -> str | None: ...


class StlinkHandle(Protocol):
    """An opened probe: bulk transfers on its command and answer endpoints."""

    def write(self, data: bytes) -> None:
        """One bulk OUT transfer."""
        ...

    def read(self, size: int) -> bytes:
        """One bulk IN transfer of up to ``size`` bytes."""
        ...

    def close(self) -> None: ...


class StlinkBackend(Protocol):
    """Everything the ST-LINK driver takes from pyusb, so tests can swap it."""

    @property
    def link_errors(self) -> tuple[type[BaseException], ...]:
        """Errors that mean the USB link failed (-> LinkError, the site's link_lost)."""
        ...

    def find_devices(self) -> list[StlinkDevice]: ...

    def open(self, device: StlinkDevice) -> StlinkHandle: ...


def readable_serial(raw: str) -> str:
    """The serial number as ST's tools print it. Some ST-LINK/V2 (and many clones) send
    12 raw bytes as their serial string; OpenOCD (stlink_usb_get_alternate_serial) and
    pyOCD (STLinkUSBInterface.__init__) print those bytes as 24 hex digits."""
    if len(raw) == 12 and not (raw.isascii() and raw.isprintable()):
        return "".join(f"{ord(c) & 0xFF:02X}" for c in raw)
    return raw


# -- the real thing -----------------------------------------------------------------


@dataclass(frozen=True)
class UsbStlinkDevice:
    bus: int
    address: int
    serial: str
    product: int
    accessible: bool = True
    error: str | None = None


class PyUsbHandle:
    """A probe opened with pyusb (interface 0 claimed)."""

    def __init__(self, dev: Any, ep_out: int) -> None:  # usb.core.Device: no type hints
        self.dev = dev
        self.ep_out = ep_out

    def write(self, data: bytes) -> None:
        self.dev.write(self.ep_out, data, USB_TIMEOUT_MS)

    def read(self, size: int) -> bytes:
        # a read shorter than the endpoint's packet would overflow when a packet comes
        answer = self.dev.read(EP_IN, max(size, FULL_SPEED_PACKET), USB_TIMEOUT_MS)
        return bytes(answer[:size])

    def close(self) -> None:
        import usb.util

        try:
            usb.util.release_interface(self.dev, DEBUG_INTERFACE)
        finally:
            usb.util.dispose_resources(self.dev)


@dataclass(frozen=True)
class PyUsbBackend:
    find_devices: Callable[[], list[StlinkDevice]]
    open: Callable[[StlinkDevice], StlinkHandle]
    link_errors: tuple[type[BaseException], ...]


def pyusb_backend() -> PyUsbBackend:
    """pyusb (installed with pyftdi); imported only when an stlink:// URL is opened."""
    import usb.core
    import usb.util

    from app.hal.ftdi_usb import find_usb, serial_of

    def matches() -> list[Any]:
        return find_usb(lambda dev: dev.idVendor == ST_VID and dev.idProduct in PRODUCTS)

    def find_devices() -> list[StlinkDevice]:
        devices: list[StlinkDevice] = []
        for dev in matches():
            raw, error = serial_of(dev)
            serial = readable_serial(raw)
            devices.append(
                UsbStlinkDevice(dev.bus, dev.address, serial, dev.idProduct, error is None, error)
            )
        return devices

    def open_device(device: StlinkDevice) -> StlinkHandle:
        for dev in matches():
            if (dev.bus, dev.address) == (device.bus, device.address):
                try:  # configured already: setting it again would reset the probe's VCP
                    dev.get_active_configuration()
                except usb.core.USBError:
                    dev.set_configuration()
                usb.util.claim_interface(dev, DEBUG_INTERFACE)
                _drain(dev)
                return PyUsbHandle(dev, PRODUCTS[dev.idProduct].ep_out)
        raise usb.core.USBError(f"ST-LINK at {location(device)} is gone")

    def _drain(dev: Any) -> None:
        """Drop answers a previous session left unread (as pyOCD's _flush_rx does), so
        the first command's answer is its own."""
        for _ in range(64):
            try:
                dev.read(EP_IN, 512, 5)
            except usb.core.USBError:  # the timeout that says nothing is left
                return

    return PyUsbBackend(find_devices, open_device, (usb.core.USBError,))
