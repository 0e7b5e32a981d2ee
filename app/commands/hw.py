"""`socketeer hw list|diagnose`: the programmers this computer can see, and what keeps
Socketeer from using them, with the exact command that fixes it (the findings come from
app.engine.hw_diagnosis).

Exit codes: ``list`` 0; ``diagnose`` 0 when nothing is wrong, 1 when it found a problem.
Nothing here needs a device or libusb: a missing backend is itself reported.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from app.commands import help_for
from app.engine import hw_diagnosis as hw
from app.engine.hw_diagnosis import SERPROG_BOARDS, WCH_CHIPS, SerialPort, dap_url, wch_url
from app.hal.cmsis_dap_usb import DapProbe
from app.hal.ftdi_usb import UsbDeviceInfo, libusb_fix

if TYPE_CHECKING:
    from app.hal.stlink_programmer import ProbeListing

# -- the commands -------------------------------------------------------------------


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("hw", help=help_for("hw"))
    hw_sub = parser.add_subparsers(dest="hw_command", metavar="ACTION")
    lst = hw_sub.add_parser(
        "list",
        help="FTDI, CH341A/CH347, CMSIS-DAP and ST-LINK devices and serial ports this computer"
        " sees",
    )
    lst.add_argument("--json", action="store_true", help="print one JSON document")
    lst.set_defaults(func=cmd_list)
    diag = hw_sub.add_parser(
        "diagnose", help="check libusb, USB permissions, drivers and serial port access"
    )
    diag.add_argument("--json", action="store_true", help="print one JSON document")
    diag.set_defaults(func=cmd_diagnose)
    parser.set_defaults(func=None, _help=parser)


def _ftdi_entry(dev: UsbDeviceInfo) -> dict[str, Any]:
    product = dev.product
    iface = "*" if product.mpsse_interfaces > 1 else "1"
    return {
        "vid_pid": dev.vid_pid,
        "chip": product.name,
        "serial": dev.serial,
        "description": dev.description,
        "interfaces": dev.interfaces,
        "mpsse_interfaces": product.mpsse_interfaces,
        "bus": dev.bus,
        "address": dev.address,
        "accessible": dev.accessible,
        "error": dev.error,
        "kernel_drivers": {str(k): v for k, v in sorted(dev.drivers.items())},
        "url": dev.url(iface) if product.mpsse_interfaces and dev.accessible else None,
    }


def _wch_entry(dev: UsbDeviceInfo, devices: list[UsbDeviceInfo]) -> dict[str, Any]:
    chip = WCH_CHIPS[dev.pid]
    return {
        "vid_pid": dev.vid_pid,
        "chip": chip.name,
        "serial": dev.serial,
        "bus": dev.bus,
        "address": dev.address,
        "accessible": dev.accessible,
        "error": dev.error,
        "url": wch_url(dev, devices),
        "advice": chip.advice or None,
    }


DAP_VERSIONS = {1: "v1 (HID)", 2: "v2 (bulk)", 0: "version unknown"}


def _dap_entry(probe: DapProbe) -> dict[str, Any]:
    return {
        "vid_pid": probe.vid_pid,
        "name": probe.product,
        "serial": probe.serial,
        "version": probe.version or None,
        "bus": probe.bus,
        "address": probe.address,
        "accessible": probe.accessible,
        "error": probe.error,
        "url": dap_url(probe),
    }


def _stlink_entry(probe: ProbeListing) -> dict[str, Any]:
    return {
        "vid_pid": probe.vid_pid,
        "model": probe.model,
        "serial": probe.serial,
        "bus": probe.bus,
        "address": probe.address,
        "firmware": probe.firmware,
        "mode": probe.mode,
        "accessible": probe.accessible,
        "error": probe.error,
        "url": probe.url,
    }


def _port_entry(port: SerialPort) -> dict[str, Any]:
    entry = asdict(port)
    entry.pop("vid")
    entry.pop("pid")
    entry["vid_pid"] = port.vid_pid
    entry["board"] = port.board
    entry["url"] = f"serprog://{port.device}" if (port.vid, port.pid) in SERPROG_BOARDS else None
    return entry


def cmd_list(args: argparse.Namespace) -> int:
    scan = hw.scan_ftdi()
    wch_scan = hw.scan_wch()
    dap_scan = hw.scan_cmsis_dap()
    ports = hw.scan_serial_ports()
    ftdi = [_ftdi_entry(d) for d in scan.devices]
    wch = [_wch_entry(d, wch_scan.devices) for d in wch_scan.devices]
    dap = [_dap_entry(p) for p in dap_scan.probes]
    stlink_scan = hw.scan_stlink()
    stlink = [_stlink_entry(p) for p in stlink_scan.probes]
    serial = [_port_entry(p) for p in ports]
    if args.json:
        doc = {
            "ftdi": {"source": scan.source, "libusb_error": scan.libusb_error, "devices": ftdi},
            "wch": {"source": wch_scan.source, "devices": wch},
            "cmsis_dap": {"error": dap_scan.error, "devices": dap},
            "stlink": {"error": stlink_scan.error, "devices": stlink},
            "serial_ports": serial,
        }
        print(json.dumps(doc, indent=2))
        return 0
    print("FTDI devices:")
    if scan.libusb_error:
        print(f"  libusb is not available: {scan.libusb_error}")
        print(f"  fix: {libusb_fix(hw.PLATFORM)}")
        if scan.source == "sysfs":
            print("  (listing what Linux sysfs reports; these cannot be opened until it is)")
    if not ftdi:
        print("  none found")
    for entry in ftdi:
        serial_no = entry["serial"] if entry["serial"] is not None else "?"
        interfaces = f"{entry['interfaces']} interface{'s' if entry['interfaces'] != 1 else ''}"
        line = f"  {entry['vid_pid']}  {entry['chip']:<8} serial {serial_no or '(none)'}"
        if entry["description"]:
            line += f"  {entry['description']!r}"
        line += f"  {interfaces}"
        if not entry["accessible"]:
            line += f"  NOT ACCESSIBLE ({entry['error']}): see `socketeer hw diagnose`"
        elif entry["url"]:
            line += f"  {entry['url']}"
        else:
            line += "  (no MPSSE: serial use only)"
        print(line)
    print("CH341A / CH347 programmers:")
    if not wch:
        print("  none found")
    for entry in wch:
        where = f"bus {entry['bus']} address {entry['address']}" if entry["bus"] else ""
        line = f"  {entry['vid_pid']}  {entry['chip']}"
        if entry["serial"]:
            line += f"  serial {entry['serial']}"
        if where:
            line += f"  {where}"
        if entry["advice"]:
            line += f"  ({entry['advice']})"
        elif not entry["accessible"]:
            line += f"  NOT ACCESSIBLE ({entry['error']}): see `socketeer hw diagnose`"
        else:
            line += f"  {entry['url']}"
        print(line)
    print("CMSIS-DAP probes:")
    if not dap:
        print(f"  none found{f' ({dap_scan.error})' if dap_scan.error else ''}")
    for probe in dap_scan.probes:
        line = f"  {probe.vid_pid}  {probe.label}  {DAP_VERSIONS[probe.version]}"
        if not probe.accessible:
            line += f"  NOT ACCESSIBLE ({probe.error}): see `socketeer hw diagnose`"
        else:
            line += f"  {dap_url(probe)}"
        print(line)
    print("ST-LINK probes:")
    if stlink_scan.error:
        print(f"  cannot list them: {stlink_scan.error}")
    elif not stlink:
        print("  none found")
    for entry in stlink:
        line = f"  {entry['vid_pid']}  {entry['model']}"
        if entry["serial"]:
            line += f"  serial {entry['serial']}"
        line += f"  bus {entry['bus']} address {entry['address']}"
        if entry["firmware"]:
            line += f"  firmware {entry['firmware']}"
        if entry["url"]:
            line += f"  {entry['url']}"
        elif not entry["accessible"]:
            line += f"  NOT ACCESSIBLE ({entry['error']}): see `socketeer hw diagnose`"
        else:
            line += f"  ({entry['error'] or 'not a debug probe in this mode'})"
        print(line)
    print("Serial ports:")
    if not serial:
        print("  none found")
    for entry in serial:
        parts = [f"  {entry['device']}"]
        if entry["vid_pid"]:
            parts.append(entry["vid_pid"])
        if entry["serial"]:
            parts.append(f"serial {entry['serial']}")
        if entry["description"]:
            parts.append(repr(entry["description"]))
        if entry["board"]:
            parts.append(entry["board"])
        if entry["accessible"] is False:
            parts.append("NOT ACCESSIBLE: see `socketeer hw diagnose`")
        elif entry["url"]:
            parts.append(entry["url"])
        print("  ".join(parts))
    return 0


def cmd_diagnose(args: argparse.Namespace) -> int:
    findings = hw.run_diagnosis()
    problems = sum(1 for f in findings if f.level == "problem")
    if args.json:
        doc = {"problems": problems, "findings": [asdict(f) for f in findings]}
        print(json.dumps(doc, indent=2))
    else:
        for finding in findings:
            print(f"{finding.level.upper():<8}{finding.text}")
            for fix in finding.fixes:
                print(f"        fix: {fix}" if finding.level == "problem" else f"        {fix}")
        if problems:
            print(f"{problems} problem(s) found")
        else:
            print("no problems found")
    return 1 if problems else 0
