"""The CH347 backend against a fake CH347 at the USB packet level (tests/ch347_fake.py)
feeding the simulator's chip models: real algorithms, real engine, no hardware."""

from __future__ import annotations

import random

import pytest
from ch347_fake import CH347F, CH347T, CH347T_HID, FakeCh347, FakeCh347Usb, PyusbDevice
from ftdi_fake import eeprom_chip, spi_chip
from test_interfaces import check

from app.core.image import MemoryImage
from app.engine.events import LogEvent
from app.engine.site_runner import CycleSpec
from app.engine.station import Station
from app.hal.bus import I2cBus, SpiBus, SpiOp, WaitReady
from app.hal.ch347_usb import HidReports
from app.hal.errors import HalError, LinkError, ProgrammerUrlError
from app.hal.programmer import open_programmer
from app.hal.sim.clock import SimClock, Timing
from app.hal.sim.spi_eeprom_chip import SpiEepromChip


@pytest.fixture(scope="module")
def w25q128(database):
    return database.get("winbond.w25q128jv")


@pytest.fixture
def usb() -> FakeCh347Usb:
    return FakeCh347Usb()


@pytest.fixture(params=[CH347T, CH347T_HID], ids=["mode1", "mode2-hid"])
def product(request) -> int:
    """The CH347T in mode 1 (bulk) or mode 2 (HID reports): the key tests run on both."""
    return request.param


def check_transport(board: FakeCh347) -> None:
    """In mode 2 every transfer was a whole 512-byte report and none was ignored (mode 1's
    packets are checked by the fake as they come)."""
    if board.product == CH347T_HID:
        assert board.out_sizes == board.in_sizes == {512}
        assert board.ignored_reports == 0


def open_ch347(url: str, usb: FakeCh347Usb, device=None, database=None):
    return open_programmer(url, device=device, database=database, ch347_backend=usb.backend())


def image(size: int, base: int = 0, seed: int = 7) -> MemoryImage:
    rng = random.Random(seed)
    return MemoryImage.from_bytes(
        bytes(b if b != 0xFF else 0x3C for b in rng.randbytes(size)), base
    )


def station(programmer, database) -> Station:
    def names(id_hex: str) -> list[str]:
        return [f"{d.vendor} {d.part}" for d in database.identify("jedec", id_hex).candidates]

    return Station(programmer, lambda _e: None, names)


# -- SPI ------------------------------------------------------------------------------


def test_spi_nor_identify_program_verify_read(usb, w25q128, database, product) -> None:
    chip = spi_chip(w25q128)
    board = usb.add(chip, bus=3, address=9, product=product)
    programmer = open_ch347("ch347://", usb, w25q128, database)
    assert programmer.url == "ch347://3:9"
    assert programmer.capabilities.unstated_drive_mv is None  # 3.3 V I/O: nothing to warn
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
    # every page program is one CS frame carrying its 256 bytes
    programs = [f for cs, f in board.frames if f[0] == 0x02]
    assert programs and all(len(f) == 4 + 256 for f in programs[1:-1])
    assert board.mode == (0, 0, False)  # mode 0, MSB first
    # the W25Q128JV takes 133 MHz: the fastest clock, 60 MHz (divisor 0)
    assert board.divisor == 0 and site.spi.max_clock_hz == 60_000_000
    check_transport(board)
    programmer.close()
    assert not any(board.selected.values())


@pytest.mark.parametrize(
    ("spi_hz", "part_hz", "divisor", "clock"),
    [
        ("", 133_000_000, 0, 60_000_000),
        ("30M", 133_000_000, 1, 30_000_000),
        ("20M", 133_000_000, 2, 15_000_000),
        ("60M", 10_000_000, 3, 7_500_000),
        ("937.5k", 133_000_000, 6, 937_500),
        ("500000", 133_000_000, 7, 468_750),
    ],
)
def test_the_config_packet_carries_the_fastest_divisor_not_above_the_limits(
    usb, w25q128, spi_hz, part_hz, divisor, clock
) -> None:
    board = usb.add(spi_chip(w25q128))
    query = f"?spi_hz={spi_hz}" if spi_hz else ""
    site = open_ch347(f"ch347://{query}", usb, w25q128).sites[0]
    assert site.spi.set_clock(part_hz) == clock
    assert board.divisor == divisor
    assert site.spi.transfer([SpiOp(b"\x9f", 3)]) == [b"\xef\x40\x18"]


def test_a_part_slower_than_the_slowest_clock_is_refused(usb, w25q128) -> None:
    usb.add(spi_chip(w25q128))
    spi = open_ch347("ch347://", usb, w25q128).sites[0].spi
    with pytest.raises(HalError, match=r"slowest SPI clock is 468\.75 kHz"):
        spi.set_clock(400_000)


def test_spi_mode_3_is_configured_and_the_part_answers(usb, w25q128) -> None:
    board = usb.add(spi_chip(w25q128))
    site = open_ch347("ch347://?spi_mode=3", usb, w25q128).sites[0]
    assert site.spi.transfer([SpiOp(b"\x9f", 3)]) == [b"\xef\x40\x18"]
    assert board.mode == (1, 1, False)  # CPOL 1, CPHA 1 in the configuration packet
    with pytest.raises(ProgrammerUrlError, match="spi_mode='1': expected 0 or 3"):
        open_ch347("ch347://?spi_mode=1", usb, w25q128)


def test_the_part_on_cs2(usb, w25q128) -> None:
    board = usb.add(spi_chip(w25q128), chip_cs=2)
    on_cs1 = open_ch347("ch347://", usb, w25q128).sites[0]
    assert on_cs1.spi.transfer([SpiOp(b"\x9f", 3)]) == [b"\xff\xff\xff"]  # nothing there
    on_cs1.close()
    site = open_ch347("ch347://?cs=2", usb, w25q128).sites[0]
    assert site.spi.transfer([SpiOp(b"\x9f", 3)]) == [b"\xef\x40\x18"]
    assert board.frames[-1] == (2, b"\x9f\xff\xff\xff")


def test_reads_fill_whole_packets(usb, w25q128, product) -> None:
    """64 KiB in 4 KiB reads: 507 data bytes an answer, a handful of writes a read (in
    mode 2 as many reports: a report carries a packet)."""
    chip = spi_chip(w25q128)
    chip.memory[:65536] = image(65536).read(0, 65536)
    board = usb.add(chip, product=product)
    site = open_ch347("ch347://", usb, w25q128).sites[0]
    site.power(True, 3300)
    board.bulk_out = board.bulk_in = 0
    ops = [SpiOp(b"\x03" + a.to_bytes(3, "big"), 4096) for a in range(0, 65536, 4096)]
    assert b"".join(site.spi.transfer(ops)) == bytes(chip.memory[:65536])
    per_read_in = -(-4096 // 507)  # 9 answers of at most 507 bytes
    assert board.bulk_in == len(ops) * (1 + per_read_in)  # + the 0xC4 status
    assert board.bulk_out == len(ops) * 4  # CS, 0xC4, 0xC3, CS
    assert (board.bulk_in + board.bulk_out) / 64 <= 3.5  # USB transfers per KiB
    check_transport(board)


def test_short_reads_are_one_write_and_one_answer(usb, w25q128, product) -> None:
    board = usb.add(spi_chip(w25q128), product=product)
    site = open_ch347("ch347://", usb, w25q128).sites[0]
    board.bulk_out = board.bulk_in = 0
    assert site.spi.transfer([SpiOp(b"\x06"), SpiOp(b"\x05", 1)]) == [b"", b"\x02"]
    assert board.bulk_in == 2  # the 0xC4 status of WREN, the 0xC2 answer of RDSR
    assert board.bulk_out == 6  # three each: CS, the command, CS


def test_waitready_polls_on_the_host(usb, w25q128) -> None:
    chip = spi_chip(w25q128)
    usb.add(chip)
    site = open_ch347("ch347://", usb, w25q128).sites[0]
    site.power(True, 3300)
    steps = [SpiOp(b"\x06"), SpiOp(b"\xd8\x00\x00\x00"), WaitReady(timeout_s=3.0, hint_s=0.1)]
    assert site.spi.transfer(steps)[2][0] & 0x01 == 0
    assert site.spi.poller.waits == 1


def test_spi_eeprom_program_and_verify(usb, database) -> None:
    device = database.get("microchip.25lc256")
    chip = SpiEepromChip(device, SimClock(Timing("instant")))
    usb.add(chip)
    programmer = open_ch347("ch347://", usb, device, database)
    img = image(3000, base=0x400)
    result = station(programmer, database).run(CycleSpec("program", device, img)).results[0]
    assert result.status == "pass", result.message
    assert bytes(chip.memory[0x400 : 0x400 + 3000]) == img.read(0x400, 0x400 + 3000)


# -- I2C ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "product", "speed"),
    [("", CH347T, 2), ("", CH347T_HID, 2), ("?i2c=1&clock=100k", CH347F, 1)],
    ids=["mode1", "mode2-hid", "ch347f"],
)
def test_i2c_eeprom_program_and_verify(usb, database, query, product, speed) -> None:
    device = database.get("microchip.24lc256")
    chip = eeprom_chip(device)
    board = usb.add(chip, product=product)
    programmer = open_ch347(f"ch347://{query}", usb, device, database)
    (site,) = check(programmer)
    assert isinstance(site.i2c, I2cBus) and site.spi is None
    assert board.i2c_speed == speed
    assert board.i2c_switched == (product == CH347F)  # the CH347F's pins switched to I2C
    img = image(3000, base=0x200)
    st = station(programmer, database)
    result = st.run(CycleSpec("program", device, img)).results[0]
    assert result.status == "pass", result.message
    assert bytes(chip.memory[0x200 : 0x200 + 3000]) == img.read(0x200, 0x200 + 3000)
    read = st.run(CycleSpec("read", device, read_range=(0, 0x8000))).results[0]
    assert read.data == bytes(chip.memory)
    check_transport(board)


def test_a_long_i2c_read_spans_packets_and_usb_writes(usb, database) -> None:
    device = database.get("microchip.24lc256")
    chip = eeprom_chip(device)
    chip.memory[:] = image(0x8000).read(0, 0x8000)
    board = usb.add(chip)
    i2c = open_ch347("ch347://", usb, device).sites[0].i2c
    board.bulk_out = board.bulk_in = 0
    assert i2c.write_read(0x50, b"\x00\x00", 0x8000) == bytes(chip.memory)
    # 63-byte reads, 8 of them (504 answers) a 512-byte packet, 8 packets a USB write
    assert board.bulk_out == -(-(0x8000 // 504 + 1) // 8)
    answers = 4 + 0x8000  # the acknowledges of three bytes written, then the data
    assert board.bulk_in == -(-answers // 512)  # the fake answers in 512-byte USB packets
    board.bulk_out = board.bulk_in = 0
    i2c.write(0x50, b"\x00\x00" + bytes(64))  # a whole page: one write, one answer
    assert (board.bulk_out, board.bulk_in) == (1, 1)


def test_in_mode_2_a_long_i2c_read_is_a_stream_a_report(usb, database) -> None:
    """A report carries at most 510 bytes: a stream each (8 reads of 63 bytes, 504
    answers, at most), answered by one input report."""
    device = database.get("microchip.24lc256")
    chip = eeprom_chip(device)
    chip.memory[:] = image(0x8000).read(0, 0x8000)
    board = usb.add(chip, product=CH347T_HID)
    i2c = open_ch347("ch347://", usb, device).sites[0].i2c
    board.bulk_out = board.bulk_in = 0
    assert i2c.write_read(0x50, b"\x00\x00", 0x8000) == bytes(chip.memory)
    reports = 0x8000 // 504 + 1
    assert board.bulk_out == board.bulk_in == reports
    check_transport(board)


def test_i2c_empty_socket_is_a_nack(usb, database) -> None:
    device = database.get("microchip.24lc256")
    usb.add(None)
    programmer = open_ch347("ch347://?i2c=1", usb, device, database)
    result = station(programmer, database).run(CycleSpec("identify", device)).results[0]
    assert result.status == "fail" and "no acknowledge" in result.message
    assert not programmer.sites[0].link_lost


# -- several boards, faults -------------------------------------------------------------


def test_two_boards_one_unplugged_mid_cycle(usb, w25q128, database, product) -> None:
    chips = [spi_chip(w25q128), spi_chip(w25q128)]
    first = usb.add(chips[0], address=5, product=product)
    second = usb.add(chips[1], address=6, serial="B2", product=product)
    programmer = open_ch347("ch347://1:5 ; ch347://B2", usb, w25q128, database)
    assert [s.index for s in check(programmer)] == [1, 2]
    second.fail_after = 60  # the link drops during the program step
    img = image(16384)
    outcome = station(programmer, database).run(CycleSpec("program", w25q128, img))
    assert [r.status for r in outcome.results] == ["pass", "link-lost"]
    assert bytes(chips[0].memory[:16384]) == img.read(0, 16384)
    assert programmer.sites[1].link_lost and not programmer.sites[0].link_lost
    # re-plugged at another address it is found again by its serial number
    second.fail_after = None
    second.replug(address=11)
    assert programmer.sites[1].reconnect()
    again = station(programmer, database).run(CycleSpec("program", w25q128, img), [2])
    assert again.results[0].status == "pass", again.results[0].message
    assert first.divisors == [0]  # the first board was configured once, never again


def test_unplugged_board_is_lost_and_not_found_until_replugged(usb, w25q128, product) -> None:
    board = usb.add(spi_chip(w25q128), product=product)
    site = open_ch347("ch347://", usb, w25q128).sites[0]
    board.unplug()
    with pytest.raises(LinkError, match="lost"):
        site.spi.transfer([SpiOp(b"\x9f", 3)])
    assert site.link_lost and not site.reconnect()
    board.replug(address=8)
    assert site.reconnect()  # the URL named no board: the only CH347 will do
    assert site.spi.transfer([SpiOp(b"\x9f", 3)]) == [b"\xef\x40\x18"]


@pytest.mark.parametrize("fault", ["drop_reply_bytes", "garble_replies"])
def test_a_bad_answer_is_a_link_error(usb, w25q128, fault, product) -> None:
    board = usb.add(spi_chip(w25q128), product=product)
    site = open_ch347("ch347://", usb, w25q128).sites[0]
    board.read_timeout_s = 0.05
    setattr(board, fault, 2)
    with pytest.raises(LinkError, match="CH347 answered"):
        site.spi.transfer([SpiOp(b"\x9f", 3)])
    assert site.link_lost


def test_a_short_i2c_answer_is_a_link_error(usb, database, product) -> None:
    device = database.get("microchip.24lc256")
    board = usb.add(eeprom_chip(device), product=product)
    site = open_ch347("ch347://", usb, device).sites[0]
    board.read_timeout_s = 0.05
    board.drop_reply_bytes = 1
    with pytest.raises(LinkError):
        site.i2c.write_read(0x50, b"\x00\x00", 16)
    assert site.link_lost


# -- mode 2: HID reports ------------------------------------------------------------------


@pytest.mark.parametrize("bus", ["spi", "i2c"])
def test_a_mode_2_report_saying_more_than_510_bytes_is_a_link_error(usb, database, bus) -> None:
    device = database.get("winbond.w25q128jv" if bus == "spi" else "microchip.24lc256")
    chip = spi_chip(device) if bus == "spi" else eeprom_chip(device)
    board = usb.add(chip, product=CH347T_HID)
    site = open_ch347("ch347://", usb, device).sites[0]
    board.misreport_length = 511
    with pytest.raises(LinkError, match=r"HID report saying 511 bytes follow in a 512-byte"):
        if site.spi is not None:
            site.spi.transfer([SpiOp(b"\x9f", 3)])
        else:
            site.i2c.write_read(0x50, b"\x00\x00", 16)
    assert site.link_lost


class Transfers:
    """A USB handle that records the OUT transfers and answers with given IN ones."""

    def __init__(self, *answers: bytes) -> None:
        self.written: list[bytes] = []
        self.answers = list(answers)

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def read(self, size: int) -> bytes:
        return self.answers.pop(0)

    def close(self) -> None:
        pass


def test_hid_reports_frame_packets_in_whole_512_byte_reports() -> None:
    usb = Transfers(b"\x04\x00\xc4\x01\x00\x00" + bytes(506))
    reports = HidReports(usb)
    reports.write(b"\xc4\x01\x00\x06")
    assert usb.written == [b"\x04\x00\xc4\x01\x00\x06" + bytes(506)]
    assert reports.read(510) == b"\xc4\x01\x00\x00"  # the padding is not the packet's
    reports.write(bytes(510))  # the longest packet fills the report
    assert usb.written[-1] == b"\xfe\x01" + bytes(510)
    with pytest.raises(ValueError, match="511-byte CH347 packet does not fit a HID report"):
        reports.write(bytes(511))
    assert len(usb.written) == 2


@pytest.mark.parametrize(
    ("report", "message"),
    [
        (b"\x05", "a 1-byte HID report: 05"),
        (b"", "a 0-byte HID report"),
        (b"\x14\x00" + bytes(10), "saying 20 bytes follow in a 12-byte report"),
        (b"\xff\xff" + bytes(510), "saying 65535 bytes follow in a 512-byte report"),
    ],
)
def test_a_bad_input_report_is_a_link_error(report, message) -> None:
    with pytest.raises(LinkError, match=message):
        HidReports(Transfers(report)).read(510)


def test_the_mode_2_fake_ignores_an_output_report_whose_length_makes_no_sense(usb, w25q128) -> None:
    board = usb.add(spi_chip(w25q128), product=CH347T_HID)
    board.read_timeout_s = 0.05
    board.write(b"\xff\x01" + bytes(510))  # 511: over what a report holds
    board.write(b"\x10\x00\xc0\x1a")  # 16 said, 2 there
    assert board.ignored_reports == 2
    with pytest.raises(OSError, match="timed out"):  # neither was answered
        board.read(512)


# -- shared serial numbers: every CH347T says 0123456789, in either mode -------------------

SHARED = "0123456789"


def test_two_boards_sharing_the_serial_are_named_by_bus_path(
    usb, w25q128, database, product
) -> None:
    chips = [spi_chip(w25q128), spi_chip(w25q128)]
    for n, chip in enumerate(chips):
        usb.add(chip, address=5 + n, serial=SHARED, product=product)
    with pytest.raises(
        ProgrammerUrlError,
        match=r"2 CH347 boards carry the serial number 0123456789 .*"
        r"by bus:address \(ch347://1:5 or ch347://1:6\)",
    ):
        open_ch347(f"ch347://{SHARED}", usb)
    with pytest.raises(ProgrammerUrlError, match=r"name one \(ch347://1:5 or ch347://1:6\)"):
        open_ch347("ch347://", usb)
    with pytest.raises(HalError, match=r"connected CH347 boards: 1:5, 1:6\)"):
        open_ch347("ch347://2:5", usb)
    one = open_ch347("ch347://1:6", usb, w25q128, database)
    assert one.url == "ch347://1:6" and one.name == "CH347 1:6"
    assert [s.device.location for s in one.sites] == ["1:6"]
    one.close()
    every = open_ch347("ch347://*", usb, w25q128, database)
    assert [s.name for s in every.sites] == ["CH347 1:5", "CH347 1:6"]
    img = image(5000)
    outcome = station(every, database).run(CycleSpec("program", w25q128, img))
    assert [r.status for r in outcome.results] == ["pass", "pass"]
    assert all(bytes(c.memory[:5000]) == img.read(0, 5000) for c in chips)
    for board in usb.boards:
        check_transport(board)


def test_a_replugged_board_is_not_bound_to_another_by_a_shared_serial(
    usb, w25q128, product
) -> None:
    first = usb.add(spi_chip(w25q128), address=5, serial=SHARED, product=product)
    second = usb.add(spi_chip(w25q128), address=6, serial=SHARED, product=product)
    sites = open_ch347("ch347://*", usb, w25q128).sites
    second.unplug()
    with pytest.raises(LinkError, match="lost"):
        sites[1].spi.transfer([SpiOp(b"\x9f", 3)])
    # the first board carries the same serial: it is not taken for the second
    assert not sites[1].reconnect() and sites[1].device.location == "1:6"
    second.replug(address=9)  # back at another address: nothing tells it from the first
    assert not sites[1].reconnect()
    assert first.opened and sites[0].spi.transfer([SpiOp(b"\x9f", 3)]) == [b"\xef\x40\x18"]


def test_a_serial_unique_when_opened_binds_until_another_board_carries_it(
    usb, w25q128, product
) -> None:
    board = usb.add(spi_chip(w25q128), address=5, serial=SHARED, product=product)
    site = open_ch347(f"ch347://{SHARED}", usb, w25q128).sites[0]
    assert site.name == f"CH347 {SHARED}"
    board.unplug()
    board.replug(address=7)
    assert site.reconnect() and site.device.location == "1:7"  # found by its serial
    usb.add(spi_chip(w25q128), address=8, serial=SHARED, product=product)
    board.unplug()
    board.replug(address=9)
    assert not site.reconnect()  # two boards carry it now, neither at 1:7


def test_a_board_back_in_another_mode_is_not_taken_for_it(usb, w25q128) -> None:
    board = usb.add(spi_chip(w25q128), serial=SHARED, product=CH347T_HID)
    site = open_ch347("ch347://", usb, w25q128).sites[0]
    board.unplug()
    board.replug(address=8)
    board.product = CH347T  # the mode pins set to mode 1 meanwhile
    assert not site.reconnect()


# -- mode 2 through pyusb (below the seam) ---------------------------------------------------


def test_mode_2_through_pyusb_claims_interface_1_and_its_interrupt_endpoints(
    usb, w25q128, monkeypatch
) -> None:
    """The pyusb backend on a fake pyusb device: interface 1 claimed once usbhid is
    detached from it (interface 0, the UART, keeps its driver), every transfer a 512-byte
    report on endpoints 0x06 and 0x86."""
    import usb.core as usb_core
    import usb.util as usb_util

    import app.hal.ftdi_usb

    board = usb.add(spi_chip(w25q128), bus=2, address=3, serial=SHARED, product=CH347T_HID)
    device = PyusbDevice(board)

    def find(find_all, custom_match, backend):
        return [d for d in [device] if custom_match(d)]

    def claim(dev, interface):
        dev.claimed.add(interface)

    monkeypatch.setattr(app.hal.ftdi_usb, "find_libusb_backend", lambda: None)
    monkeypatch.setattr(usb_core, "find", find)
    monkeypatch.setattr(usb_util, "claim_interface", claim)
    monkeypatch.setattr(usb_util, "get_string", lambda dev, index: SHARED)
    monkeypatch.setattr(usb_util, "dispose_resources", lambda dev: None)
    programmer = open_programmer("ch347://2:3", device=w25q128)
    try:
        (site,) = programmer.sites
        assert site.device.product == CH347T_HID and site.device.serial == SHARED
        assert site.spi.transfer([SpiOp(b"\x9f", 3)]) == [b"\xef\x40\x18"]
    finally:
        programmer.close()
    assert device.claimed == {1} and device.drivers == {0: "usbhid"}
    assert device.endpoints == {0x06, 0x86}
    check_transport(board)


# -- safety and URLs ----------------------------------------------------------------------


def test_with_vcc_a_part_rated_below_it_is_refused(usb, w25q128, database) -> None:
    board = usb.add(spi_chip(w25q128))
    programmer = open_ch347("ch347://?vcc=5000", usb, w25q128, database)
    assert programmer.capabilities.unstated_drive_mv is None
    events: list[object] = []
    result = Station(programmer, events.append).run(CycleSpec("identify", w25q128)).results[0]
    assert result.status == "fail" and result.failed_step == "power"
    assert "5 V" in result.message and "3.6 V" in result.message and "vcc=" in result.message
    assert not board.frames  # nothing was clocked into the part
    assert not [e for e in events if isinstance(e, LogEvent) and e.level == "warning"]


def test_with_vcc_3v3_a_3v_part_is_programmed(usb, w25q128, database) -> None:
    usb.add(spi_chip(w25q128))
    programmer = open_ch347("ch347://?vcc=3300", usb, w25q128, database)
    result = station(programmer, database).run(CycleSpec("identify", w25q128)).results[0]
    assert result.status == "pass", result.message


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ch347://?speed=1", "unknown ch347 option"),
        ("ch347://?clock=300k&i2c=1", "I2C clocks are 20k, 100k, 400k, 750k"),
        ("ch347://?spi_hz=100k", "slowest SPI clock is 468750 Hz"),
        ("ch347://?spi_hz=0", "slowest SPI clock is 468750 Hz"),
        ("ch347://?spi_hz=fast", "is not a clock"),
        ("ch347://?cs=3", "expected 1 or 2"),
        ("ch347://?vcc=12000", "within 1000..5500"),
        ("ch347://?i2c=maybe", "expected 0 or 1"),
        ("ch347://1:2/3", "BUS:ADDRESS"),
    ],
)
def test_url_option_errors(usb, url, message) -> None:
    with pytest.raises(ProgrammerUrlError, match=message):
        open_ch347(url, usb)


def test_board_selection(usb, w25q128) -> None:
    with pytest.raises(HalError, match="no CH347 matches ch347://"):
        open_ch347("ch347://", usb)
    usb.add(spi_chip(w25q128), address=6)
    usb.add(spi_chip(w25q128), address=5, product=CH347F)
    with pytest.raises(
        ProgrammerUrlError, match=r"2 CH347 boards .*\(ch347://1:5 or ch347://1:6\)"
    ):
        open_ch347("ch347://", usb)
    with pytest.raises(HalError, match=r"connected CH347 boards: 1:5, 1:6"):
        open_ch347("ch347://2:5", usb)
    every = open_ch347("ch347://*", usb)
    assert [s.device.location for s in every.sites] == ["1:5", "1:6"]


# -- real hardware ----------------------------------------------------------------------


@pytest.mark.hardware
def test_real_ch347_reads_an_id(request) -> None:
    url = request.config.getoption("--ch347")
    if not url:
        pytest.skip("give --ch347 URL")
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
    usb, w25q128, monkeypatch, tmp_path, capsys, product
) -> None:
    """`socketeer program --device winbond.w25q128jv --programmer ch347://`, as typed."""
    import app.hal.ch347 as backend_module
    from app.cli import main

    board = usb.add(spi_chip(w25q128), serial="0123456789", product=product)
    monkeypatch.setattr(backend_module, "pyusb_backend", usb.backend)
    image_file = tmp_path / "fw.bin"
    data = random.Random(7).randbytes(20_000)
    image_file.write_bytes(data)
    argv = ["program", "--device", "winbond.w25q128jv", "--programmer", "ch347://"]
    code = main([*argv, "--base", "0x10000", str(image_file)])
    out = capsys.readouterr().out
    assert code == 0 and "1 passed, 0 failed" in out, out
    assert "warning" not in out  # 3.3 V I/O: no drive-level warning
    assert bytes(board.chip.memory[0x10000 : 0x10000 + 20_000]) == data
    check_transport(board)
