"""The CH341A backend against a fake CH341A at the USB packet level (tests/ch341a_fake.py)
feeding the simulator's chip models: real algorithms, real engine, no hardware."""

from __future__ import annotations

import math
import random

import pytest
from ch341a_fake import FakeCh341Usb  # tests/ is on sys.path (rootdir)
from ftdi_fake import eeprom_chip, spi_chip
from test_interfaces import check

from app.core.image import MemoryImage
from app.engine.events import LogEvent
from app.engine.site_runner import CycleSpec
from app.engine.station import Station
from app.hal.bus import I2cBus, SpiBus, SpiOp
from app.hal.errors import HalError, LinkError, ProgrammerUrlError
from app.hal.programmer import open_programmer
from app.hal.sim.clock import SimClock, Timing
from app.hal.sim.spi_eeprom_chip import SpiEepromChip


@pytest.fixture(scope="module")
def w25q128(database):
    return database.get("winbond.w25q128jv")


@pytest.fixture
def usb() -> FakeCh341Usb:
    return FakeCh341Usb()


def open_ch341a(url: str, usb: FakeCh341Usb, device=None, database=None):
    return open_programmer(url, device=device, database=database, ch341a_backend=usb.backend())


def image(size: int, base: int = 0, seed: int = 5) -> MemoryImage:
    rng = random.Random(seed)
    return MemoryImage.from_bytes(
        bytes(b if b != 0xFF else 0x3C for b in rng.randbytes(size)), base
    )


def station(programmer, database) -> Station:
    def names(id_hex: str) -> list[str]:
        return [f"{d.vendor} {d.part}" for d in database.identify("jedec", id_hex).candidates]

    return Station(programmer, lambda _e: None, names)


# -- SPI ------------------------------------------------------------------------------


def test_spi_nor_identify_program_verify_read(usb, w25q128, database) -> None:
    chip = spi_chip(w25q128)
    board = usb.add(chip, bus=3, address=9)
    programmer = open_ch341a("ch341a://?vcc=3300", usb, w25q128, database)
    assert programmer.url == "ch341a://3:9"  # bound by USB path: the board has no serial
    (site,) = check(programmer)
    assert isinstance(site.spi, SpiBus) and site.i2c is None and site.microwire is None
    img = image(6000, base=0x3000)
    st = station(programmer, database)
    result = st.run(CycleSpec("program", w25q128, img)).results[0]
    assert result.status == "pass", result.message
    assert result.chip_id == "EF4018"
    assert bytes(chip.memory[0x3000 : 0x3000 + 6000]) == img.read(0x3000, 0x3000 + 6000)
    assert chip.memory[0x2FFF] == 0xFF and chip.memory[0x3000 + 6000] == 0xFF
    read = st.run(CycleSpec("read", w25q128, read_range=(0x3000, 0x3000 + 6000))).results[0]
    assert read.data == img.read(0x3000, 0x3000 + 6000)
    # the part saw whole frames: every page program is one /CS frame with its data
    programs = [f for f in board.frames if f[0] == 0x02]
    assert programs and all(len(f) == 4 + 256 for f in programs[1:-1])
    programmer.close()
    assert board.direction == 0  # SPI lines released when closed


def test_reads_are_batched_into_few_usb_writes(usb, w25q128) -> None:
    chip = spi_chip(w25q128)
    chip.memory[:65536] = image(65536).read(0, 65536)
    board = usb.add(chip)
    site = open_ch341a("ch341a://?vcc=3300", usb, w25q128).sites[0]
    site.power(True, 3300)
    board.bulk_out = board.bulk_in = board.packets_out = 0
    ops = [SpiOp(b"\x03" + (a).to_bytes(3, "big"), 4096) for a in range(0, 65536, 4096)]
    data = b"".join(site.spi.transfer(ops))
    assert data == bytes(chip.memory[:65536])
    # 65536 bytes at 31 per packet, 256 packets per USB write (plus a /CS packet per op)
    assert board.bulk_out <= math.ceil(65536 / 31 / 256) + 1
    assert board.bulk_in == board.packets_out - len(ops) - 1  # one answer per SPI packet


def test_a_write_ends_its_usb_write_and_reads_share_one(usb, w25q128) -> None:
    board = usb.add(spi_chip(w25q128))
    site = open_ch341a("ch341a://?vcc=3300", usb, w25q128).sites[0]
    site.power(True, 3300)
    board.bulk_out = 0
    wren, status = SpiOp(b"\x06"), SpiOp(b"\x05", 1)
    assert site.spi.transfer([wren, status]) == [b"", b"\x02"]  # WEL set
    assert board.bulk_out == 2  # the short WREN packet must end a USB write
    board.bulk_out = 0
    assert site.spi.transfer([SpiOp(b"\x9f", 3)] * 5) == [b"\xef\x40\x18"] * 5
    assert board.bulk_out == 1


def test_spi_eeprom_program_and_verify(usb, database) -> None:
    device = database.get("microchip.25lc256")
    chip = SpiEepromChip(device, SimClock(Timing("instant")))
    usb.add(chip)
    programmer = open_ch341a("ch341a://", usb, device, database)
    img = image(3000, base=0x400)
    result = station(programmer, database).run(CycleSpec("program", device, img)).results[0]
    assert result.status == "pass", result.message
    assert bytes(chip.memory[0x400 : 0x400 + 3000]) == img.read(0x400, 0x400 + 3000)


def test_the_clock_is_fixed_and_a_slower_part_is_refused(usb, w25q128) -> None:
    usb.add(spi_chip(w25q128))
    programmer = open_ch341a("ch341a://?vcc=3300", usb, w25q128)
    spi = programmer.sites[0].spi
    assert programmer.capabilities.max_spi_clock_hz == spi.max_clock_hz == 1_500_000
    assert spi.set_clock(133_000_000) == 1_500_000
    with pytest.raises(HalError, match=r"fixed 1\.5 MHz"):
        spi.set_clock(1_000_000)


# -- I2C ------------------------------------------------------------------------------


@pytest.mark.parametrize(("query", "speed"), [("", 2), ("?i2c=1&clock=100k", 1)])
def test_i2c_eeprom_program_and_verify(usb, database, query, speed) -> None:
    device = database.get("microchip.24lc256")
    chip = eeprom_chip(device)
    board = usb.add(chip)
    programmer = open_ch341a(f"ch341a://{query}", usb, device, database)
    (site,) = check(programmer)
    assert isinstance(site.i2c, I2cBus) and site.spi is None
    assert board.i2c_speed == speed
    img = image(3000, base=0x200)
    st = station(programmer, database)
    result = st.run(CycleSpec("program", device, img)).results[0]
    assert result.status == "pass", result.message
    assert bytes(chip.memory[0x200 : 0x200 + 3000]) == img.read(0x200, 0x200 + 3000)
    read = st.run(CycleSpec("read", device, read_range=(0, 0x8000))).results[0]
    assert read.data == bytes(chip.memory)


def test_i2c_empty_socket_is_a_nack(usb, database) -> None:
    device = database.get("microchip.24lc256")
    usb.add(None)
    programmer = open_ch341a("ch341a://?i2c=1", usb, device, database)
    result = station(programmer, database).run(CycleSpec("identify", device)).results[0]
    assert result.status == "fail" and "no acknowledge" in result.message
    assert not programmer.sites[0].link_lost


# -- several boards, faults -------------------------------------------------------------


def test_two_boards_one_unplugged_mid_cycle(usb, w25q128, database) -> None:
    chips = [spi_chip(w25q128), spi_chip(w25q128)]
    first = usb.add(chips[0], address=5)
    second = usb.add(chips[1], address=6)
    programmer = open_ch341a(
        "ch341a://1:5?vcc=3300 ; ch341a://1:6?vcc=3300", usb, w25q128, database
    )
    assert [s.index for s in check(programmer)] == [1, 2]
    second.fail_after = 40  # the link drops during the program step
    img = image(16384)
    outcome = station(programmer, database).run(CycleSpec("program", w25q128, img))
    assert [r.status for r in outcome.results] == ["pass", "link-lost"]
    assert bytes(chips[0].memory[:16384]) == img.read(0, 16384)
    assert programmer.sites[1].link_lost
    # re-plugged at the same address it is found again; the first board was never touched
    second.fail_after = None
    assert programmer.sites[1].reconnect()
    again = station(programmer, database).run(CycleSpec("program", w25q128, img), [2])
    assert again.results[0].status == "pass", again.results[0].message
    assert first.plugged and not programmer.sites[0].link_lost


def test_every_board_and_reconnect_after_replug(usb, w25q128) -> None:
    usb.add(spi_chip(w25q128), address=7)
    usb.add(spi_chip(w25q128), address=4, serial="A1B2")
    programmer = open_ch341a("ch341a://*?vcc=3300", usb, w25q128)
    assert [s.device.location for s in programmer.sites] == ["1:4", "1:7"]
    with_serial = usb.boards[1]
    with_serial.unplug()
    with pytest.raises(LinkError, match="lost"):
        programmer.sites[0].spi.transfer([SpiOp(b"\x9f", 3)])
    assert programmer.sites[0].link_lost and not programmer.sites[0].reconnect()
    with_serial.replug(address=12)
    assert programmer.sites[0].reconnect()  # found again by serial at its new address
    programmer.sites[0].power(True, 3300)  # a cycle drives the SPI lines again
    assert programmer.sites[0].spi.transfer([SpiOp(b"\x9f", 3)]) == [b"\xef\x40\x18"]


def test_a_short_answer_is_a_link_error(usb, w25q128) -> None:
    board = usb.add(spi_chip(w25q128))
    site = open_ch341a("ch341a://?vcc=3300", usb, w25q128).sites[0]
    board.read_timeout_s = 0.05
    board.drop_reply_bytes = 3
    with pytest.raises(LinkError):
        site.spi.transfer([SpiOp(b"\x9f", 3)])
    assert site.link_lost


# -- safety and URLs ----------------------------------------------------------------------


def test_without_vcc_a_3v_part_is_warned_about_once_and_programmed(usb, w25q128, database):
    """The black board drives 5 V unless modified, which Socketeer cannot see: warn."""
    usb.add(spi_chip(w25q128))
    programmer = open_ch341a("ch341a://", usb, w25q128, database)
    assert programmer.capabilities.unstated_drive_mv == 5000
    events: list[object] = []
    runner = Station(programmer, events.append, lambda _id: [])
    for _ in range(2):
        result = runner.run(CycleSpec("identify", w25q128)).results[0]
        assert result.status == "pass", result.message
    warnings = [e for e in events if isinstance(e, LogEvent) and e.level == "warning"]
    assert len(warnings) == 1  # once per part, not every cycle
    text = warnings[0].message
    assert "5 V" in text and "at most 3.6 V" in text and "vcc=" in text


def test_with_vcc_a_part_rated_below_it_is_refused(usb, w25q128, database) -> None:
    board = usb.add(spi_chip(w25q128))
    programmer = open_ch341a("ch341a://?vcc=5000", usb, w25q128, database)
    assert programmer.capabilities.unstated_drive_mv is None
    result = station(programmer, database).run(CycleSpec("identify", w25q128)).results[0]
    assert result.status == "fail" and result.failed_step == "power"
    assert "5 V" in result.message and "3.6 V" in result.message and "vcc=" in result.message
    assert not board.frames  # nothing was clocked into the part


def test_a_station_of_boards_warns_when_any_board_is_unstated(usb, w25q128) -> None:
    usb.add(spi_chip(w25q128), bus=1, address=5)
    usb.add(spi_chip(w25q128), bus=1, address=6)
    both = open_ch341a("ch341a://1:5?vcc=3300 ; ch341a://1:6", usb, w25q128)
    assert both.capabilities.unstated_drive_mv == 5000


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ch341a://?speed=1", "unknown ch341a option"),
        ("ch341a://?clock=300k&i2c=1", "I2C clocks are 20k, 100k, 400k, 750k"),
        ("ch341a://?vcc=12000", "within 1000..5500"),
        ("ch341a://?i2c=maybe", "expected 0 or 1"),
        ("ch341a://?connection=clip", "expected socket or in-system"),
        ("ch341a://1:2/3", "BUS:ADDRESS"),
    ],
)
def test_url_option_errors(usb, url, message) -> None:
    with pytest.raises(ProgrammerUrlError, match=message):
        open_ch341a(url, usb)


def test_board_selection_errors(usb, w25q128) -> None:
    with pytest.raises(HalError, match="no CH341A matches ch341a://"):
        open_ch341a("ch341a://", usb)
    usb.add(spi_chip(w25q128), address=5)
    usb.add(spi_chip(w25q128), address=6)
    with pytest.raises(
        ProgrammerUrlError, match=r"2 CH341A boards .*\(ch341a://1:5 or ch341a://1:6\)"
    ):
        open_ch341a("ch341a://", usb)
    with pytest.raises(HalError, match=r"connected CH341A boards: 1:5, 1:6"):
        open_ch341a("ch341a://2:5", usb)
    assert open_ch341a("ch341a://001:006", usb).sites[0].device.location == "1:6"


# -- real hardware ----------------------------------------------------------------------


@pytest.mark.hardware
def test_real_ch341a_reads_an_id(request) -> None:
    url = request.config.getoption("--ch341a")
    if not url:
        pytest.skip("give --ch341a URL")
    programmer = open_programmer(url)
    try:
        site = programmer.sites[0]
        site.power(True)
        if site.spi is not None:
            (jedec,) = site.spi.transfer([SpiOp(b"\x9f", 3)])
            assert jedec not in (b"\xff\xff\xff", b"\x00\x00\x00"), "no part answers RDID"
        else:
            assert site.i2c is not None
            assert len(site.i2c.write_read(0x50, b"\x00\x00", 16)) == 16
    finally:
        programmer.close()


def test_the_cli_programs_a_w25q128_through_the_board(
    usb, w25q128, monkeypatch, tmp_path, capsys
) -> None:
    """`socketeer program --device winbond.w25q128jv --programmer ch341a://`, as typed."""
    import app.hal.ch341a as backend_module
    from app.cli import main

    board = usb.add(spi_chip(w25q128))
    monkeypatch.setattr(backend_module, "pyusb_backend", usb.backend)
    image = tmp_path / "fw.bin"
    data = random.Random(5).randbytes(20_000)
    image.write_bytes(data)
    argv = ["program", "--device", "winbond.w25q128jv", "--programmer", "ch341a://"]
    code = main([*argv, "--base", "0x10000", str(image)])
    out = capsys.readouterr().out
    assert code == 0 and "1 passed, 0 failed" in out, out
    assert "warning: the programmer may drive its signal lines at 5 V" in out
    assert bytes(board.chip.memory[0x10000 : 0x10000 + 20_000]) == data
