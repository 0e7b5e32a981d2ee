"""`socketeer hw list|diagnose` with the USB and serial enumeration replaced (no hardware)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.cli import main
from app.engine import hw_diagnosis as hw
from app.engine.hw_diagnosis import DapScan, SerialPort, StlinkScan, UsbScan
from app.hal.ftdi_usb import UsbDeviceInfo, sysfs_ftdi_devices

FT2232H = UsbDeviceInfo(
    vid=0x0403,
    pid=0x6010,
    bus=1,
    address=5,
    serial="FT4ABCDE",
    description="Dual RS232-HS",
    interfaces=2,
    accessible=True,
    drivers={1: "ftdi_sio"},
    sysfs_name="1-2",
)
LOCKED_FT232H = UsbDeviceInfo(
    vid=0x0403,
    pid=0x6014,
    bus=1,
    address=7,
    serial=None,
    description=None,
    interfaces=1,
    accessible=False,
    error="permission denied",
    drivers={0: "ftdi_sio"},
    sysfs_name="1-3",
)
CH341A = UsbDeviceInfo(0x1A86, 0x5512, 3, 4, "", "USB UART-LPT", 1, True)
LOCKED_CH347 = UsbDeviceInfo(0x1A86, 0x55DB, 3, 6, None, None, 3, False, error="permission denied")
CH347_JTAG = UsbDeviceInfo(0x1A86, 0x55DD, 3, 7, "", "", 3, True)
#: two CH347Ts in mode 2 (HID): every CH347T carries the serial number 0123456789
CH347_HID = UsbDeviceInfo(0x1A86, 0x55DC, 3, 8, "0123456789", "HID To UART+SPI+I2C", 2, True)
CH347_HID_TWIN = UsbDeviceInfo(0x1A86, 0x55DC, 3, 9, "0123456789", "HID To UART+SPI+I2C", 2, True)
LOCKED_CH347_HID = UsbDeviceInfo(
    0x1A86, 0x55DC, 3, 8, None, None, 2, False, error="permission denied"
)
CH341_SERIAL = SerialPort("/dev/ttyUSB1", 0x1A86, 0x5523, None, "USB Serial", True, "dialout")
PICO = SerialPort("/dev/ttyACM0", 0x2E8A, 0x000A, "E6614C", "Pico", True, "dialout")
LOCKED_CH340 = SerialPort("/dev/ttyUSB0", 0x1A86, 0x7523, None, "USB Serial", False, "dialout")


def fake(
    monkeypatch,
    scan: UsbScan,
    ports: list[SerialPort],
    platform="linux",
    groups=(),
    wch: tuple[UsbDeviceInfo, ...] = (),
):
    monkeypatch.setattr(hw, "scan_ftdi", lambda: scan)
    monkeypatch.setattr(hw, "scan_wch", lambda: UsbScan(list(wch)))
    monkeypatch.setattr(hw, "scan_cmsis_dap", lambda: DapScan([]))
    monkeypatch.setattr(hw, "scan_stlink", lambda: StlinkScan([]))
    monkeypatch.setattr(hw, "scan_serial_ports", lambda: list(ports))
    monkeypatch.setattr(hw, "PLATFORM", platform)
    monkeypatch.setattr(hw, "current_groups", lambda: set(groups))


def run(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_list_with_nothing_and_no_libusb(monkeypatch, capsys) -> None:
    fake(monkeypatch, UsbScan([], "no libusb backend for pyusb (No backend available)", "none"), [])
    code, out = run(capsys, "hw", "list")
    assert code == 0
    assert "libusb is not available: no libusb backend" in out
    assert out.count("none found") == 5  # FTDI, CH341A/CH347, CMSIS-DAP, ST-LINK, serial ports


def test_list_shows_devices_urls_and_access(monkeypatch, capsys) -> None:
    fake(monkeypatch, UsbScan([FT2232H, LOCKED_FT232H]), [PICO, LOCKED_CH340])
    code, out = run(capsys, "hw", "list")
    assert code == 0
    assert "0403:6010  FT2232H  serial FT4ABCDE" in out
    assert "ftdi://ftdi:2232h:FT4ABCDE/*" in out
    assert "0403:6014  FT232H   serial ?" in out and "NOT ACCESSIBLE (permission denied)" in out
    assert "/dev/ttyACM0  2e8a:000a  serial E6614C" in out
    assert "Raspberry Pi Pico (serprog firmware)  serprog:///dev/ttyACM0" in out
    assert "/dev/ttyUSB0  1a86:7523" in out and "CH340" in out

    code, out = run(capsys, "hw", "list", "--json")
    doc = json.loads(out)
    first = doc["ftdi"]["devices"][0]
    assert first["url"] == "ftdi://ftdi:2232h:FT4ABCDE/*" and first["mpsse_interfaces"] == 2
    assert doc["ftdi"]["devices"][1]["url"] is None
    assert doc["serial_ports"][0]["vid_pid"] == "2e8a:000a"
    assert doc["serial_ports"][1]["accessible"] is False


def test_list_runs_on_this_machine_without_hardware(capsys) -> None:
    code, out = run(capsys, "hw", "list", "--json")
    assert code == 0
    doc = json.loads(out)
    assert set(doc) == {"ftdi", "wch", "cmsis_dap", "stlink", "serial_ports"}


def test_diagnose_all_good_exits_0(monkeypatch, capsys) -> None:
    fake(monkeypatch, UsbScan([FT2232H]), [PICO])
    code, out = run(capsys, "hw", "diagnose")
    assert code == 0
    assert "OK      libusb backend available" in out
    assert "FT2232H FT4ABCDE (bus 1 address 5): accessible" in out
    # ftdi_sio on interface B: a note, not a problem
    assert "ftdi_sio kernel driver is bound to interface(s) B" in out
    assert "echo -n '1-2:1.1' | sudo tee /sys/bus/usb/drivers/ftdi_sio/unbind" in out
    assert out.rstrip().endswith("no problems found")


def test_diagnose_prints_the_exact_fixes(monkeypatch, capsys) -> None:
    fake(monkeypatch, UsbScan([LOCKED_FT232H], "no libusb backend", "sysfs"), [LOCKED_CH340])
    code, out = run(capsys, "hw", "diagnose")
    assert code == 1
    assert "PROBLEM libusb backend: no libusb backend" in out
    assert "sudo apt install libusb-1.0-0" in out
    assert "FT232H 0403:6014 (bus 1 address 7): not accessible (permission denied)" in out
    assert (
        "99-socketeer.rules /etc/udev/rules.d/ && sudo udevadm control --reload"
        " && sudo udevadm trigger" in out
    )
    assert "serial port /dev/ttyUSB0 (CH340 USB-serial (Arduino clones, adapters))" in out
    assert "fix: sudo usermod -aG dialout $USER" in out and "log out and back in" in out
    assert "3 problem(s) found" in out


def test_diagnose_group_already_joined_and_json(monkeypatch, capsys) -> None:
    fake(monkeypatch, UsbScan([]), [LOCKED_CH340], groups={"dialout"})
    code, out = run(capsys, "hw", "diagnose", "--json")
    assert code == 1
    doc = json.loads(out)
    assert doc["problems"] == 1
    problem = next(f for f in doc["findings"] if f["level"] == "problem")
    assert "newgrp dialout" in problem["fixes"][0]
    assert any("no FTDI device found" in f["text"] for f in doc["findings"])


@pytest.mark.parametrize(
    ("platform", "text"),
    [
        ("darwin", "brew install libusb"),
        ("win32", "Zadig"),
    ],
)
def test_diagnose_platform_notes(monkeypatch, capsys, platform, text) -> None:
    fake(monkeypatch, UsbScan([], "no backend", "none"), [], platform=platform)
    code, out = run(capsys, "hw", "diagnose")
    assert code == 1 and text in out
    assert ("/dev/cu.*" in out) == (platform == "darwin")


def test_sysfs_listing_without_libusb(tmp_path: Path) -> None:
    dev = tmp_path / "1-2"
    dev.mkdir()
    for name, value in {
        "idVendor": "0403",
        "idProduct": "6014",
        "busnum": "1",
        "devnum": "9",
        "serial": "FT1XYZ",
        "product": "C232HM-DDHSL-0",
        "bNumInterfaces": " 1",
    }.items():
        (dev / name).write_text(value + "\n")
    intf = tmp_path / "1-2:1.0"
    intf.mkdir()
    (intf / "bInterfaceNumber").write_text("00\n")
    driver = tmp_path / "drivers" / "ftdi_sio"
    driver.mkdir(parents=True)
    (dev / "1-2:1.0").symlink_to(intf)
    (intf / "driver").symlink_to(driver)
    other = tmp_path / "1-3"
    other.mkdir()
    (other / "idVendor").write_text("2e8a\n")
    [found] = sysfs_ftdi_devices(tmp_path)
    assert (found.pid, found.bus, found.address, found.serial) == (0x6014, 1, 9, "FT1XYZ")
    assert found.drivers == {0: "ftdi_sio"} and found.sysfs_name == "1-2"
    assert found.node == "/dev/bus/usb/001/009" and not found.accessible


def test_list_shows_ch341a_and_ch347_boards_with_their_urls(monkeypatch, capsys) -> None:
    wch = (CH341A, LOCKED_CH347, CH347_JTAG)
    fake(monkeypatch, UsbScan([]), [CH341_SERIAL], wch=wch)
    code, out = run(capsys, "hw", "list")
    assert code == 0
    assert "1a86:5512  CH341A  bus 3 address 4  ch341a://3:4" in out  # no serial: bus path
    assert "1a86:55db  CH347T  bus 3 address 6  NOT ACCESSIBLE (permission denied)" in out
    assert (
        "CH347T in mode 3 (UART + JTAG)  bus 3 address 7  (set mode 1 or 2 for SPI and I2C)" in out
    )
    assert "CH341 in serial mode" in out
    doc = json.loads(run(capsys, "hw", "list", "--json")[1])
    assert [d["url"] for d in doc["wch"]["devices"]] == ["ch341a://3:4", None, None]


def test_list_shows_mode_2_boards_by_serial_alone_and_by_bus_path_when_shared(
    monkeypatch, capsys
) -> None:
    fake(monkeypatch, UsbScan([]), [], wch=(CH347_HID,))
    out = run(capsys, "hw", "list")[1]
    assert (
        "1a86:55dc  CH347T in mode 2 (HID)  serial 0123456789  bus 3 address 8"
        "  ch347://0123456789" in out
    )
    fake(monkeypatch, UsbScan([]), [], wch=(CH347_HID, CH347_HID_TWIN))
    out = run(capsys, "hw", "list")[1]
    assert "serial 0123456789  bus 3 address 8  ch347://3:8" in out
    assert "serial 0123456789  bus 3 address 9  ch347://3:9" in out
    assert "set mode" not in out
    doc = json.loads(run(capsys, "hw", "list", "--json")[1])
    assert [d["url"] for d in doc["wch"]["devices"]] == ["ch347://3:8", "ch347://3:9"]


def test_diagnose_finds_ch341a_and_ch347_problems(monkeypatch, capsys) -> None:
    wch = (CH341A, LOCKED_CH347, CH347_JTAG)
    fake(monkeypatch, UsbScan([FT2232H]), [CH341_SERIAL], wch=wch)
    code, out = run(capsys, "hw", "diagnose")
    assert code == 1 and "2 problem(s) found" in out
    assert "OK      CH341A 1a86:5512 (bus 3 address 4): accessible as ch341a://3:4" in out
    assert "CH347T 1a86:55db (bus 3 address 6): not accessible (permission denied)" in out
    assert "99-socketeer.rules /etc/udev/rules.d/" in out  # the udev fix
    assert "CH347T in mode 3 (UART + JTAG) 1a86:55dd (bus 3 address 7): no SPI/I2C" in out
    assert "/dev/ttyUSB1 is a CH341 in serial (UART) mode" in out and "jumper" in out


def test_diagnose_takes_mode_2_boards(monkeypatch, capsys) -> None:
    fake(monkeypatch, UsbScan([FT2232H]), [], wch=(CH347_HID, CH347_HID_TWIN))
    code, out = run(capsys, "hw", "diagnose")
    assert code == 0, out
    assert (
        "OK      CH347T in mode 2 (HID) 0123456789 (bus 3 address 8): accessible as ch347://3:8"
        in out
    )
    assert "accessible as ch347://3:9" in out
    assert "set mode" not in out and "no SPI/I2C" not in out


def test_diagnose_on_windows_names_zadig_for_the_wch_driver(monkeypatch, capsys) -> None:
    fake(monkeypatch, UsbScan([]), [], platform="win32", wch=(LOCKED_CH347,))
    code, out = run(capsys, "hw", "diagnose")
    assert code == 1 and "in place of WCH's CH341PAR/CH347 driver" in out


def test_diagnose_on_windows_names_interface_1_of_a_mode_2_board(monkeypatch, capsys) -> None:
    fake(monkeypatch, UsbScan([]), [], platform="win32", wch=(LOCKED_CH347_HID,))
    code, out = run(capsys, "hw", "diagnose")
    assert code == 1 and "CH347T in mode 2 (HID) 1a86:55dc (bus 3 address 8)" in out
    assert "Zadig on the board's interface 1" in out and "MI_01" in out
    assert "CH341PAR" not in out
