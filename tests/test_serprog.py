"""The serprog backend against an emulated serprog board on a pty (tests/serprog_emulator),
and the emulator against the real flashrom where it is installed."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial
from serprog_emulator import SerprogEmulator, make_chip  # tests/ is on sys.path

from app.algorithms.spi_nor import identify_jedec
from app.core.image import MemoryImage
from app.engine.site_runner import CycleSpec
from app.engine.station import Station
from app.hal import serprog
from app.hal.bus import SpiOp, WaitReady
from app.hal.errors import BusTimeout, HalError, LinkError, ProgrammerUrlError
from app.hal.programmer import open_programmer, parse_url

WREN = SpiOp(b"\x06")


def random_bytes(size: int) -> bytes:
    data = bytearray(os.urandom(size))
    return bytes(b if b != 0xFF else 0x5A for b in data)  # every byte really programmed


@pytest.fixture
def device(database):
    return database.get("winbond.w25q128jv")


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[SerprogEmulator]:
    """A board with a 300-byte serial buffer behind a stable path (like /dev/serial/by-id)."""
    emu = SerprogEmulator(make_chip(), serbuf=300, link=tmp_path / "ttyACM0")
    emu.plug()
    yield emu
    emu.unplug()


def station(url: str, device, database) -> Station:
    programmer = open_programmer(url, device=device, database=database)
    return Station(programmer, lambda _event: None)


# -- Socketeer's stack over the pty ---------------------------------------------------


def test_station_programs_verifies_and_reads_back(emulator, device, database) -> None:
    st = station(f"serprog://{emulator.path}?spispeed=12M", device, database)
    emulator.max_batch = 0  # count from here: the sync's NOP flood is not pipelining
    site = st.programmer.sites[0]
    assert site.in_system and not site.board_powered and site.part_present()
    assert st.programmer.capabilities.buses == frozenset({"spi"})
    data = random_bytes(128 * 1024)
    image = MemoryImage.from_bytes(data, 0)

    result = st.run(CycleSpec("program", device, image)).results[0]
    assert result.passed, result.message
    assert result.chip_id == "EF4018"
    assert "connect" in result.timings and "socket" not in result.timings  # in-system
    assert bytes(emulator.chip.memory[: len(data)]) == data

    ident = st.run(CycleSpec("identify", device)).results[0]
    assert ident.passed and ident.chip_id == "EF4018"
    read = st.run(CycleSpec("read", device, read_range=(0, len(data)))).results[0]
    assert read.passed and read.data == data
    st.programmer.close()

    # Pins driven only inside a cycle; the clock capped to spispeed (48 MHz / 4).
    assert emulator.pin_states[:2] == [True, False] and emulator.pin_states[-1] is False
    assert emulator.spi_hz == 12_000_000
    # Pipelining stayed inside the 300-byte serial buffer, and did pipeline.
    assert emulator.overruns == 0
    assert emulator.max_backlog <= 300
    assert emulator.max_batch >= 2


def test_write_poll_batch_costs_one_round_trip(emulator, monkeypatch) -> None:
    writes = []
    real = serprog.SerprogClient.write

    def counting(self, data):
        writes.append(data)
        return real(self, data)

    programmer = open_programmer(f"serprog://{emulator.path}")
    bus = programmer.sites[0].spi
    programmer.sites[0].power(True)
    monkeypatch.setattr(serprog.SerprogClient, "write", counting)
    page = bytes(range(256))
    wait = WaitReady(0x05, 0x01, 0x00, timeout_s=1.0, hint_s=0.0004, kind="page program")
    out = bus.transfer([WREN, SpiOp(b"\x02\x00\x01\x00" + page), wait])
    assert out == [b"", b"", b"\x00"]
    # WREN + PAGE PROGRAM + first status poll in one write (on a slow link more reads
    # may follow while the answer is on its way: the datasheet time is all it knows yet)
    assert writes[0].count(b"\x13\x01\x00\x00") == 2 and writes[0].endswith(b"\x05")
    writes.clear()
    polls = emulator.opcodes[0x05]
    ops = []
    for n in range(4):
        ops += [WREN, SpiOp(bytes([0x02, 0, 2 + n, 0]) + page), wait]
    bus.transfer(ops)
    # a part that is ready at once: one write (and answer) per page, no sleep, no
    # second status read, whatever the datasheet's typical time says
    assert len(writes) == 4 and emulator.opcodes[0x05] - polls == 4
    assert bytes(emulator.chip.memory[0x100:0x600]) == page * 5
    programmer.close()


def _erase_4k_three_times(path: str) -> tuple[float, list[int]]:
    """Three 4 KiB erases; the learned erase time and the status reads each took."""
    programmer = open_programmer(f"serprog://{path}")
    site = programmer.sites[0]
    site.power(True)
    wait = WaitReady(0x05, 0x01, 0x00, timeout_s=0.5, hint_s=0.045, kind="erase 4K")
    reads = []
    for _ in range(3):
        before = site.spi.poller.polls
        site.spi.transfer([WREN, SpiOp(b"\x20\x00\x00\x00"), wait])
        reads.append(site.spi.poller.polls - before)
    learned = site.spi.poller.learned["erase 4K"]
    site.power(True)  # a new cycle (maybe a new part): learned anew
    assert site.spi.poller.learned == {}
    programmer.close()
    return learned, reads


def test_busy_waits_follow_the_part_not_the_datasheet(tmp_path) -> None:
    """A part twice as fast as typical is learned as such (the schedule then reads its
    status at its own time, not the datasheet's); reads stay few per wait."""
    learned = {}
    for timing in ("typ", "scale:0.5"):  # 4 KiB erase: 45 ms, then 22.5 ms
        with SerprogEmulator(make_chip(timing=timing), link=tmp_path / timing) as emu:
            learned[timing], reads = _erase_4k_three_times(emu.path)
            assert emu.overruns == 0
        assert max(reads) <= 12, reads  # not a busy loop of round trips
    assert 0.030 < learned["typ"] < 0.060
    assert learned["scale:0.5"] < 0.75 * learned["typ"]


def test_status_reads_are_pipelined_within_the_serial_buffer(tmp_path, device, database):
    """A part at typical times (0.4 ms a page): several status reads in flight at once,
    the next page's commands behind them, never more than the 300-byte buffer."""
    with SerprogEmulator(make_chip(timing="typ"), serbuf=300, link=tmp_path / "t") as emu:
        st = station(f"serprog://{emu.path}", device, database)
        data = random_bytes(32 * 1024)
        assert st.run(CycleSpec("program", device, MemoryImage.from_bytes(data, 0))).all_passed
        poller = st.programmer.sites[0].spi.poller
        st.programmer.close()
        assert bytes(emu.chip.memory[: len(data)]) == data
        assert emu.overruns == 0 and emu.max_backlog <= 300
        assert emu.max_batch >= 3  # status reads (and commands) queued together
        assert poller.waits >= 128 and poller.polls / poller.waits < 8


def test_small_serial_buffer_is_respected(tmp_path, device, database) -> None:
    with SerprogEmulator(make_chip(), serbuf=64, link=tmp_path / "tty") as emu:
        st = station(f"serprog://{emu.path}", device, database)
        data = random_bytes(16 * 1024)
        assert st.run(CycleSpec("program", device, MemoryImage.from_bytes(data, 0))).all_passed
        st.programmer.close()
        assert bytes(emu.chip.memory[: len(data)]) == data
        assert emu.overruns == 0  # a page program (267 bytes) goes alone, nothing beside it


def test_overrun_detector_has_teeth(emulator) -> None:
    with serial.Serial(emulator.path, timeout=1) as port:
        port.write(bytes([serprog.Cmd.NOP]) * 600)  # twice the buffer, no reads between
        assert port.read(600) == bytes([serprog.ACK]) * 600
    assert emulator.overruns >= 1


def test_reads_split_to_max_read_length(tmp_path, device, database) -> None:
    with SerprogEmulator(make_chip(), max_read=4096, max_write=0, link=tmp_path / "t") as emu:
        data = random_bytes(64 * 1024)
        emu.chip.memory[0x10000 : 0x10000 + len(data)] = data
        st = station(f"serprog://{emu.path}", device, database)
        spec = CycleSpec("read", device, read_range=(0x10000, 0x20000), verified_read=False)
        result = st.run(spec).results[0]
        assert result.passed and result.data == data
        assert emu.opcodes[0x0B] == 16  # 64 KiB as 16 fast reads of 4 KiB
        bus = st.programmer.sites[0].spi
        st.programmer.sites[0].power(True)
        with pytest.raises(HalError, match=r"at most 4096 \(Q_RDNMAXLEN\)"):
            bus.transfer([SpiOp(b"\x5a\x00\x00\x00\x00", 8192)])  # SFDP: cannot re-issue
        st.programmer.close()


def test_split_read_addresses() -> None:
    parts = serprog.split_read(SpiOp(b"\x13\x01\x00\x00\x00", 10), 4)
    assert parts == [
        (b"\x13\x01\x00\x00\x00", 4),
        (b"\x13\x01\x00\x00\x04", 4),
        (b"\x13\x01\x00\x00\x08", 2),
    ]
    assert serprog.split_read(SpiOp(b"\x0b\x00\x10\x00\xaa", 8), 4)[1] == (
        b"\x0b\x00\x10\x04\xaa",
        4,
    )
    assert serprog.split_read(SpiOp(b"\x03\xff\xff\xfe", 4), 2) is None  # crosses 16 MiB
    assert serprog.split_read(SpiOp(b"\x9f", 9), 3) is None


def test_write_above_max_write_names_the_limit(tmp_path) -> None:
    with SerprogEmulator(make_chip(), max_write=128, link=tmp_path / "t") as emu:
        programmer = open_programmer(f"serprog://{emu.path}")
        programmer.sites[0].power(True)
        with pytest.raises(HalError, match=r"at most 128 \(Q_WRNMAXLEN\).*at least 261"):
            programmer.sites[0].spi.transfer([WREN, SpiOp(b"\x02\x00\x00\x00" + bytes(256))])
        programmer.close()


def test_wait_ready_polls_a_busy_part_and_times_out(tmp_path) -> None:
    chip = make_chip(timing="typ")  # real time: a 4 KiB erase is busy for 45 ms
    with SerprogEmulator(chip, link=tmp_path / "t") as emu:
        programmer = open_programmer(f"serprog://{emu.path}")
        bus = programmer.sites[0].spi
        programmer.sites[0].power(True)
        erase = [WREN, SpiOp(b"\x20\x00\x00\x00"), WaitReady(timeout_s=1.0, hint_s=0.0)]
        assert bus.transfer(erase)[2] == b"\x00"
        assert emu.opcodes[0x05] > 1  # polled while busy
        chip.faults.busy_forever = True
        with pytest.raises(BusTimeout, match="within 50 ms"):
            bus.transfer([WREN, SpiOp(b"\x20\x00\x00\x00"), WaitReady(timeout_s=0.05)])
        assert not programmer.sites[0].link_lost  # a busy part is not a lost link
        programmer.close()


def test_a_lagging_programmer_does_not_fail_a_good_part(tmp_path) -> None:
    """The board runs the erase 0.1 s late (a stalled USB stack or firmware): reads the
    host sent past the 50 ms deadline still ran right after the erase and say busy. The
    deadline runs from the board's answer to the erase, so the part is waited for."""
    chip = make_chip(timing="typ")  # a 4 KiB erase is busy for 45 ms
    with SerprogEmulator(chip, link=tmp_path / "t") as emu:
        programmer = open_programmer(f"serprog://{emu.path}")
        site = programmer.sites[0]
        site.power(True)
        execute = emu._execute

        def lagging(frame: bytes):
            if frame[:1] == b"\x13" and frame[7:8] == b"\x20":
                time.sleep(0.1)
            return execute(frame)

        emu._execute = lagging  # type: ignore[method-assign]
        erase = [WREN, SpiOp(b"\x20\x00\x00\x00"), WaitReady(timeout_s=0.05, hint_s=0.045)]
        assert site.spi.transfer(erase)[2] == b"\x00"
        chip.faults.busy_forever = True  # and a part really busy still times out
        with pytest.raises(BusTimeout, match="within 50 ms"):
            site.spi.transfer(erase)
        programmer.close()


def test_link_drop_mid_program_then_reconnect(emulator, device, database) -> None:
    emulator.drop_after_spiops = 300  # the cable comes out during the page programs
    st = station(f"serprog://{emulator.path}", device, database)
    site = st.programmer.sites[0]
    data = random_bytes(128 * 1024)
    image = MemoryImage.from_bytes(data, 0)
    result = st.run(CycleSpec("program", device, image, backup=False)).results[0]
    assert result.status == "link-lost", result.message
    assert "link lost during program" in result.message
    assert site.link_lost
    assert not site.reconnect()  # still unplugged: the port path is gone

    emulator.drop_after_spiops = None
    emulator.plug()  # a new pty behind the same path, as USB re-enumeration gives
    again = st.run(CycleSpec("program", device, image, backup=False)).results[0]  # reconnects
    assert again.passed, again.message
    assert not site.link_lost
    assert bytes(emulator.chip.memory[: len(data)]) == data
    st.programmer.close()


def test_silent_programmer_is_a_lost_link(emulator) -> None:
    programmer = open_programmer(f"serprog://{emulator.path}?timeout=0.3")
    site = programmer.sites[0]
    site.power(True)
    emulator.mute()
    with pytest.raises(LinkError, match=r"no answer for 0.3 s"):
        site.spi.transfer([SpiOp(b"\x9f", 3)])
    assert site.link_lost
    site.power(False)  # cleanup on a lost link does not raise
    with pytest.raises(LinkError):
        site.spi.transfer([SpiOp(b"\x9f", 3)])
    emulator.mute(False)
    assert site.reconnect()
    assert identify_jedec(site.spi).hex == "EF4018"
    programmer.close()


# -- URLs and opening errors ----------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("serprog://", "names no port"),
        ("serprog:///dev/ttyACM0?speed=1", "unknown serprog option.*known: baud"),
        ("serprog:///dev/ttyACM0?spispeed=fast", "expected Hz"),
        ("serprog:///dev/ttyACM0?connection=clip", "in-system or socket"),
        ("serprog:///dev/ttyACM0?power=usb", "programmer or board"),
        ("serprog:///dev/ttyACM0?baud=-1", "baud"),
    ],
)
def test_bad_urls(url: str, message: str) -> None:
    with pytest.raises(ProgrammerUrlError, match=message):
        open_programmer(url)


def test_url_port_and_options(emulator) -> None:
    assert serprog.port_from_url(parse_url("serprog://COM3")) == "COM3"
    assert serprog.port_from_url(parse_url("serprog:///COM12")) == "COM12"
    assert serprog.port_from_url(parse_url("serprog:///dev/ttyACM0")) == "/dev/ttyACM0"
    assert serprog.parse_hz("8M") == 8_000_000 and serprog.parse_hz("500k") == 500_000
    programmer = open_programmer(f"serprog://{emulator.path}?connection=socket&power=board")
    site = programmer.sites[0]
    assert not site.in_system and site.board_powered
    assert programmer.name == f"serprog socketeer-emu on {emulator.path}"
    programmer.close()


def test_missing_port_says_so(tmp_path) -> None:
    missing = tmp_path / "ttyACM7"
    with pytest.raises(HalError, match=r"no serial port .*ttyACM7.*plugged in") as info:
        open_programmer(f"serprog://{missing}")
    assert not isinstance(info.value, ProgrammerUrlError)
    with pytest.raises(HalError, match="not a serial port"):
        open_programmer("serprog:///dev/null")


def test_permission_denied_names_the_fix() -> None:
    text = serprog._open_error("/dev/ttyACM0", OSError(errno.EACCES, "Permission denied"))
    assert "/dev/ttyACM0" in text and "dialout" in text and "udev" in text


def test_port_without_serprog_firmware(emulator) -> None:
    emulator.mute()
    with pytest.raises(HalError, match=r"no programmer answers on .*SYNCNOP"):
        open_programmer(f"serprog://{emulator.path}?timeout=0.2")


# -- the emulator against the real flashrom -------------------------------------------


def _flashrom(emu: SerprogEmulator, *args: str) -> str:
    cmd = ["flashrom", "-p", f"serprog:dev={emu.path}:115200", "-c", "W25Q128.V", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert 'Found Winbond flash chip "W25Q128.V" (16384 kB, SPI) on serprog' in done.stdout
    return done.stdout


@pytest.mark.skipif(shutil.which("flashrom") is None, reason="flashrom is not installed")
def test_flashrom_agrees_with_the_emulator(emulator, device, database, tmp_path) -> None:
    size = device.size_bytes
    ours = random_bytes(64 * 1024)
    st = station(f"serprog://{emulator.path}", device, database)
    assert st.run(CycleSpec("program", device, MemoryImage.from_bytes(ours, 0))).all_passed
    st.programmer.close()

    out = tmp_path / "out.bin"
    _flashrom(emulator, "-r", str(out))  # flashrom reads what Socketeer wrote
    dump = out.read_bytes()
    assert len(dump) == size and dump[: len(ours)] == ours
    assert dump[len(ours) :] == b"\xff" * (size - len(ours))

    theirs = bytearray(dump)
    theirs[0x8000:0x18000] = random_bytes(0x10000)  # erase + rewrite for flashrom
    new = tmp_path / "new.bin"
    new.write_bytes(theirs)
    assert "VERIFIED" in _flashrom(emulator, "-w", str(new))
    assert "VERIFIED" in _flashrom(emulator, "-v", str(new))

    st = station(f"serprog://{emulator.path}", device, database)
    expected = MemoryImage.from_bytes(bytes(theirs[:0x20000]), 0)
    assert st.run(CycleSpec("verify", device, expected)).all_passed  # Socketeer agrees
    st.programmer.close()
    assert emulator.overruns == 0
