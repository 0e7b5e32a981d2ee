"""STM32 over UART: Socketeer's whole stack (uart:// programmer, stm32_uart algorithm,
engine) against an AN3155 bootloader emulated on a real pseudo-terminal; and stm32flash
against the same emulator, to show the emulator answers like a real part."""

from __future__ import annotations

import errno
import io
import os
import random
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial
from stm32_emulator import (  # tests/ is on sys.path (rootdir conftest)
    STM32F03X,
    STM32F10X_MD,
    STM32F40X,
    STM32L05X,
    Stm32Emulator,
)

import app.algorithms.stm32_bootloader as stm32_bootloader
import app.hal.uart as uart
from app.core.formats.ihex import read_ihex, write_ihex
from app.core.image import MemoryImage
from app.engine.site_runner import CycleSpec
from app.engine.station import Station
from app.hal.errors import HalError, ProgrammerUrlError
from app.hal.programmer import open_programmer

FLASH = 0x0800_0000
OLD = bytes(range(7, 256, 3)) * 4  # "old firmware" fill, no 0xFF bytes
#: the emulator's parts (from ST's documents) by the database's ids
PARTS = {
    "st.stm32f10x-md": STM32F10X_MD,
    "st.stm32f40x-f41x": STM32F40X,
    "st.stm32f03x": STM32F03X,
    "st.stm32l05x-l06x": STM32L05X,
}


@pytest.fixture(scope="module")
def f1(database):
    return database.get("st.stm32f10x-md")  # PID 0x410, legacy erase, 128 x 1 KiB


@pytest.fixture(scope="module")
def f4(database):
    return database.get("st.stm32f40x-f41x")  # PID 0x413, extended erase, 16/64/128 KiB


@pytest.fixture
def emulator_for() -> Iterator:
    made: list[Stm32Emulator] = []

    def make(device, **options) -> Stm32Emulator:
        emu = Stm32Emulator(PARTS[device.id], **options)
        made.append(emu)
        size = device.size_bytes
        assert emu.part.flash_bytes == size
        emu.load_flash(FLASH, (OLD * (size // len(OLD) + 1))[:size])
        return emu

    yield make
    for emu in made:
        emu.close()


def open_station(emu: Stm32Emulator, device, database, options: str = "") -> Station:
    url = f"uart://{emu.port}?parity=none{options}"
    programmer = open_programmer(url, device=device, database=database)

    def names(id_hex: str, bus: str = "jedec") -> list[str]:
        return [f"{d.vendor} {d.part}" for d in database.identify(bus, id_hex).candidates]

    station = Station(programmer, lambda _event: None, names)
    return station


def run(station: Station, spec: CycleSpec):
    try:
        return station.run(spec).results[0]
    finally:
        station.programmer.close()


def firmware(size: int, base: int = FLASH, seed: int = 1) -> MemoryImage:
    """An Intel HEX image (with a start address) as a build would produce it."""
    rnd = random.Random(seed)
    data = bytes(rnd.choice(range(0xFF)) for _ in range(size))  # no 0xFF: all programmed
    image = MemoryImage.from_bytes(data, base)
    image.start_address = base + 0x1C1
    stream = io.BytesIO()
    write_ihex(image, stream)
    loaded = read_ihex(stream.getvalue(), "firmware.hex")
    assert loaded.start_address == base + 0x1C1
    return loaded


# -- the programmer URL -------------------------------------------------------------


def test_url_errors() -> None:
    with pytest.raises(HalError, match="no serial port /dev/ttyNOPE"):
        open_programmer("uart:///dev/ttyNOPE")
    with pytest.raises(ProgrammerUrlError, match="unknown uart option"):
        open_programmer("uart:///dev/ttyUSB0?speed=9600")
    with pytest.raises(ProgrammerUrlError, match="both name DTR"):
        open_programmer("uart:///dev/ttyUSB0?reset=dtr&boot0=dtr")
    with pytest.raises(ProgrammerUrlError, match="invert"):
        open_programmer("uart:///dev/ttyUSB0?invert=nrst")
    with pytest.raises(ProgrammerUrlError, match="names no port"):
        open_programmer("uart://")


def test_permission_denied_says_how_to_fix() -> None:
    err = serial.SerialException(errno.EACCES, "could not open port /dev/ttyUSB0")
    message = str(uart._open_error("/dev/ttyUSB0", err))
    assert "permission denied" in message and "dialout" in message


def test_defaults_on_a_pty_without_modem_lines(emulator_for, f1, database) -> None:
    """8E1 and DTR/RTS by default; a pty has neither, and that must not crash."""
    emu = emulator_for(f1)
    programmer = open_programmer(f"uart://{emu.port}", device=f1, database=database)
    try:
        site = programmer.sites[0]
        assert site.in_system and site.board_powered and site.uart.parity == "even"
        assert site.uart.reset_line == "dtr" and site.uart.boot0_line == "rts"
        assert site.uart.enter_bootloader() is False  # lines not available: no-op
        assert not site.uart.has_reset
        spec = CycleSpec("identify", f1)
        result = Station(programmer, lambda _e: None).run(spec).results[0]
        assert result.passed, result.message
        assert result.chip_id == "0410"
    finally:
        programmer.close()


class FakePort:
    """Records modem-line levels like pyserial's Serial (True = asserted)."""

    def __init__(self) -> None:
        self.port = ""
        self.history: list[tuple[str, bool]] = []
        self.is_open = False

    def __setattr__(self, name: str, value) -> None:
        if name in ("dtr", "rts") and self.__dict__.get("is_open"):
            self.history.append((name, value))
        object.__setattr__(self, name, value)

    def open(self) -> None:
        self.is_open = True

    def set_low_latency_mode(self, on: bool) -> None:
        self.low_latency = on

    def close(self) -> None:
        self.is_open = False

    in_waiting = 0


@pytest.mark.parametrize(
    ("invert", "reset_low", "boot0_high"),
    [("", True, False), ("reset,boot0", False, True)],
)
def test_boot_lines(monkeypatch, invert: str, reset_low: bool, boot0_high: bool) -> None:
    """Default: active-low adapter pins wired straight (DTR# -> NRST, RTS# -> BOOT0)."""
    ports: list[FakePort] = []
    monkeypatch.setattr(uart.serial, "Serial", lambda: ports.append(FakePort()) or ports[-1])
    monkeypatch.setattr(uart, "RESET_PULSE_S", 0)
    monkeypatch.setattr(uart, "BOOT_SETTLE_S", 0)
    programmer = open_programmer(f"uart:///dev/ttyFAKE?invert={invert}")
    link = programmer.sites[0].uart
    port = ports[0]
    # at rest: reset released, BOOT0 low (set before open too, so no glitch)
    assert (port.dtr, port.rts) == (not reset_low, not boot0_high)
    assert port.low_latency  # FTDI: no 16 ms latency-timer wait for each 1-byte ACK
    port.history.clear()
    assert link.enter_bootloader() is True
    assert port.history == [
        ("rts", boot0_high),  # BOOT0 high
        ("dtr", reset_low),  # NRST low ...
        ("dtr", not reset_low),  # ... and released
    ]
    port.history.clear()
    assert link.run_application() is True
    assert port.history == [("rts", not boot0_high), ("dtr", reset_low), ("dtr", not reset_low)]


def test_only_entering_the_bootloader_waits_for_it(monkeypatch) -> None:
    """The reset into the bootloader waits until it listens; the reset that starts the
    application does not wait for anything (the host says nothing more to it)."""
    monkeypatch.setattr(uart.serial, "Serial", FakePort)
    slept: list[float] = []
    monkeypatch.setattr(uart.time, "sleep", slept.append)
    link = open_programmer("uart:///dev/ttyFAKE").sites[0].uart
    assert link.enter_bootloader() is True
    assert slept == [uart.RESET_PULSE_S, uart.BOOT_SETTLE_S]
    slept.clear()
    assert link.run_application() is True
    assert slept == [uart.RESET_PULSE_S]


# -- identify, program, verify, read --------------------------------------------------


def test_program_verify_read_legacy_erase(emulator_for, f1, database) -> None:
    """F1: Erase (0x43) of exactly the 1 KiB pages the image touches."""
    emu = emulator_for(f1)
    start = FLASH + 0x1000
    image = firmware(40 * 1024 + 100, start)
    result = run(open_station(emu, f1, database), CycleSpec("program", f1, image))
    assert result.passed, result.message
    end = start + image.data_bytes
    assert emu.flash_bytes(start, image.data_bytes) == image.read(start, end)
    assert ("erase", list(range(4, 45))) in emu.log  # pages 4..44, one-byte numbers
    # untouched pages keep their bytes; the rest of the last erased page is erased
    assert emu.flash_bytes(FLASH, 0x1000) == (OLD * 64)[:0x1000]
    last_page_end = FLASH + 45 * 1024
    assert emu.flash_bytes(end, last_page_end - end) == b"\xff" * (last_page_end - end)
    after = emu.flash_bytes(last_page_end, 1024)
    assert after == (OLD * 200)[45 * 1024 : 46 * 1024]

    result = run(open_station(emu, f1, database), CycleSpec("read", f1, read_range=(start, end)))
    assert result.passed, result.message
    assert result.data == image.read(start, end)


def test_extended_erase_of_uneven_sectors(emulator_for, f4, database) -> None:
    """F4: Extended Erase (0x44) of sectors 1 and 2 (16 KiB each) only."""
    emu = emulator_for(f4)
    start = FLASH + 0x4000
    image = firmware(20 * 1024, start)
    result = run(open_station(emu, f4, database), CycleSpec("program", f4, image))
    assert result.passed, result.message
    assert ("erase", [1, 2]) in emu.log
    assert emu.flash_bytes(start, 20 * 1024) == image.read(start, start + 20 * 1024)
    assert emu.flash_bytes(FLASH, 0x4000) == (OLD * 100)[:0x4000]
    assert emu.flash_bytes(FLASH + 0xC000, 0x4000) == (OLD * 1000)[0xC000:0x10000]
    assert emu.flash_bytes(FLASH + 0x9000, 0x3000) == b"\xff" * 0x3000


def test_mass_erase_and_full_erase_program(emulator_for, f1, database) -> None:
    emu = emulator_for(f1)
    assert run(open_station(emu, f1, database), CycleSpec("erase", f1, backup=False)).passed
    assert ("global-erase", None) in emu.log  # 0x43 0xFF 0x00
    assert emu.flash_bytes(FLASH, f1.size_bytes) == b"\xff" * f1.size_bytes
    # the bootloader's ACK says the erase took (AN3155): no 128 KiB read back after it
    assert [kind for kind, _ in emu.log] == ["read", "global-erase"]  # read: the RDP probe

    f0 = database.get("st.stm32f03x")  # 32 KiB, Extended Erase
    emu0 = emulator_for(f0)
    image = firmware(8 * 1024)
    spec = CycleSpec("program", f0, image, erase_mode="full", backup=False)
    result = run(open_station(emu0, f0, database), spec)
    assert result.passed, result.message
    assert ("mass-erase", None) in emu0.log  # 0x44 0xFFFF 0x00
    assert emu0.flash_bytes(FLASH, 8 * 1024) == image.read(FLASH, FLASH + 8 * 1024)
    assert emu0.flash_bytes(FLASH + 8 * 1024, 24 * 1024) == b"\xff" * (24 * 1024)


def test_64k_write_verify_takes_one_command_per_256_bytes(emulator_for, f1, database) -> None:
    """64 KiB write + verify: identify (Get, Get Version, Get ID), the readout-protection
    probe, one Erase of exactly the 64 pages touched, 256 full Write Memory blocks, 256
    full Read Memory blocks to verify -- nothing read back between erase and write (the
    automatic backup of in-system parts is off here; its own test counts it)."""
    emu = emulator_for(f1)
    image = firmware(64 * 1024)
    spec = CycleSpec("program", f1, image, backup=False)
    result = run(open_station(emu, f1, database), spec)
    assert result.passed, result.message
    assert emu.flash_bytes(FLASH, 64 * 1024) == image.read(FLASH, FLASH + 64 * 1024)
    assert emu.commands_seen == 3 + 1 + 1 + 256 + 256
    kinds = [kind for kind, _ in emu.log]
    assert kinds == ["read", "erase"] + ["write"] * 256 + ["read"] * 256
    assert emu.log[1] == ("erase", list(range(64)))
    assert {size for kind, (_addr, size) in emu.log[2:] if kind in ("write", "read")} == {256}


def test_typical_flash_timing_holds_the_acks(emulator_for, f1, database) -> None:
    """The emulator's datasheet timing (F1: 20 ms a page erase, 52.5 us a half-word)."""
    emu = emulator_for(f1, timing="typical")
    result = run(open_station(emu, f1, database), CycleSpec("program", f1, firmware(2048)))
    assert result.passed, result.message
    assert emu.busy_s == pytest.approx(2 * 0.020 + 1024 * 52.5e-6)
    with pytest.raises(ValueError, match="typical"):
        Stm32Emulator(STM32F03X, timing="typical")  # no timing written down for it


def test_wire_time_at_the_host_baud_rate(emulator_for, f1) -> None:
    """``wire=True``: each byte costs 10 bit times at the rate the host set."""
    emu = emulator_for(f1, wire=True)
    with serial.Serial(emu.port, 9600, timeout=1) as port:
        port.write(b"\x7f")
        assert port.read(1) == b"\x79"  # 2 bytes on the wire
        port.write(b"\x11\xee\x08\x00\x00\x00\x08\x03\xfc")  # read 4 bytes: 9 out
        assert port.read(7) == b"\x79\x79\x79" + OLD[:4]  # 7 back
    assert emu.wire_s == pytest.approx(18 * 10 / 9600)


def test_erased_value_zero_and_small_pages(emulator_for, database) -> None:
    """STM32L0: flash erases to 0x00, 128-byte pages (writes shrink to a page)."""
    l0 = database.get("st.stm32l05x-l06x")
    emu = emulator_for(l0)
    image = firmware(1000, FLASH + 0x100)
    result = run(open_station(emu, l0, database), CycleSpec("program", l0, image))
    assert result.passed, result.message
    assert ("erase", list(range(2, 10))) in emu.log
    assert emu.flash_bytes(FLASH + 0x100 + 1000, 24) == bytes(24)
    assert emu.flash_bytes(FLASH, 0x100) == (OLD * 2)[:0x100]


def test_image_below_the_flash_is_refused(emulator_for, f1, database) -> None:
    emu = emulator_for(f1)
    image = MemoryImage.from_bytes(b"\x01" * 64, 0)
    result = run(open_station(emu, f1, database), CycleSpec("program", f1, image))
    assert result.status == "fail"
    assert result.failed_step == "plan" and "below the memory at 0x8000000" in result.message


def test_verify_mismatch_reports_the_flash_address(emulator_for, f1, database) -> None:
    emu = emulator_for(f1)
    image = firmware(512)
    result = run(open_station(emu, f1, database), CycleSpec("verify", f1, image))
    assert result.status == "fail" and result.failed_step == "verify"
    assert result.address == FLASH and result.message.startswith("verify failed at 0x8000000")


# -- refusals -------------------------------------------------------------------------


def test_no_bootloader_answer(emulator_for, f1, database, monkeypatch) -> None:
    monkeypatch.setattr(stm32_bootloader, "SYNC_TIMEOUT_S", 0.01)
    emu = emulator_for(f1, max_baud=4800)  # never locks on: as with TX/RX swapped
    result = run(open_station(emu, f1, database), CycleSpec("identify", f1))
    assert result.status == "fail" and result.failed_step == "identify"
    assert "no answer from the STM32 bootloader" in result.message
    assert "115200, 57600, 38400, 19200, 9600 baud" in result.message


def test_writing_unerased_flash_is_refused(emulator_for, f1, database) -> None:
    emu = emulator_for(f1)
    spec = CycleSpec("program", f1, firmware(2048), erase_mode="none")
    result = run(open_station(emu, f1, database), spec)
    assert result.status == "fail" and result.failed_step == "program"
    assert result.address == FLASH and "page not erased" in result.message


def test_emulator_nacks_bad_frames(emulator_for, f1) -> None:
    emu = emulator_for(f1)
    with serial.Serial(emu.port, 115200, timeout=0.2) as port:
        port.write(b"\x7f")
        assert port.read(1) == b"\x79"  # synced
        port.write(b"\x00\x00")  # Get with a wrong complement
        assert port.read(1) == b"\x1f"
        port.write(b"\x11\xee\x08\x00\x00\x00\x00")  # address checksum wrong
        assert port.read(2) == b"\x79\x1f"
        port.write(b"\x11\xee\x30\x00\x00\x00\x30")  # no memory there
        assert port.read(2) == b"\x79\x1f"
        port.write(b"\x11\xee\x08\x00\x00\x00\x08\x03\xfc")  # 4 bytes at 0x08000000
        assert port.read(6) == b"\x79\x79\x79" + OLD[:3]
        assert port.read(1) == OLD[3:4]
        port.write(b"\x7f")  # a second 0x7F is the first byte of a command ...
        assert port.read(1) == b""
        port.write(b"\x7f")  # ... and with its non-complement, a bad one
        assert port.read(1) == b"\x1f"


def test_wrong_pid_names_the_part_found(emulator_for, f1, f4, database) -> None:
    emu = emulator_for(f4)
    result = run(open_station(emu, f1, database), CycleSpec("program", f1, firmware(1024)))
    assert result.status == "fail" and result.failed_step == "identify"
    found, wanted = f"{f4.vendor} {f4.part}", f"{f1.vendor} {f1.part}"
    assert result.message == (
        f"unexpected part: found PID 0x413 ({found}), expected 0x410 ({wanted})"
    )
    assert result.candidates == (found,)
    assert result.chip_id == "0413"
    # a station without a database to name parts: the message just leaves them out
    station = open_station(emu, f1, database)
    station.names = None
    result = run(station, CycleSpec("identify", f1))
    assert result.message == f"unexpected part: found PID 0x413, expected 0x410 ({wanted})"


def test_readout_protected_part(emulator_for, f1, database) -> None:
    emu = emulator_for(f1, readout_protected=True)
    image = firmware(4096)
    result = run(open_station(emu, f1, database), CycleSpec("program", f1, image))
    assert result.status == "fail" and result.failed_step == "protection"
    assert "readout protection (RDP) is active" in result.message
    assert emu.readout_protected and not any(kind == "erase" for kind, _ in emu.log)

    spec = CycleSpec("program", f1, image, unprotect=True, protect=True)
    result = run(open_station(emu, f1, database), spec)
    assert result.passed, result.message
    kinds = [kind for kind, _ in emu.log]
    assert kinds.index("readout-unprotect") < kinds.index("write") < kinds.index("readout-protect")
    assert emu.readout_protected  # protected again at the end, as asked
    assert emu.flash_bytes(FLASH, 4096) == image.read(FLASH, FLASH + 4096)


def test_link_drop_is_link_lost(emulator_for, f1, database) -> None:
    emu = emulator_for(f1)
    emu.drop_after_commands = 40  # mid-program
    station = open_station(emu, f1, database)
    site = station.programmer.sites[0]
    result = run(station, CycleSpec("program", f1, firmware(32 * 1024), backup=False))
    assert result.status == "link-lost", result.message
    assert result.failed_step in ("erase", "program")
    assert site.link_lost
    assert site.reconnect() is False  # the port is gone, as after an unplug


def test_reconnect_reopens_the_same_port(emulator_for, f1, database) -> None:
    emu = emulator_for(f1)
    station = open_station(emu, f1, database)
    site = station.programmer.sites[0]
    site.uart.close()
    site.link_lost = True
    result = run(station, CycleSpec("identify", f1))
    assert result.passed, result.message
    assert not site.link_lost


def test_baud_fallback(emulator_for, f1, database) -> None:
    emu = emulator_for(f1, max_baud=57600)
    station = open_station(emu, f1, database, "&baud=115200")
    link = station.programmer.sites[0].uart
    try:
        result = station.run(CycleSpec("identify", f1)).results[0]
        assert result.passed, result.message
        assert link.baud == 57600 == emu.host_baud()
    finally:
        station.programmer.close()


def test_finish_runs_the_application_only_after_a_pass(
    emulator_for, f1, f4, database, monkeypatch
) -> None:
    calls: list[str] = []
    monkeypatch.setattr(uart.UartLink, "run_application", lambda self: calls.append("run"))
    emu = emulator_for(f1)
    assert run(open_station(emu, f1, database), CycleSpec("identify", f1)).passed
    assert calls == ["run"]
    emu4 = emulator_for(f4)
    assert not run(open_station(emu4, f1, database), CycleSpec("identify", f1)).passed
    assert calls == ["run"]


# -- stm32flash against the emulator -----------------------------------------------

STM32FLASH = shutil.which("stm32flash")
needs_stm32flash = pytest.mark.skipif(STM32FLASH is None, reason="stm32flash not installed")


def stm32flash(emu: Stm32Emulator, *args: str) -> subprocess.CompletedProcess[str]:
    # Linux clears PARENB on a pty and stm32flash checks its settings took: 8n1 here.
    emu.reset()  # stm32flash starts with 0x7F, as after a reset into the bootloader
    return subprocess.run(
        [STM32FLASH or "stm32flash", "-b", "115200", "-m", "8n1", *args, emu.port],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@needs_stm32flash
def test_stm32flash_reads_what_socketeer_wrote(emulator_for, f1, database, tmp_path) -> None:
    emu = emulator_for(f1)
    image = firmware(6 * 1024)
    assert run(open_station(emu, f1, database), CycleSpec("program", f1, image)).passed
    out = tmp_path / "out.bin"
    done = stm32flash(emu, "-r", str(out), "-S", f"0x{FLASH:08X}:{6 * 1024}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Device ID    : 0x0410 (STM32F10xxx Medium-density)" in done.stdout
    assert "Version      : 0x22" in done.stdout
    assert out.read_bytes() == image.read(FLASH, FLASH + 6 * 1024)


@needs_stm32flash
def test_socketeer_reads_what_stm32flash_wrote(emulator_for, f4, database, tmp_path) -> None:
    emu = emulator_for(f4)
    data = os.urandom(5000)
    path: Path = tmp_path / "in.bin"
    path.write_bytes(data)
    done = stm32flash(emu, "-w", str(path), "-v", "-S", f"0x{FLASH + 0x4000:08X}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Device ID    : 0x0413 (STM32F40xxx/41xxx)" in done.stdout
    assert ("erase", [1]) in emu.log  # stm32flash, too, erased sector 1 only
    emu.reset()
    spec = CycleSpec("read", f4, read_range=(FLASH + 0x4000, FLASH + 0x4000 + len(data)))
    result = run(open_station(emu, f4, database), spec)
    assert result.passed, result.message
    assert result.data == data


def test_emulator_thread_stops(f1) -> None:
    before = threading.active_count()
    with Stm32Emulator(PARTS[f1.id]):
        pass
    assert threading.active_count() == before


def test_cli_program_read_and_wrong_part(emulator_for, f1, f4, tmp_path, capsys) -> None:
    """`socketeer program/read` address STM32 flash where it lives (0x08000000)."""
    from app.cli import main
    from app.core.formats import load_image, save_image

    emu = emulator_for(f1)
    image = firmware(6 * 1024)
    hex_file = tmp_path / "app.hex"
    save_image(image, hex_file, "ihex")
    url = f"uart://{emu.port}?parity=none"
    assert main(["program", "--device", f1.id, "--programmer", url, str(hex_file)]) == 0
    dump = tmp_path / "dump.hex"
    rng = f"0x{FLASH:X}:0x{FLASH + 6 * 1024:X}"
    assert main(["read", "--device", f1.id, "--programmer", url, "--range", rng, str(dump)]) == 0
    assert load_image(dump).image == image
    capsys.readouterr()
    code = main(["verify", "--device", f4.id, "--programmer", url, str(hex_file)])
    out = capsys.readouterr().out
    assert code == 1 and "found PID 0x410" in out and "STM32F10" in out


def test_cli_detect_names_the_stm32(emulator_for, f4, capsys) -> None:
    import json

    from app.cli import main

    emu = emulator_for(f4)
    assert main(["detect", "--programmer", f"uart://{emu.port}?parity=none", "--json"]) == 0
    site = json.loads(capsys.readouterr().out)["sites"][0]
    assert site["stm32_pid"] == "0x413" and f4.id in site["candidates"]


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="POSIX pseudo-terminals")
def test_a_port_in_a_state_termios_refuses_is_a_link_error(capsys) -> None:
    """An even-parity open leaves a pty in a state the next open's tcsetattr refuses
    (termios.error, which is not an OSError): one line, exit 3, no traceback."""
    from app.cli import main
    from app.hal.errors import HalError

    master, slave = os.openpty()
    try:
        path = os.ttyname(slave)
        open_programmer(f"uart://{path}").close()
        with pytest.raises(HalError, match=f"cannot open serial port {path}"):
            open_programmer(f"uart://{path}")
        assert main(["detect", "--programmer", f"uart://{path}"]) == 3
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and path in err
    finally:
        os.close(master)
        os.close(slave)
