"""CMSIS-DAP probes on USB: finding them, and the device seam the link is written
against (tests swap it for a packet-level fake, as app.hal.wch_usb does for the WCH chips).

How a probe shows itself (ARM CMSIS-DAP specification, "USB device configuration":
Documentation/Doxygen/src/dap_firmware.md and dap_config of github.com/ARM-software/CMSIS-DAP;
pyOCD's pyocd/probe/pydapaccess/interface/common.py, pyusb_backend.py, pyusb_v2_backend.py
for the quirks):

- v2: a vendor-class interface whose interface string contains "CMSIS-DAP", with a bulk
  OUT and a bulk IN endpoint (a third, SWO, may follow); packets up to the endpoint size
  (512 on high speed, 64 on full speed), an answer ends with a short packet;
- v1: a HID interface of a device whose product (or interface) string contains
  "CMSIS-DAP"; commands are HID reports of the report size (64 on full speed) sent on the
  interrupt OUT endpoint, or by SET_REPORT control transfers (bmRequestType 0x21, bRequest
  0x09, wValue 0x0200 output report) where the interface has none; the kernel's HID driver
  is detached first on Linux;
- probes known by USB id (pyOCD's udev/50-cmsis-dap.rules and 50-picoprobe.rules; the
  Raspberry Pi Debug Probe's 2e8a:000c as in raspberrypi/debugprobe and the Raspberry Pi
  documentation) are listed even when their strings cannot be read (no permission yet).

Nothing here imports pyusb at module level.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.hal.cmsis_dap import DapHandle
from app.hal.errors import HalError
from app.hal.ftdi_usb import access_error

USB_TIMEOUT_MS = 1000
DAP_STRING = "CMSIS-DAP"
CLASS_HID, CLASS_VENDOR = 0x03, 0xFF

#: USB ids of common CMSIS-DAP probes (sources in the module docstring)
KNOWN_PROBES: dict[tuple[int, int], str] = {
    (0x0D28, 0x0204): "Arm DAPLink",
    (0x2E8A, 0x000C): "Raspberry Pi Debug Probe",
    (0x2E8A, 0x0004): "Raspberry Pi picoprobe",
    (0x1FC9, 0x0090): "NXP LPC-Link2",
    (0x1FC9, 0x0143): "NXP MCU-Link",
    (0x03EB, 0x2141): "Microchip Atmel-ICE",
    (0x03EB, 0x2111): "Microchip EDBG",
    (0x04B4, 0xF155): "Cypress KitProg3 (bulk)",
    (0xC251, 0x2750): "Keil ULINKplus",
}


@dataclass(frozen=True)
class DapProbe:
    """One CMSIS-DAP probe on the USB bus."""

    vid: int
    pid: int
    bus: int
    address: int
    serial: str  # "" when the probe has none (or it cannot be read)
    product: str
    version: int  # 1: HID, 2: bulk; 0: not known (strings unreadable)
    interface: int = 0
    accessible: bool = True
    error: str | None = None  # why it is not accessible

    @property
    def vid_pid(self) -> str:
        return f"{self.vid:04x}:{self.pid:04x}"

    @property
    def url(self) -> str:
        return f"cmsis-dap://{self.serial}"

    @property
    def label(self) -> str:
        return f"{self.product or KNOWN_PROBES.get((self.vid, self.pid), 'CMSIS-DAP')}" + (
            f" {self.serial}" if self.serial else f" (bus {self.bus} address {self.address})"
        )


@dataclass(frozen=True)
class DapBackend:
    """Everything the backend takes from pyusb, so tests can swap it."""

    find_probes: Callable[[], list[DapProbe]]
    open: Callable[[DapProbe], DapHandle]
    #: errors that mean the USB link failed (-> LinkError, site.link_lost)
    link_errors: tuple[type[BaseException], ...]


# -- the real thing -----------------------------------------------------------------


class PyUsbBulkHandle:
    """A v2 probe: bulk OUT and IN endpoints of its vendor interface."""

    report_size = None

    def __init__(self, dev: Any, ep_out: Any, ep_in: Any) -> None:
        self.dev, self.ep_out, self.ep_in = dev, ep_out, ep_in
        self.packet_size: int = ep_in.wMaxPacketSize  # until DAP_Info tells the real one

    def write(self, data: bytes) -> None:
        self.ep_out.write(data, USB_TIMEOUT_MS)
        # a command shorter than the DAP packet but a whole number of USB packets is
        # ended by a zero-length packet (as pyOCD's pyusb_v2_backend.py does)
        if len(data) < self.packet_size and len(data) % self.ep_out.wMaxPacketSize == 0:
            self.ep_out.write(b"", USB_TIMEOUT_MS)

    def read(self) -> bytes:
        # one answer: at most a DAP packet (a short USB packet ends it sooner)
        return bytes(self.ep_in.read(self.packet_size, USB_TIMEOUT_MS))

    def close(self) -> None:
        import usb.util

        usb.util.dispose_resources(self.dev)


class PyUsbHidHandle:
    """A v1 probe: HID reports (the link pads them to ``report_size``, the interrupt
    endpoint's packet size) on the interrupt endpoints, or by SET_REPORT where the
    interface has no OUT endpoint."""

    def __init__(self, dev: Any, interface: int, ep_out: Any | None, ep_in: Any) -> None:
        self.dev, self.interface, self.ep_out, self.ep_in = dev, interface, ep_out, ep_in
        self.report_size: int = ep_in.wMaxPacketSize
        self.packet_size: int = self.report_size

    def write(self, data: bytes) -> None:
        if self.ep_out is not None:
            self.ep_out.write(data, USB_TIMEOUT_MS)
        else:  # HID SET_REPORT (output report 0) on the control endpoint
            self.dev.ctrl_transfer(0x21, 0x09, 0x0200, self.interface, data, USB_TIMEOUT_MS)

    def read(self) -> bytes:
        return bytes(self.ep_in.read(self.report_size, USB_TIMEOUT_MS))

    def close(self) -> None:
        import usb.util

        usb.util.release_interface(self.dev, self.interface)
        usb.util.dispose_resources(self.dev)


def _endpoints(interface: Any, kind: int) -> tuple[Any | None, Any | None]:
    import usb.util

    out = inp = None
    for ep in interface:
        if usb.util.endpoint_type(ep.bmAttributes) != kind:
            continue
        if usb.util.endpoint_direction(ep.bEndpointAddress) == usb.util.ENDPOINT_IN:
            inp = inp or ep
        else:
            out = out or ep
    return out, inp


def _describe(dev: Any) -> DapProbe | None:
    """A device as a CMSIS-DAP probe (v2 preferred over v1), or None if it is not one."""
    import usb.core
    import usb.util

    known = (dev.idVendor, dev.idProduct) in KNOWN_PROBES
    try:
        product = usb.util.get_string(dev, dev.iProduct) if dev.iProduct else ""
        serial = usb.util.get_string(dev, dev.iSerialNumber) if dev.iSerialNumber else ""
        found: tuple[int, int] | None = None
        for interface in dev.get_active_configuration():
            name = ""
            if interface.iInterface:
                name = usb.util.get_string(dev, interface.iInterface) or ""
            if interface.bInterfaceClass == CLASS_VENDOR and DAP_STRING in name:
                out, inp = _endpoints(interface, usb.util.ENDPOINT_TYPE_BULK)
                if out is not None and inp is not None:
                    found = (2, interface.bInterfaceNumber)
                    break
            dap_hid = DAP_STRING in name or DAP_STRING in (product or "")
            if interface.bInterfaceClass == CLASS_HID and found is None and dap_hid:
                found = (1, interface.bInterfaceNumber)
    except (usb.core.USBError, ValueError, NotImplementedError) as err:
        if not known:
            return None  # an unreadable device that is not a known probe: not ours
        return DapProbe(
            dev.idVendor,
            dev.idProduct,
            dev.bus,
            dev.address,
            "",
            KNOWN_PROBES[(dev.idVendor, dev.idProduct)],
            0,
            accessible=False,
            error=access_error(err),
        )
    finally:
        usb.util.dispose_resources(dev)
    if found is None:
        return None
    return DapProbe(
        dev.idVendor, dev.idProduct, dev.bus, dev.address, serial or "", product or "", *found
    )


def pyusb_backend() -> DapBackend:
    """pyusb (installed with pyftdi); imported only when a cmsis-dap:// URL is opened or
    the probes are listed."""
    import usb.core
    import usb.util

    from app.hal.ftdi_usb import find_libusb_backend

    libusb = find_libusb_backend()

    def devices() -> list[Any]:
        try:
            found = usb.core.find(find_all=True, backend=libusb)
            return sorted(found, key=lambda d: (d.bus, d.address))
        except (usb.core.USBError, OSError, ValueError) as err:
            raise HalError(f"cannot enumerate USB devices: {err}") from None

    def find_probes() -> list[DapProbe]:
        return [p for p in (_describe(dev) for dev in devices()) if p is not None]

    def open_probe(probe: DapProbe) -> DapHandle:
        for dev in devices():
            if (dev.bus, dev.address) != (probe.bus, probe.address):
                continue
            config = dev.get_active_configuration()
            interface = next(i for i in config if i.bInterfaceNumber == probe.interface)
            if probe.version == 1:
                try:
                    if dev.is_kernel_driver_active(probe.interface):
                        dev.detach_kernel_driver(probe.interface)
                except (NotImplementedError, usb.core.USBError):
                    pass  # no kernel driver to detach here (macOS, Windows)
            usb.util.claim_interface(dev, probe.interface)
            if probe.version == 2:
                out, inp = _endpoints(interface, usb.util.ENDPOINT_TYPE_BULK)
                return PyUsbBulkHandle(dev, out, inp)
            out, inp = _endpoints(interface, usb.util.ENDPOINT_TYPE_INTR)
            if inp is None:
                raise usb.core.USBError(f"{probe.label}: its HID interface has no IN endpoint")
            return PyUsbHidHandle(dev, probe.interface, out, inp)
        raise usb.core.USBError(f"{probe.label} is gone")

    return DapBackend(find_probes=find_probes, open=open_probe, link_errors=(usb.core.USBError,))
