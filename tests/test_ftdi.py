"""The FTDI backend against a pyftdi fake at the controller level (tests/ftdi_fake.py)
feeding the simulator's chip models: real algorithms, real engine, no hardware."""

from __future__ import annotations

import random

import pytest
from ftdi_fake import FakeUsb, eeprom_chip, spi_chip  # tests/ is on sys.path (rootdir)

from app.algorithms.spi_nor import identify_jedec
from app.core.image import MemoryImage
from app.engine.site_runner import CycleSpec
from app.engine.station import Station
from app.hal.bus import SpiOp, WaitReady
from app.hal.errors import HalError, LinkError, ProgrammerUrlError
from app.hal.ftdi_pins import parse_pin_map
from app.hal.programmer import open_programmer
from app.hal.sim.spi_nor_chip import ChipFaults

WREN = SpiOp(b"\x06")


@pytest.fixture(scope="module")
def w25q128(database):
    return database.get("winbond.w25q128jv")


@pytest.fixture(scope="module")
def eeprom(database):
    return database.get("microchip.24lc256")


@pytest.fixture
def usb() -> FakeUsb:
    return FakeUsb()


def open_ftdi(url: str, usb: FakeUsb, device=None, database=None):
    return open_programmer(url, device=device, database=database, ftdi_backend=usb.backend())


def image(size: int, base: int = 0, seed: int = 3) -> MemoryImage:
    rng = random.Random(seed)
    data = bytes(b if b != 0xFF else 0x5A for b in rng.randbytes(size))
    return MemoryImage.from_bytes(data, base)


def station(programmer, database) -> Station:
    def names(id_hex: str) -> list[str]:
        return [f"{d.vendor} {d.part}" for d in database.identify("jedec", id_hex).candidates]

    return Station(programmer, lambda _e: None, names)


# -- SPI NOR ----------------------------------------------------------------------


def test_program_and_verify_spi_nor(usb, w25q128, database) -> None:
    board = usb.add("FT1SITE", "232h")
    chip = board.interfaces[1].chip = spi_chip(w25q128)
    programmer = open_ftdi("ftdi://ftdi:232h/1", usb, w25q128, database)
    assert programmer.url == "ftdi://ftdi:232h:FT1SITE/1"  # bound to the serial number
    assert [s.index for s in programmer.sites] == [1]
    img = image(40_000, base=0x1000)
    result = station(programmer, database).run(CycleSpec("program", w25q128, img)).results[0]
    assert result.status == "pass", result.message
    assert result.chip_id == "EF4018"
    assert bytes(chip.memory[0x1000 : 0x1000 + 40_000]) == img.read(0x1000, 0x1000 + 40_000)
    read = station(programmer, database).run(
        CycleSpec("read", w25q128, read_range=(0x1000, 0x1000 + 40_000))
    )
    assert read.results[0].data == bytes(chip.memory[0x1000 : 0x1000 + 40_000])
    programmer.close()
    assert board.interfaces[1].owner is None


def test_wren_page_program_and_first_poll_are_one_round_trip(usb, w25q128) -> None:
    board = usb.add("FTBATCH", "232h")
    iface = board.interfaces[1]
    chip = iface.chip = spi_chip(w25q128)
    site = open_ftdi("ftdi://ftdi:232h:FTBATCH/1", usb, w25q128).sites[0]
    site.power(True, 3600)
    iface.reset_counts()
    page = bytes(range(256))
    result = site.spi.transfer(
        [WREN, SpiOp(b"\x02\x00\x01\x00" + page), WaitReady(0x05, 0x01, 0x00, 0.01, 0.0007)]
    )
    assert result == [b"", b"", b"\x00"]
    assert (iface.usb_writes, iface.round_trips) == (1, 1)
    assert [f[0][:1] for f in iface.frames] == [b"\x06", b"\x02"] + [b"\x05"] * 4
    # The expected page-program time was waited out on the programmer (SCK clocked
    # with /CS high), status reads at 85, 90, 95 and 100% of it: 0.7 ms at 30 MHz.
    assert 2625 <= iface.idle_clock_bytes <= 2630
    assert bytes(chip.memory[0x100:0x200]) == page
    # The part was ready at the first read: the schedule learned that, reads earlier
    # next time, and forgets it when the site powers up for the next part.
    wait = WaitReady(0x05, 0x01, 0x00, 0.01, 0.0007)
    assert site.spi.poller.expected(wait) == pytest.approx(0.85 * 0.0007)
    site.power(True, 3600)
    assert site.spi.poller.expected(wait) == 0.0007


def test_long_waits_read_first_with_the_command_then_on_the_host(usb, w25q128) -> None:
    board = usb.add("FTERASE", "232h")
    iface = board.interfaces[1]
    chip = iface.chip = spi_chip(w25q128)
    chip.memory[0:4096] = bytes(4096)
    site = open_ftdi("ftdi://ftdi:232h/1", usb, w25q128).sites[0]
    iface.reset_counts()
    slept = usb.clock.slept
    site.spi.transfer([WREN, SpiOp(b"\x20\x00\x00\x00"), WaitReady(0x05, 1, 0, 0.4, 0.045)])
    # the first status read goes with the erase: a part that is already done costs no
    # sleep of the datasheet's 45 ms
    assert usb.clock.slept == slept
    assert (iface.usb_writes, iface.round_trips, iface.idle_clock_bytes) == (1, 1, 0)
    assert bytes(chip.memory[0:4096]) == b"\xff" * 4096


def test_reads_are_split_so_the_fifo_cannot_fill(usb, w25q128) -> None:
    board = usb.add("FTREAD", "232h")
    iface = board.interfaces[1]
    iface.chip = spi_chip(w25q128)
    site = open_ftdi("ftdi://ftdi:232h/1", usb, w25q128).sites[0]
    iface.reset_counts()
    out = site.spi.transfer([SpiOp(b"\x9f", 3)] * 4 + [SpiOp(b"\x03\x00\x00\x00", 600)] * 3)
    assert out[:4] == [b"\xef\x40\x18"] * 4 and out[4:] == [b"\xff" * 600] * 3
    # 4 ID reads + one 600-byte read fill the first write; the next reads follow.
    assert iface.usb_writes == 3
    big = site.spi.transfer([SpiOp(b"\x0b\x00\x00\x00\x00", 70_000)])[0]
    assert len(big) == 70_000


def test_busy_timeout_fails_the_step(usb, w25q128, database) -> None:
    board = usb.add("FTBUSY", "232h")
    board.interfaces[1].chip = spi_chip(w25q128, faults=ChipFaults(busy_forever=True))
    programmer = open_ftdi("ftdi://ftdi:232h/1", usb, w25q128, database)
    result = station(programmer, database).run(CycleSpec("program", w25q128, image(4096)))
    failed = result.results[0]
    assert failed.status == "fail" and failed.failed_step == "erase"
    assert "timed out" in failed.message and "still busy" in failed.message


def test_spi_clock_is_capped_and_never_above_the_request(usb, w25q128) -> None:
    board = usb.add("FTCLK", "232h")
    board.interfaces[1].chip = spi_chip(w25q128)
    programmer = open_ftdi("ftdi://ftdi:232h/1?clock=7M&latency=1", usb, w25q128)
    site = programmer.sites[0]
    assert programmer.capabilities.max_spi_clock_hz == 7_000_000
    assert site.spi.clock_hz == 6_000_000 == board.interfaces[1].frequency  # 30 MHz / 5
    assert site.spi.set_clock(133_000_000) == 6_000_000
    assert board.interfaces[1].owner.configure_args["latency"] == 1


def test_default_latency_is_low(usb, w25q128) -> None:
    board = usb.add("FTLAT", "232h")
    board.interfaces[1].chip = spi_chip(w25q128)
    site = open_ftdi("ftdi://ftdi:232h/1", usb, w25q128).sites[0]
    assert board.interfaces[1].latency == 2
    assert site.spi.clock_hz == 30_000_000


# -- I2C EEPROM -------------------------------------------------------------------


@pytest.mark.parametrize("query", ["?i2c=1", ""])  # I2C parts pick the I2C master
def test_program_and_verify_i2c_eeprom(usb, eeprom, database, query) -> None:
    board = usb.add("FTI2C", "232h")
    chip = board.interfaces[1].chip = eeprom_chip(eeprom)
    programmer = open_ftdi(f"ftdi://ftdi:232h/1{query}", usb, eeprom, database)
    assert programmer.capabilities.buses == frozenset({"i2c"})
    site = programmer.sites[0]
    assert site.spi is None and site.i2c.clock_hz == 400_000
    assert board.interfaces[1].owner.retry_count == 1  # NACKs surface at once
    img = image(3000, base=0x200)
    result = station(programmer, database).run(CycleSpec("program", eeprom, img)).results[0]
    assert result.status == "pass", result.message
    assert bytes(chip.memory[0x200 : 0x200 + 3000]) == img.read(0x200, 0x200 + 3000)


def test_i2c_empty_socket_is_a_nack_not_a_link_error(usb, eeprom, database) -> None:
    board = usb.add("FTI2C", "232h")  # no chip
    programmer = open_ftdi("ftdi://ftdi:232h/1?i2c=1", usb, eeprom, database)
    result = station(programmer, database).run(CycleSpec("identify", eeprom)).results[0]
    assert result.status == "fail" and result.failed_step == "identify"
    assert "no acknowledge" in result.message
    assert not programmer.sites[0].link_lost and board.plugged


# -- multi-site, GPIO ---------------------------------------------------------------


def test_two_sites_of_an_ft2232h_run_in_parallel(usb, w25q128, database) -> None:
    board = usb.add("FT4ABCDE", "2232h")
    chips = [spi_chip(w25q128) for _ in range(2)]
    board.interfaces[1].chip, board.interfaces[2].chip = chips
    programmer = open_ftdi("ftdi://ftdi:2232h:FT4ABCDE/*", usb, w25q128, database)
    assert [s.index for s in programmer.sites] == [1, 2]
    img = image(64 * 1024)
    for iface in board.interfaces.values():
        iface.threads.clear()
    outcome = station(programmer, database).run(CycleSpec("program", w25q128, img))
    assert [r.status for r in outcome.results] == ["pass", "pass"]
    for chip in chips:
        assert bytes(chip.memory[: 64 * 1024]) == img.read(0, 64 * 1024)
    assert board.interfaces[1].threads == {"site-1"}
    assert board.interfaces[2].threads == {"site-2"}


def test_one_interface_url_gives_one_site_and_sites_all_gives_every_one(usb, w25q128) -> None:
    usb.add("FT4ONE", "2232h")
    assert [s.index for s in open_ftdi("ftdi://ftdi:2232h/2", usb, w25q128).sites] == [2]
    usb2 = FakeUsb()
    usb2.add("FT4ALL", "4232h")  # C and D have no MPSSE
    programmer = open_ftdi("ftdi://ftdi:4232h/1?sites=all", usb2, w25q128)
    assert [s.index for s in programmer.sites] == [1, 2]


def test_pin_map_power_detect_and_leds(usb, w25q128, database) -> None:
    board = usb.add("FTPINS", "232h")
    iface = board.interfaces[1]
    chip = iface.chip = spi_chip(w25q128)
    iface.power_bit, iface.detect_bit = 4, 5
    programmer = open_ftdi("ftdi://ftdi:232h/1?pins=standard", usb, w25q128, database)
    assert programmer.capabilities.power_control and programmer.capabilities.socket_detect
    st = station(programmer, database)

    iface.present = False
    empty = st.run(CycleSpec("program", w25q128, image(4096))).results[0]
    assert empty.status == "fail" and empty.failed_step == "socket"
    assert "socket empty" in empty.message
    assert iface.pin_high(7) and not iface.pin_high(6)  # fail LED
    assert not any(h & 0x10 for h in iface.history)  # power never switched on

    iface.present = True
    iface.history.clear()
    ok = st.run(CycleSpec("program", w25q128, image(4096))).results[0]
    assert ok.status == "pass", ok.message
    assert any(h & 0x10 for h in iface.history)  # powered during the cycle
    assert not iface.pin_high(4)  # and off afterwards
    assert iface.outputs & 0x0B == 0  # SPI lines driven low: no power through /CS
    assert iface.pin_high(6) and not iface.pin_high(7)  # pass LED
    assert chip.memory[0] == image(4096).read(0, 1)[0]


def test_inline_pin_map_active_low_and_acbus(usb, w25q128, database) -> None:
    board = usb.add("FTINLINE", "2232h")
    iface = board.interfaces[1]
    iface.chip = spi_chip(w25q128)
    url = "ftdi://ftdi:2232h/1?pins=power=!C0,pass=D6,fail=!D7"
    programmer = open_ftdi(url, usb, w25q128, database)
    site = programmer.sites[0]
    assert site.part_present()  # no detect pin: always present
    assert iface.pin_high(8) and iface.pin_high(7)  # both inactive (active-low) at start
    site.power(True, 3600)
    assert not iface.pin_high(8)
    site.power(False)
    assert iface.pin_high(8)
    site.indicate("fail")
    assert not iface.pin_high(7) and not iface.pin_high(6)


def test_part_rated_below_the_site_voltage_is_refused(usb, database) -> None:
    low_voltage = database.get("winbond.w25q64jw")
    assert low_voltage.voltage_mv[1] < 3300
    board = usb.add("FT18V", "232h")
    iface = board.interfaces[1]
    iface.chip = spi_chip(low_voltage)
    iface.power_bit = 4
    programmer = open_ftdi("ftdi://ftdi:232h/1?pins=power=D4", usb, low_voltage, database)
    result = station(programmer, database).run(CycleSpec("identify", low_voltage)).results[0]
    assert result.status == "fail" and result.failed_step == "power"
    assert "at most 1.95 V" in result.message
    assert not any(h & 0x10 for h in iface.history)


def test_in_system_board_powered_and_a_busy_interface(usb, w25q128) -> None:
    board = usb.add("FTISP", "232h")
    iface = board.interfaces[1]
    iface.chip = spi_chip(w25q128)
    url = "ftdi://ftdi:232h/1?connection=in-system&power=board&pins=power=D4,pass=D6"
    site = open_ftdi(url, usb, w25q128).sites[0]
    assert site.in_system and site.board_powered
    site.power(True, None)  # the board powers itself: only the I/O is enabled
    assert not iface.pin_high(4) and iface.pin_high(3)  # /CS idles high
    assert site.spi.transfer([SpiOp(b"\x9f", 3)]) == [b"\xef\x40\x18"]
    site.power(False)
    assert iface.direction & 0x0B == 0  # SPI lines released for the board's own MCU
    site.indicate("pass")
    assert iface.pin_high(6) and iface.direction & 0x0B == 0  # and still released
    site.power(True, None)
    assert iface.direction & 0x0B == 0x0B and iface.pin_high(3)
    with pytest.raises(HalError, match="in use by another program") as err:
        open_ftdi("ftdi://ftdi:232h/1", usb, w25q128)
    assert err.value.exit_code == 3


# -- link loss and reconnect --------------------------------------------------------


def test_unplug_fails_only_that_site_as_link_lost(usb, w25q128, database) -> None:
    board = usb.add("FT4LOST", "2232h")
    board.interfaces[1].chip = spi_chip(w25q128)
    board.interfaces[2].chip = spi_chip(w25q128)
    programmer = open_ftdi("ftdi://ftdi:2232h:FT4LOST/*", usb, w25q128, database)
    board.interfaces[2].fail_after = 40  # pyftdi's "UsbError: [Errno 5]" mid-program
    outcome = station(programmer, database).run(CycleSpec("program", w25q128, image(32 * 1024)))
    first, second = outcome.results
    assert first.status == "pass", first.message
    assert second.status == "link-lost"
    assert "USB link to FTDI FT4LOST interface 2 lost" in second.message
    assert programmer.sites[1].link_lost and not programmer.sites[0].link_lost
    with pytest.raises(LinkError):
        programmer.sites[1].spi.transfer([SpiOp(b"\x9f", 3)])


def test_reconnect_by_serial_keeps_site_numbers(usb, w25q128, database) -> None:
    board = usb.add("FT4PLUG", "2232h", bus=1, address=4)
    for iface in board.interfaces.values():
        iface.chip = spi_chip(w25q128)
    programmer = open_ftdi("ftdi://ftdi:2232h:FT4PLUG/*", usb, w25q128, database)
    st = station(programmer, database)
    assert st.run(CycleSpec("identify", w25q128)).all_passed

    board.unplug()
    lost = st.run(CycleSpec("identify", w25q128))
    assert [r.status for r in lost.results] == ["link-lost", "link-lost"]
    still = st.run(CycleSpec("identify", w25q128))  # reconnect fails while unplugged
    assert [r.status for r in still.results] == ["link-lost", "link-lost"]
    assert "still disconnected" in still.results[0].message

    other = usb.add("FT4OTHER", "2232h", bus=1, address=2)  # enumerates first now
    board.replug(address=9)
    again = st.run(CycleSpec("identify", w25q128))
    assert [(r.site, r.status) for r in again.results] == [(1, "pass"), (2, "pass")]
    assert usb.opened_urls[-2:] == [
        "ftdi://ftdi:2232h:FT4PLUG/1",
        "ftdi://ftdi:2232h:FT4PLUG/2",
    ]
    assert all(i.owner is None for i in other.interfaces.values())
    assert not any(site.link_lost for site in programmer.sites)


def test_board_without_serial_is_bound_by_bus_address(usb, w25q128) -> None:
    board = usb.add("", "232h", bus=3, address=0x1A)
    board.interfaces[1].chip = spi_chip(w25q128)
    programmer = open_ftdi("ftdi://ftdi:232h/1", usb, w25q128)
    assert programmer.url == "ftdi://ftdi:232h:3:1a/1"
    assert usb.opened_urls == ["ftdi://ftdi:232h:3:1a/1"]


# -- URL and open errors ------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "text"),
    [
        ("ftdi://ftdi:232h/1?speed=1", "unknown ftdi option(s) speed"),
        ("ftdi://ftdi:232h/1?clock=fast", "clock='fast' is not a number"),
        ("ftdi://ftdi:232h/1?latency=0", "latency=0 must be within 1..255"),
        ("ftdi://ftdi:232h/1?connection=clip", "connection='clip'"),
        ("ftdi://ftdi:232h/1?power=usb", "power='usb'"),
        ("ftdi://ftdi:232h/1?i2c=maybe", "i2c='maybe'"),
        ("ftdi://ftdi:232h/1?sites=2", "sites='2'"),
        ("ftdi://ftdi:232h/1?pins=fancy", "pins='fancy': no such pin map"),
        ("ftdi://ftdi:232h/1?pins=power=D3", "pins=: power=D3: the SPI bus uses D0-D3"),
        ("ftdi://ftdi:232h/1?pins=power=D4,pass=D4", "pin already used for power"),
        ("ftdi://ftdi:232h/1?pins=lamp=D5", "'lamp=D5' is not role=PIN"),
        ("ftdi://ftdi:232h/1?pins=power=E4", "'E4' for power is not a pin"),
        ("ftdi://ftdi:232h/1?i2c=1&pins=detect=D2", "the I2C bus uses D0-D2"),
        ("ftdi://ftdi:4232h/1?pins=power=C0", "FT4232H has no ACBUS pins"),
        ("ftdi://ftdi:2232h:FT4ERR/3", "interface 3 of an FT2232H has no MPSSE"),
        ("ftdi://ftdi:232r/1", "an FT232R has no MPSSE engine"),
        ("ftdi://ftdi:9999x/1", "unknown FTDI product '9999x'"),
        ("ftdi://acme:232h/1", "vendor 'acme' is not FTDI"),
        ("ftdi://ftdi:232h", "no interface; end the URL with /1"),
        ("ftdi://ftdi:232h/a", "interface 'a' must be a number"),
    ],
)
def test_url_errors_are_clear(usb, w25q128, url, text) -> None:
    usb.add("FT4ERR", "2232h")
    usb.add("FT1ERR", "232h")
    usb.add("FT4QUAD", "4232h")
    with pytest.raises(ProgrammerUrlError) as err:
        open_ftdi(url, usb, w25q128)
    assert err.value.exit_code == 2
    assert text in str(err.value)


def test_ambiguous_url_names_the_boards(usb, w25q128) -> None:
    usb.add("FT4AAA", "2232h")
    usb.add("FT4BBB", "2232h", address=7)
    with pytest.raises(ProgrammerUrlError, match="2 FTDI devices match") as err:
        open_ftdi("ftdi://ftdi:2232h/1", usb, w25q128)
    assert "ftdi://ftdi:2232h:FT4AAA/1" in str(err.value)
    assert "ftdi://ftdi:2232h:FT4BBB/1" in str(err.value)


def test_no_device_and_no_permission_are_exit_3(usb, w25q128) -> None:
    with pytest.raises(HalError, match="no FTDI device matches") as err:
        open_ftdi("ftdi://ftdi:232h/1", usb, w25q128)
    assert err.value.exit_code == 3
    usb.add("FTLOCK", "232h", accessible=False)
    with pytest.raises(HalError, match="udev") as err:
        open_ftdi("ftdi://ftdi:232h/1", usb, w25q128)
    assert err.value.exit_code == 3 and "99-socketeer.rules" in str(err.value)


def test_pin_map_parser() -> None:
    pins = parse_pin_map("power=D4, detect=!D5, pass=AC1, reset=ADBUS7")
    assert pins.describe() == "power=D4,detect=!D5,pass=C1,reset=D7"
    assert pins.outputs == 0x0290 and pins.inputs == 0x0020
    assert pins.output_value({"power": True}) == 0x10
    assert pins.get("detect").is_active(0x00) and not pins.get("detect").is_active(0x20)
    assert parse_pin_map("none").used == 0


# -- real hardware --------------------------------------------------------------------


@pytest.mark.hardware
def test_detect_on_a_real_ftdi_programmer(request: pytest.FixtureRequest, database) -> None:
    url = request.config.getoption("--ftdi-url")
    if not url:
        pytest.skip("needs --ftdi-url")
    programmer = open_programmer(url, database=database)
    try:
        for site in programmer.sites:
            assert site.part_present(), f"site {site.index}: socket empty"
            site.power(True)
            try:
                ident = identify_jedec(site.spi)
            finally:
                site.power(False)
            assert ident.present, f"site {site.index}: no part (ID reads {ident.hex})"
            found = database.identify("jedec", ident.hex[:6])
            print(f"site {site.index}: ID {ident.hex[:6]}: {[d.id for d in found.candidates]}")
    finally:
        programmer.close()
