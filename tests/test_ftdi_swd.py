"""SWD on an FTDI MPSSE interface (app.hal.ftdi_swd) against the pyftdi fake at the pin
level (tests/ftdi_fake.py) fronting the simulated SW-DP bit by bit
(tests/swd_bitlevel.py around app.hal.sim.swd_target.SimSwdTarget): the real wire,
DebugPort and PacketLink, no hardware."""

from __future__ import annotations

import pytest
from ftdi_fake import FakeUsb  # tests/ is on sys.path (rootdir)
from swd_bitlevel import SwdBitFront

from app.hal.errors import LinkError, ProgrammerUrlError
from app.hal.programmer import open_programmer
from app.hal.sim.swd_target import SimSwdTarget
from app.hal.swd import SwdError, SwdFault

RAM = 0x2000_0000
IDCODE = 0x1BA01477


@pytest.fixture
def usb() -> FakeUsb:
    return FakeUsb()


def board_with_target(usb: FakeUsb, product: str = "232h", **kw):
    board = usb.add("FTSWD1", product)
    target = SimSwdTarget(regions={RAM: bytearray(8192)}, **kw)
    iface = board.interfaces[1]
    iface.swd = SwdBitFront(target)
    return iface, target


def open_site(url: str, usb: FakeUsb):
    programmer = open_programmer(url, ftdi_backend=usb.backend())
    return programmer, programmer.sites[0]


def test_connect_reads_idcode(usb) -> None:
    iface, _ = board_with_target(usb)
    programmer, site = open_site("ftdi://ftdi:232h/1?swd=1", usb)
    assert programmer.capabilities.buses == frozenset({"swd"})
    assert site.in_system and site.board_powered  # SWD's defaults
    assert site.spi is None and site.i2c is None
    iface.reset_counts()
    assert site.swd.connect() == IDCODE
    # line reset + select + line reset + IDCODE read: one USB write, one round trip;
    # ABORT and CTRL/STAT (overrun detection still off: their ACKs are read at once);
    # then the power-up acknowledge read
    assert iface.round_trips == 4
    assert iface.swd.collisions == 0  # ADBUS1 let go of SWDIO whenever the target drove
    assert site.swd_wire.clock_hz == 3_750_000 == iface.frequency  # 30 MHz / 8, not above 4M


def test_memory_round_trip_in_few_usb_transfers(usb) -> None:
    iface, target = board_with_target(usb)
    _, site = open_site("ftdi://ftdi:232h/1?swd=1&clock=10M", usb)
    site.swd.connect()
    words = [(0x9E3779B9 * n) & 0xFFFFFFFF for n in range(600)]
    start = RAM + 0x400 - 8  # across the 1 KiB TAR boundaries
    iface.reset_counts()
    site.swd.write_words(start, words)
    # 600 DRW + 4 TAR + CSW writes posted, one answer byte each, and the RDBUFF read:
    # two round trips, as half the chip's 1 KiB transmit FIFO is the most one may hold
    assert iface.round_trips == 2 and iface.usb_writes == 2
    raw = target.regions[RAM][0x3F8 : 0x3F8 + 2400]
    assert [int.from_bytes(raw[i : i + 4], "little") for i in range(0, 2400, 4)] == words
    iface.reset_counts()
    assert site.swd.read_words(start, 600) == words
    # 600 DRW reads and an RDBUFF read ending each of the 4 runs, 6 answer bytes each,
    # and 3 TAR writes, 1 byte each: 3627 bytes, at most 512 per round trip
    assert iface.round_trips == 8
    assert iface.swd.collisions == 0 and iface.swd.parity_errors == 0


def test_wait_on_posted_writes_sends_them_again(usb) -> None:
    iface, target = board_with_target(usb)
    _, site = open_site("ftdi://ftdi:232h/1?swd=1", usb)
    site.swd.connect()
    target.wait_next = 3  # the bus is busy for the next three packets
    site.swd.write_words(RAM, [1, 2, 3, 4])
    assert target.regions[RAM][:16] == b"".join(n.to_bytes(4, "little") for n in (1, 2, 3, 4))
    target.wait_next = 2  # queued reads answered WAIT are sent again too
    assert site.swd.read_words(RAM, 4) == [1, 2, 3, 4]
    waits = [ack for _, ack in iface.swd.answered].count(0b010)
    assert waits == 5
    assert iface.swd.collisions == 0


def test_fault_on_a_posted_write_names_it_and_clears(usb) -> None:
    _, target = board_with_target(usb)
    target.regions[0x1000_0000] = bytearray(8)  # two words, then nothing mapped
    _, site = open_site("ftdi://ftdi:232h/1?swd=1", usb)
    site.swd.connect()
    with pytest.raises(SwdFault, match=r"AP write 0xC answered FAULT.* \(CTRL/STAT 0x"):
        site.swd.write_words(0x1000_0000, [1, 2, 3, 4, 5])
    assert target.regions[0x1000_0000] == bytes.fromhex("0100000002000000")
    site.swd.write_words(RAM, [0xCAFE])  # the sticky errors were cleared
    assert site.swd.read_words(RAM, 1) == [0xCAFE]


def test_both_interfaces_of_an_ft2232h_are_two_swd_sites(usb) -> None:
    board = usb.add("FT2SWD", "2232h")
    targets = [SimSwdTarget(regions={RAM: bytearray(64)}, idcode=IDCODE + n) for n in (0, 1)]
    for number, target in zip((1, 2), targets, strict=True):
        board.interfaces[number].swd = SwdBitFront(target)
    programmer = open_programmer("ftdi://ftdi:2232h:FT2SWD/*?swd=1", ftdi_backend=usb.backend())
    assert [site.index for site in programmer.sites] == [1, 2]
    for n, site in enumerate(programmer.sites):
        assert site.swd.connect() == IDCODE + n
        site.swd.write_words(RAM, [0x100 + n])
    assert [t.regions[RAM][0] for t in targets] == [0x00, 0x01]
    assert [t.regions[RAM][1] for t in targets] == [0x01, 0x01]


def test_fault_on_a_queued_read_names_it_and_clears(usb) -> None:
    board_with_target(usb)
    _, site = open_site("ftdi://ftdi:232h/1?swd=1", usb)
    site.swd.connect()
    site.swd.write_words(RAM, [0xFEED])
    with pytest.raises(SwdFault, match=r"AP read 0xC answered FAULT.* \(CTRL/STAT 0x"):
        site.swd.read_words(0x6000_0000, 3)  # nothing there: STICKYERR, the next read FAULTs
    assert site.swd.read_words(RAM, 1) == [0xFEED]


class BusyStatus(SimSwdTarget):
    """A status word at STATUS reads busy (bit 0) twice after each store below it, as a
    flash controller's BSY does while a half-word programs."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.busy = 0

    def _store(self, address: int, value: int) -> bool:
        if address < STATUS:
            self.busy = 2
        return super()._store(address, value)

    def _load(self, address: int) -> int | None:
        if address == STATUS and self.busy:
            self.busy -= 1
            return 1
        return super()._load(address)


STATUS = 0x4002_200C
FLASH = 0x0800_0000


def test_polled_writes_poll_a_round_trip_at_a_time(usb) -> None:
    board = usb.add("FTPOLL", "232h")
    target = BusyStatus(regions={FLASH: bytearray(b"\xff" * 16), STATUS: bytearray(4)})
    iface = board.interfaces[1]
    iface.swd = SwdBitFront(target)
    _, site = open_site("ftdi://ftdi:232h/1?swd=1", usb)
    site.swd.connect()
    iface.reset_counts()
    before = len(iface.swd.answered)
    assert site.swd.write_polled([(FLASH, 0x1234), (FLASH + 2, 0xABCD)], 2, STATUS, 1) == [0, 0]
    assert target.regions[FLASH][:4] == bytes.fromhex("3412cdab")
    packets = iface.swd.answered[before:]
    reads = sum(1 for request, _ in packets if request & 0b100)
    # a round trip per read (each poll is an AP read and RDBUFF; 3 polls per half-word),
    # the writes riding along
    assert reads >= 2 * 3 * 2 and iface.round_trips == reads < len(packets)


def test_no_target_is_named(usb) -> None:
    board_with_target(usb, present=False)
    _, site = open_site("ftdi://ftdi:232h/1?swd=1", usb)
    with pytest.raises(SwdError, match=r"no acknowledge \(111\).*is a target there"):
        site.swd.connect()


def test_connect_under_reset_holds_nrst_and_an_led_change_keeps_it(usb) -> None:
    iface, _ = board_with_target(usb)
    iface.nrst_bit = 4
    url = "ftdi://ftdi:232h/1?swd=1&nrst=ADBUS4&connect=under-reset&pins=pass=D6,fail=D7"
    _, site = open_site(url, usb)
    assert iface.nrst_level() == 1  # released (an input) until asked
    site.swd.connect()
    assert iface.nrst_log[-1] == (0, 0)  # low before the first SWCLK edge, still low
    site.indicate("busy")
    site.indicate("pass")  # pyftdi's GPIO write re-drives the port; NRST stays low
    assert iface.nrst_level() == 0 and iface.pin_high(6)
    site.swd.set_reset(False)
    assert iface.nrst_level() == 1 and not iface.direction & 0x10  # open drain: released
    site.swd.set_reset(True)
    site.power(False)  # the end of a cycle: NRST and the SWD lines let go of the board
    assert iface.nrst_level() == 1 and iface.direction & 0x07 == 0


def test_nrst_on_acbus(usb) -> None:
    iface, _ = board_with_target(usb)
    iface.nrst_bit = 8
    _, site = open_site("ftdi://ftdi:232h/1?swd=1&nrst=C0", usb)
    site.swd.set_reset(True)
    assert iface.nrst_level() == 0
    site.swd.set_reset(False)
    assert iface.nrst_level() == 1


def test_without_nrst_set_reset_is_a_no_op(usb) -> None:
    iface, _ = board_with_target(usb)
    iface.nrst_bit = 4
    _, site = open_site("ftdi://ftdi:232h/1?swd=1", usb)
    site.swd.set_reset(True)
    assert iface.nrst_level() == 1 and not site.swd.has_reset


def test_unplug_is_link_lost(usb) -> None:
    iface, _ = board_with_target(usb)
    _, site = open_site("ftdi://ftdi:232h/1?swd=1", usb)
    site.swd.connect()
    iface.board.unplug()
    with pytest.raises(LinkError, match="USB link to FTDI FTSWD1 interface 1 lost during an SWD"):
        site.swd.read_words(RAM, 1)
    assert site.link_lost


@pytest.mark.parametrize(
    ("url", "text"),
    [
        ("ftdi://ftdi:232h/1?swd=maybe", "swd='maybe': expected 1 or 0"),
        ("ftdi://ftdi:232h/1?swd=1&i2c=1", "an interface is one or the other"),
        ("ftdi://ftdi:232h/1?nrst=D4", "nrst= is for SWD probes: add swd=1"),
        ("ftdi://ftdi:232h/1?connect=under-reset", "connect= is for SWD probes"),
        ("ftdi://ftdi:232h/1?swd=1&nrst=D2", "the SWD bus uses D0-D3"),
        ("ftdi://ftdi:232h/1?swd=1&nrst=E4", "'E4' is not a pin"),
        ("ftdi://ftdi:232h/1?swd=1&nrst=!D4", "'!D4' is not a pin"),
        ("ftdi://ftdi:232h/1?swd=1&nrst=D4&pins=pass=D4", "pin already used for pass"),
        ("ftdi://ftdi:232h/1?swd=1&pins=reset=D5", "nrst=PIN, not pins=reset="),
        ("ftdi://ftdi:232h/1?swd=1&connect=under-reset", "needs the target's NRST wired"),
        ("ftdi://ftdi:232h/1?swd=1&connect=later", "connect='later'"),
        ("ftdi://ftdi:232h/1?swd=1&clock=40M", "clock=40000000 must be within 1000..30000000"),
        ("ftdi://ftdi:4232h/1?swd=1&nrst=C0", "FT4232H has no ACBUS pins"),
    ],
)
def test_url_errors(usb, url, text) -> None:
    usb.add("FT1ERR", "232h")
    usb.add("FT4ERR", "4232h")
    with pytest.raises(ProgrammerUrlError) as err:
        open_programmer(url, ftdi_backend=usb.backend())
    assert text in str(err.value)
