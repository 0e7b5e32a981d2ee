"""Hardware diagnosis: which programmers this computer sees (FTDI and WCH CH341A/CH347
devices over libusb or Linux sysfs, CMSIS-DAP probes over libusb, serial ports), and what
keeps Socketeer from using them, each problem with
devices over libusb or Linux sysfs, ST-LINK probes, serial ports), and what keeps
Socketeer from using them, each problem with
the exact command that fixes it. The CLI (`socketeer hw`) and the window show these
findings; nothing here needs a device or libusb: a missing backend is itself a finding.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from app.hal.cmsis_dap_usb import DapProbe
from app.hal.errors import HalError
from app.hal.ftdi_usb import (
    UsbDeviceInfo,
    UsbUnavailable,
    enumerate_ftdi,
    libusb_fix,
    sysfs_ftdi_devices,
    udev_fix,
)
from app.hal.stlink import V2_DAP_REGISTERS, V2_MEM_16BIT
from app.hal.usb_naming import shared_serials

if TYPE_CHECKING:
    from app.hal.stlink_programmer import ProbeListing

#: what a USB serial port's VID:PID usually is (serprog boards and USB-serial bridges)
KNOWN_SERIAL_BOARDS: dict[tuple[int, int], str] = {
    (0x2E8A, 0x000A): "Raspberry Pi Pico (serprog firmware)",
    (0x0483, 0x5740): "STM32 virtual COM port (e.g. stm32-vserprog)",
    (0x2341, 0x0043): "Arduino Uno",
    (0x2341, 0x0001): "Arduino Uno (first revision)",
    (0x1A86, 0x7523): "CH340 USB-serial (Arduino clones, adapters)",
    (0x1A86, 0x5523): "CH341 in serial mode (a CH341A programmer with its jumper on UART)",
    (0x10C4, 0xEA60): "Silicon Labs CP210x USB-serial",
    (0x0403, 0x6001): "FTDI FT232R USB-serial",
    (0x0403, 0x6015): "FTDI FT-X USB-serial",
}
SERPROG_BOARDS = {(0x2E8A, 0x000A), (0x0483, 0x5740)}

WCH_VID = 0x1A86


@dataclass(frozen=True)
class WchChip:
    """A WCH USB bridge as it enumerates: its name, the URL scheme that drives it in
    this mode (None: not in this mode), and what to do otherwise."""

    name: str
    scheme: str | None
    advice: str = ""


#: WCH product IDs of the programmer chips, in each USB mode they come up in. The CH347T's
#: mode is read from its DTR1/RTS1 pins at power-up (mode 1: DTR1 high, RTS1 low).
WCH_CHIPS: dict[int, WchChip] = {
    0x5512: WchChip("CH341A", "ch341a"),
    0x55DB: WchChip("CH347T", "ch347"),
    0x55DC: WchChip("CH347T in mode 2 (HID)", "ch347"),
    0x55DE: WchChip("CH347F", "ch347"),
    0x55DA: WchChip("CH347T in mode 0 (two UARTs)", None, "set mode 1 or 2 for SPI and I2C"),
    0x55DD: WchChip("CH347T in mode 3 (UART + JTAG)", None, "set mode 1 or 2 for SPI and I2C"),
}
#: the CH347T in mode 2: its SPI/I2C interface is a HID one (app.hal.ch347_usb)
WCH_HID_PID = 0x55DC

#: the platform the checks and fixes are written for (tests set it)
PLATFORM = sys.platform


@dataclass(frozen=True)
class UsbScan:
    """One vendor's USB devices as this user sees them."""

    devices: list[UsbDeviceInfo]
    libusb_error: str | None = None  # None: libusb works
    source: str = "libusb"  # "libusb", "sysfs" (Linux, no libusb) or "none"


@dataclass(frozen=True)
class SerialPort:
    device: str
    vid: int | None = None
    pid: int | None = None
    serial: str | None = None
    description: str | None = None
    accessible: bool | None = None  # None: not checked (Windows)
    group: str | None = None  # the device node's group (POSIX)

    @property
    def vid_pid(self) -> str | None:
        return None if self.vid is None or self.pid is None else f"{self.vid:04x}:{self.pid:04x}"

    @property
    def board(self) -> str | None:
        return KNOWN_SERIAL_BOARDS.get((self.vid or 0, self.pid or 0))


@dataclass(frozen=True)
class Finding:
    level: str  # "ok", "note" or "problem"
    text: str
    fixes: list[str] = field(default_factory=list)


# -- probing (tests replace these) -------------------------------------------------------


def scan_ftdi() -> UsbScan:
    try:
        return UsbScan(enumerate_ftdi())
    except UsbUnavailable as err:
        devices = sysfs_ftdi_devices()
        return UsbScan(devices, err.reason, "sysfs" if PLATFORM.startswith("linux") else "none")


def scan_wch() -> UsbScan:
    """The CH341A/CH347 chips connected, in whichever mode they came up."""
    try:
        found = enumerate_ftdi(vid=WCH_VID)
        source, error = "libusb", None
    except UsbUnavailable as err:
        found = sysfs_ftdi_devices(vid=WCH_VID)
        source, error = ("sysfs" if PLATFORM.startswith("linux") else "none"), err.reason
    return UsbScan([d for d in found if d.pid in WCH_CHIPS], error, source)


@dataclass(frozen=True)
class DapScan:
    """The CMSIS-DAP probes seen (through libusb: they are found by their USB strings)."""

    probes: list[DapProbe]
    error: str | None = None  # why none could be looked for


def scan_cmsis_dap() -> DapScan:
    from app.hal import cmsis_dap_usb

    try:
        return DapScan(cmsis_dap_usb.pyusb_backend().find_probes())
    except HalError as err:
        return DapScan([], str(err))


def dap_url(probe: DapProbe) -> str | None:
    """The URL that opens this probe (its serial; bare when it has none)."""
    return probe.url if probe.accessible else None


@dataclass(frozen=True)
class StlinkScan:
    """The ST-LINK probes connected, each asked for its firmware (app.hal.stlink_programmer)."""

    probes: list[ProbeListing]
    error: str | None = None  # why none could be listed (no libusb)


def scan_stlink() -> StlinkScan:
    from app.hal.stlink_programmer import list_probes

    try:
        return StlinkScan(list_probes())
    except UsbUnavailable as err:
        return StlinkScan([], err.reason)
    except HalError as err:
        return StlinkScan([], str(err))


def wch_url(dev: UsbDeviceInfo, devices: Sequence[UsbDeviceInfo]) -> str | None:
    """The URL that opens this board: by serial number where it has one that no other of
    ``devices`` (the boards connected) carries (every CH347T says "0123456789"), else by
    bus:address."""
    chip = WCH_CHIPS[dev.pid]
    if chip.scheme is None or not dev.accessible:
        return None
    if dev.serial and dev.serial not in shared_serials(devices):
        where = dev.serial
    else:
        where = f"{dev.bus}:{dev.address}" if dev.bus is not None else ""
    return f"{chip.scheme}://{where}"


def scan_serial_ports() -> list[SerialPort]:
    from serial.tools import list_ports

    ports = []
    for info in sorted(list_ports.comports(), key=lambda p: p.device):
        accessible = group = None
        if os.name == "posix":
            accessible = os.access(info.device, os.R_OK | os.W_OK)
            group = _group_of(info.device)
        ports.append(
            SerialPort(
                device=info.device,
                vid=info.vid,
                pid=info.pid,
                serial=info.serial_number,
                description=info.description if info.description != "n/a" else None,
                accessible=accessible,
                group=group,
            )
        )
    return ports


def _group_of(path: str) -> str | None:
    try:
        import grp

        return grp.getgrgid(os.stat(path).st_gid).gr_name
    except (ImportError, KeyError, OSError):
        return None


def current_groups() -> set[str]:
    try:
        import grp

        return {grp.getgrgid(gid).gr_name for gid in os.getgroups()}
    except (ImportError, KeyError, OSError):
        return set()


def diagnose(
    scan: UsbScan,
    ports: list[SerialPort],
    platform: str,
    groups: set[str],
    wch: UsbScan | None = None,
    dap: DapScan | None = None,
    stlink: StlinkScan | None = None,
) -> list[Finding]:
    """Every check, in the order a user should fix them."""
    linux, mac, windows = platform.startswith("linux"), platform == "darwin", platform == "win32"
    found: list[Finding] = []
    if scan.libusb_error:
        found.append(
            Finding("problem", f"libusb backend: {scan.libusb_error}", [libusb_fix(platform)])
        )
    else:
        found.append(Finding("ok", "libusb backend available"))

    if not scan.devices:
        found.append(Finding("note", "no FTDI device found (is the programmer plugged in?)"))
    for dev in scan.devices:
        name = f"{dev.product.name} {dev.serial or dev.vid_pid}"
        if dev.bus is not None:
            name += f" (bus {dev.bus} address {dev.address})"
        if dev.accessible:
            found.append(Finding("ok", f"{name}: accessible"))
        else:
            found.append(
                Finding("problem", f"{name}: not accessible ({dev.error})", _usb_fixes(platform))
            )
        mpsse = range(dev.product.mpsse_interfaces)
        bound = sorted(n for n, drv in dev.drivers.items() if drv == "ftdi_sio" and n in mpsse)
        if linux and bound:
            letters = ", ".join("ABCD"[n] for n in bound)
            unbind = [
                f"echo -n '{dev.sysfs_name}:1.{n}' | sudo tee /sys/bus/usb/drivers/ftdi_sio/unbind"
                for n in bound
                if dev.sysfs_name
            ]
            found.append(
                Finding(
                    "note",
                    f"{name}: the ftdi_sio kernel driver is bound to interface(s) {letters}."
                    " pyftdi detaches it when Socketeer opens the interface (its /dev/ttyUSBn"
                    " disappears meanwhile) and re-attaches it on close; nothing to do unless"
                    " another program holds that tty. To unbind it by hand:",
                    unbind or ["see /sys/bus/usb/drivers/ftdi_sio/unbind"],
                )
            )

    found += _wch_findings(wch or UsbScan([]), platform)
    found += _dap_findings(dap or DapScan([]), platform)
    found += _stlink_findings(stlink or StlinkScan([]), platform)

    if not ports:
        found.append(Finding("note", "no serial ports found"))
    for port in ports:
        label = port.device + (f" ({port.board})" if port.board else "")
        if port.accessible is False:
            group = port.group or "dialout"
            if group in groups:
                fixes = [
                    f"you are in the {group} group, but this login session started before:"
                    f" log out and back in (or run `newgrp {group}`)"
                ]
            else:
                fixes = [
                    f"sudo usermod -aG {group} $USER",
                    "then log out and back in (group changes apply to new sessions)",
                ]
            found.append(
                Finding("problem", f"serial port {label}: no read/write permission", fixes)
            )
        else:
            found.append(Finding("ok", f"serial port {label}: accessible"))
        if (port.vid, port.pid) == (WCH_VID, 0x5523):
            found.append(
                Finding(
                    "note",
                    f"{port.device} is a CH341 in serial (UART) mode: a CH341A programmer"
                    " drives SPI and I2C only in its other mode",
                    [
                        "move the board's mode jumper to the programmer position (often pins"
                        " 1-2) and re-plug it; it then shows as 1a86:5512"
                    ],
                )
            )

    if mac:
        found.append(
            Finding(
                "note",
                "macOS: use /dev/cu.* (not /dev/tty.*) for serial programmers. Since 10.14"
                " Apple's FTDI driver coexists with libusb; if an FTDI board will not open,"
                " remove FTDI's own D2XX/VCP driver.",
            )
        )
    if windows:
        found.append(
            Finding(
                "note",
                "Windows: serial ports (COMn) need no setup. An FTDI board needs the"
                " libusb-win32 driver, installed with Zadig on the composite parent device"
                " (Options > List All Devices; not 'Interface N'); it then stops being a COM"
                " port.",
            )
        )
    return found


def _wch_findings(scan: UsbScan, platform: str) -> list[Finding]:
    found: list[Finding] = []
    for dev in scan.devices:
        chip = WCH_CHIPS[dev.pid]
        name = f"{chip.name} {dev.serial or dev.vid_pid}"
        if dev.bus is not None:
            name += f" (bus {dev.bus} address {dev.address})"
        if chip.scheme is None:
            found.append(Finding("problem", f"{name}: no SPI/I2C in this mode", [chip.advice]))
        elif dev.accessible:
            found.append(Finding("ok", f"{name}: accessible as {wch_url(dev, scan.devices)}"))
        else:
            fixes = _usb_fixes(platform)
            if platform == "win32" and dev.pid == WCH_HID_PID:
                fixes = [
                    "install the WinUSB driver with Zadig on the board's interface 1 (the"
                    ' entry ending "(Interface 1)", MI_01; Options > List All Devices) in'
                    " place of the Windows HID driver; interface 0 (its UART) stays HID"
                ]
            elif platform == "win32":
                fixes = [
                    "install the WinUSB (or libusb-win32) driver with Zadig on the board in"
                    " place of WCH's CH341PAR/CH347 driver (Options > List All Devices)"
                ]
            found.append(Finding("problem", f"{name}: not accessible ({dev.error})", fixes))
    return found


def _dap_findings(scan: DapScan, platform: str) -> list[Finding]:
    found: list[Finding] = []
    for probe in scan.probes:
        name = f"CMSIS-DAP probe {probe.label} ({probe.vid_pid})"
        if not probe.accessible:
            fixes = _usb_fixes(platform)
            if platform == "win32":
                fixes = [
                    "a CMSIS-DAP v2 probe needs the WinUSB driver (most install it on their"
                    " own; else Zadig on its CMSIS-DAP interface); v1 (HID) probes are not"
                    " reachable through libusb on Windows"
                ]
            found.append(Finding("problem", f"{name}: not accessible ({probe.error})", fixes))
            continue
        found.append(Finding("ok", f"{name}: accessible as {dap_url(probe)}"))
        if not probe.serial:
            found.append(
                Finding(
                    "note",
                    f"{name} has no USB serial number: cmsis-dap:// opens it only while it is"
                    " the one probe connected",
                )
            )
    return found


#: the V2 firmware ("J" version) the ST-LINK driver needs for each feature (app.hal.stlink)
STLINK_FIRMWARE_NOTES = (
    (V2_MEM_16BIT, "half-word flash programming (STM32F0/F1/F3)"),
    (V2_DAP_REGISTERS, "access ports other than the memory AP (e.g. Nordic's CTRL-AP)"),
)


def _stlink_findings(scan: StlinkScan, platform: str) -> list[Finding]:
    found: list[Finding] = []
    for probe in scan.probes:
        name = f"{probe.model} {probe.serial or probe.vid_pid} (bus {probe.bus} address"
        name += f" {probe.address})"
        if probe.loader:
            fix = (
                "finish the firmware update with ST's ST-LINK firmware updater (STSW-LINK007),"
                " or unplug and re-plug the probe"
            )
            found.append(Finding("problem", f"{name}: in its USB loader (firmware update)", [fix]))
        elif not probe.accessible:
            fixes = _usb_fixes(platform)
            if platform == "win32":
                fixes = [
                    "install ST's ST-LINK USB driver (STSW-LINK009), or the WinUSB driver with"
                    " Zadig, on the probe"
                ]
            found.append(Finding("problem", f"{name}: not accessible ({probe.error})", fixes))
        elif probe.error is not None:
            found.append(Finding("problem", f"{name}: {probe.error}"))
        else:
            found.append(
                Finding("ok", f"{name}: firmware {probe.firmware}, accessible as {probe.url}")
            )
            jtag = _v2_jtag(probe.firmware or "")
            for needed, what in STLINK_FIRMWARE_NOTES:
                if jtag is not None and jtag < needed:
                    found.append(
                        Finding(
                            "note",
                            f"{name}: firmware {probe.firmware} has no {what}: that needs"
                            f" V2J{needed} or later",
                            ["update it with ST's ST-LINK firmware updater (STSW-LINK007)"],
                        )
                    )
    return found


def _v2_jtag(firmware: str) -> int | None:
    """The J version of a V2 firmware text (V2J22S4 -> 22); None for a V3."""
    match = re.match(r"V2J(\d+)", firmware)
    return int(match[1]) if match else None


def _usb_fixes(platform: str) -> list[str]:
    if platform.startswith("linux"):
        return [
            udev_fix(),
            "then unplug and re-plug the board; the rules grant access to the logged-in user"
            " (uaccess) and to the plugdev group (`sudo usermod -aG plugdev $USER`, then log"
            " out and back in, for ssh sessions)",
        ]
    if platform == "darwin":
        return ["another driver holds the device: uninstall FTDI's D2XX/VCP driver, re-plug"]
    if platform == "win32":
        return [
            "install the libusb-win32 driver with Zadig on the board's composite parent"
            " device (not 'Interface N')"
        ]
    return ["give this user read/write access to the USB device"]


def run_diagnosis() -> list[Finding]:
    """Scan this computer and diagnose it."""
    return diagnose(
        scan_ftdi(),
        scan_serial_ports(),
        PLATFORM,
        current_groups(),
        scan_wch(),
        scan_cmsis_dap(),
        scan_stlink(),
    )
