"""FTDI USB devices: the MPSSE product table and enumeration (libusb, Linux sysfs).

Enumeration goes through pyusb with pyftdi's own backend loader
(``UsbTools.find_backend``) rather than ``UsbTools.find_all``: find_all reads every
device's serial string and gives up on the first device the user may not open (pyusb
raises "The device has no langid"), while a listing must show that device and say it is
not accessible. On Linux, sysfs adds what libusb cannot tell (or replaces libusb when it
is missing): the kernel driver bound to each interface and the device node's access.

Nothing here imports pyftdi or pyusb at module level: ``import app.hal`` stays cheap.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.core.package_data import udev_rules_file
from app.hal.errors import HalError

FTDI_VID = 0x0403


@dataclass(frozen=True)
class FtdiProduct:
    pid: int
    name: str  # chip name as printed on the part
    url_name: str  # pyftdi's product alias in ftdi:// URLs
    mpsse_interfaces: int  # interfaces 1..N are MPSSE-capable (A, B, ...)
    wide: bool  # 16 GPIO bits per interface (ADBUS + ACBUS); else ADBUS only


PRODUCTS: dict[int, FtdiProduct] = {
    0x6001: FtdiProduct(0x6001, "FT232R", "232r", 0, False),
    0x6010: FtdiProduct(0x6010, "FT2232H", "2232h", 2, True),
    0x6011: FtdiProduct(0x6011, "FT4232H", "4232h", 2, False),
    0x6014: FtdiProduct(0x6014, "FT232H", "232h", 1, True),
    0x6015: FtdiProduct(0x6015, "FT-X", "230x", 0, False),
    0x6043: FtdiProduct(0x6043, "FT4232HP", "4232hp", 2, False),
    0x6048: FtdiProduct(0x6048, "FT4232HA", "4232ha", 2, False),
}

#: pyftdi's product aliases (an ``ft`` prefix is accepted too) -> USB product id
PRODUCT_ALIASES: dict[str, int] = {
    "232": 0x6001,
    "232r": 0x6001,
    "232h": 0x6014,
    "2232": 0x6010,
    "2232c": 0x6010,
    "2232d": 0x6010,
    "2232h": 0x6010,
    "4232": 0x6011,
    "4232h": 0x6011,
    "4232ha": 0x6048,
    "4232hp": 0x6043,
    "ft-x": 0x6015,
    "230x": 0x6015,
    "231x": 0x6015,
    "234x": 0x6015,
}


def product_for(pid: int) -> FtdiProduct:
    return PRODUCTS.get(pid, FtdiProduct(pid, f"FTDI 0x{pid:04X}", f"0x{pid:04x}", 0, False))


@dataclass(frozen=True)
class UsbDeviceInfo:
    """One FTDI chip on the USB bus, as far as this user can see it."""

    vid: int
    pid: int
    bus: int | None
    address: int | None
    serial: str | None  # None when unreadable; "" when the chip has none
    description: str | None
    interfaces: int
    accessible: bool
    error: str | None = None  # why it is not accessible
    #: Linux: interface number (0-based) -> kernel driver bound to it (e.g. ftdi_sio)
    drivers: dict[int, str] = field(default_factory=dict)
    sysfs_name: str | None = None  # Linux: e.g. "1-2" (for unbind commands)
    node: str | None = None  # Linux: /dev/bus/usb/BBB/DDD

    @property
    def product(self) -> FtdiProduct:
        return product_for(self.pid)

    @property
    def vid_pid(self) -> str:
        return f"{self.vid:04x}:{self.pid:04x}"

    def url(self, interface: str = "1") -> str:
        """The ftdi:// URL that opens this chip (by serial number when it has one)."""
        return f"ftdi://ftdi:{self.product.url_name}:{locator(self)}/{interface}"


_INDEX_LIKE = re.compile(r"\s*\d+\s*(?:[KMkm]i?)?B?\s*")


def locator(dev: UsbDeviceInfo) -> str:
    """The part of a pyftdi URL after the product that selects this very chip.

    The serial number when it has a usable one; else ``bus:address`` in hex (pyftdi's
    form), which does not survive a re-plug. A serial pyftdi would read as a device index
    (digits, e.g. "12") is not usable as a selector.
    """
    sn = dev.serial or ""
    if sn and not _INDEX_LIKE.fullmatch(sn) and not set(sn) & set(":/?#&"):
        return sn
    if dev.bus is None or dev.address is None:
        return ""
    return f"{dev.bus:x}:{dev.address:x}"


def udev_rules_path() -> str:
    """Socketeer's udev rules file, as installed with the package."""
    return str(udev_rules_file())


def udev_fix() -> str:
    return (
        f"sudo cp {udev_rules_path()} /etc/udev/rules.d/ && sudo udevadm control --reload"
        " && sudo udevadm trigger"
    )


class UsbUnavailable(HalError):
    """No libusb backend: pyusb cannot talk to USB devices at all."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason or message


def libusb_fix(platform: str = sys.platform) -> str:
    if platform.startswith("linux"):
        return (
            "install libusb 1.0: `sudo apt install libusb-1.0-0` (Debian/Ubuntu) or"
            " `sudo dnf install libusb1` (Fedora)"
        )
    if platform == "darwin":
        return "install libusb: `brew install libusb`"
    if platform.startswith("win"):
        return (
            "install a libusb driver for the FTDI board with Zadig (libusb-win32, on the"
            " composite parent device, not on 'Interface N')"
        )
    return "install libusb 1.0 for this system"


def find_libusb_backend() -> object:
    """pyftdi's libusb backend; raises UsbUnavailable saying how to install it."""
    try:
        from pyftdi.usbtools import UsbTools

        return UsbTools.find_backend()
    except Exception as err:  # ValueError('No backend available'), ImportError, OSError
        reason = f"no libusb backend for pyusb ({err})"
        raise UsbUnavailable(f"{reason}: {libusb_fix()}", reason) from None


def find_usb(ours: Callable[[Any], bool]) -> list[Any]:
    """The pyusb devices ``ours`` accepts, in bus:address order. HalError when USB cannot
    be enumerated; UsbUnavailable without a libusb backend."""
    import usb.core

    libusb = find_libusb_backend()
    try:
        found = usb.core.find(find_all=True, custom_match=ours, backend=libusb)
        return sorted(found, key=lambda d: (d.bus, d.address))
    except (usb.core.USBError, OSError, ValueError) as err:
        raise HalError(f"cannot enumerate USB devices: {err}") from None


def serial_of(dev: Any) -> tuple[str, str | None]:
    """The serial number string of a pyusb device ("" when it has none) and why it could
    not be read (None when it could: the device is accessible); its resources are
    released."""
    import usb.core
    import usb.util

    try:
        if dev.iSerialNumber:
            return usb.util.get_string(dev, dev.iSerialNumber) or "", None
        return "", None
    except (usb.core.USBError, ValueError, NotImplementedError) as err:
        return "", access_error(err)
    finally:
        usb.util.dispose_resources(dev)


def enumerate_ftdi(vid: int = FTDI_VID) -> list[UsbDeviceInfo]:
    """Every chip of vendor ``vid`` (FTDI unless said) libusb sees, readable or not.
    Raises UsbUnavailable."""
    import usb.core
    import usb.util

    backend = find_libusb_backend()
    try:
        found = list(usb.core.find(find_all=True, idVendor=vid, backend=backend))
    except (usb.core.USBError, OSError, ValueError) as err:
        raise UsbUnavailable(f"cannot enumerate USB devices: {err}", str(err)) from None
    sysfs = {(d.bus, d.address): d for d in sysfs_ftdi_devices(vid=vid)}
    devices = []
    for dev in found:
        try:
            interfaces = max((cfg.bNumInterfaces for cfg in dev), default=0)
        except (usb.core.USBError, NotImplementedError, ValueError):
            interfaces = 0
        serial = description = error = None
        try:
            serial = usb.util.get_string(dev, dev.iSerialNumber) if dev.iSerialNumber else ""
            description = usb.util.get_string(dev, dev.iProduct) if dev.iProduct else ""
        except (usb.core.USBError, ValueError, NotImplementedError) as err:
            error = access_error(err)
        finally:
            usb.util.dispose_resources(dev)
        extra = sysfs.get((dev.bus, dev.address))
        if error is not None and extra is not None:  # sysfs reads what libusb may not
            serial, description = extra.serial, extra.description
        devices.append(
            UsbDeviceInfo(
                vid=dev.idVendor,
                pid=dev.idProduct,
                bus=dev.bus,
                address=dev.address,
                serial=serial,
                description=description,
                interfaces=interfaces or (extra.interfaces if extra else 0),
                accessible=error is None,
                error=error,
                drivers=dict(extra.drivers) if extra else {},
                sysfs_name=extra.sysfs_name if extra else None,
                node=extra.node if extra else None,
            )
        )
    devices.sort(key=lambda d: (d.bus or 0, d.address or 0))
    return devices


def access_error(err: BaseException) -> str:
    """Why a USB device could not be read: "permission denied" (the udev rules' case:
    libusb says "no langid", "Access denied" or errno 13), else the error's text."""
    text = str(err)
    if "langid" in text or "Access denied" in text or "Errno 13" in text:
        return "permission denied"
    return text or type(err).__name__


SYSFS_USB = Path("/sys/bus/usb/devices")


def sysfs_ftdi_devices(root: Path = SYSFS_USB, vid: int = FTDI_VID) -> list[UsbDeviceInfo]:
    """Linux only: FTDI chips from sysfs, with interface drivers and node access.

    Works without libusb and without permission on the device node.
    """
    if not root.is_dir():
        return []
    devices = []
    for path in sorted(root.iterdir()):
        if ":" in path.name or not (path / "idVendor").is_file():
            continue
        if _read(path / "idVendor") != f"{vid:04x}":
            continue
        try:
            pid = int(_read(path / "idProduct") or "0", 16)
            bus = int(_read(path / "busnum") or "0")
            address = int(_read(path / "devnum") or "0")
            interfaces = int((_read(path / "bNumInterfaces") or "0").strip() or 0)
        except ValueError:
            continue
        drivers: dict[int, str] = {}
        for intf in path.glob(f"{path.name}:*"):
            number = _read(intf / "bInterfaceNumber")
            driver = intf / "driver"
            if number is not None and driver.exists():
                drivers[int(number, 16)] = driver.resolve().name
        node = f"/dev/bus/usb/{bus:03d}/{address:03d}"
        accessible = os.access(node, os.R_OK | os.W_OK)
        devices.append(
            UsbDeviceInfo(
                vid=vid,
                pid=pid,
                bus=bus,
                address=address,
                serial=_read(path / "serial") or "",
                description=_read(path / "product"),
                interfaces=interfaces,
                accessible=accessible,
                error=None if accessible else f"no read/write access to {node}",
                drivers=drivers,
                sysfs_name=path.name,
                node=node,
            )
        )
    return devices


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None
