"""The ST-LINK backend (app.hal.stlink, app.hal.stlink_programmer) against a fake ST-LINK at
the USB packet level (tests/stlink_fake.py), whose firmware drives the simulated target
(app.hal.sim.swd_target) with its own ADIv5 packets: versions and modes, connect, memory
blocks and their USB transfer counts, polled flash writes, faults, unplug, garbled answers,
URLs and `socketeer hw list|diagnose`."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest
from stlink_fake import FakeStlinkUsb  # tests/ is on sys.path (rootdir)
from test_interfaces import check
from test_swd import STATUS, BusyFlash

from app.hal.bus import DebugAccess
from app.hal.errors import HalError, LinkError, ProgrammerUrlError
from app.hal.programmer import open_programmer
from app.hal.sim.swd_target import SimSwdTarget
from app.hal.stlink import StlinkFirmwareError
from app.hal.stlink_usb import PRODUCTS, readable_serial
from app.hal.swd import SwdError, SwdFault, SwdMismatch

RAM = 0x2000_0000
FLASH = 0x0800_0000
IDCODE = 0x1BA01477  # the simulated SW-DP's
SERIAL = "066DFF343633464257"


@pytest.fixture
def usb() -> FakeStlinkUsb:
    return FakeStlinkUsb()


def ram_target(size: int = 40 * 1024) -> SimSwdTarget:
    return SimSwdTarget(regions={RAM: bytearray(size)})


def open_stlink(url: str, usb: FakeStlinkUsb):
    return open_programmer(url, stlink_backend=usb.backend())


def connected(usb: FakeStlinkUsb, url: str = "stlink://"):
    """The only site of ``url``, connected."""
    site = open_stlink(url, usb).sites[0]
    assert site.swd.connect() == IDCODE
    return site


# -- versions, modes, connect ------------------------------------------------------------


@pytest.mark.parametrize(
    ("variant", "firmware", "mode", "version_ex"),
    [
        ("V2J22", "V2J22S4", "DFU", 0),
        ("V2J37", "V2J37S7", "DFU", 0),
        ("V3", "V3J7M2B3S1", "mass storage", 1),
    ],
)
def test_version_and_mode_are_read_and_dfu_is_left(usb, variant, firmware, mode, version_ex):
    probe = usb.add(ram_target(), variant)
    site = open_stlink("stlink://", usb).sites[0]
    assert site.probe.firmware.text == firmware
    assert usb.probes[0].commands[0xFB] == version_ex  # a V3's versions need GET_VERSION_EX
    # a V2 comes up in DFU mode and is told to leave it; a V3 idles in mass storage
    assert (probe.events == ["dfu-exit"]) == (mode == "DFU")
    assert probe.mode == 0x01  # mass storage: idle, ready to enter SWD


def test_a_probe_that_stays_in_dfu_is_named(usb) -> None:
    usb.add(ram_target(), "V2J37").stuck_in_dfu = True
    with pytest.raises(HalError, match=rf"ST-LINK {SERIAL} stays in DFU mode.*STSW-LINK007"):
        open_stlink("stlink://", usb)


@pytest.mark.parametrize(
    ("variant", "clock", "khz"),
    [("V2J22", "4M", 4000), ("V2J37", "1M", 950), ("V3", "4M", 3300), ("V3", "1k", 5)],
)
def test_connect_reads_idcode_at_the_nearest_clock_at_or_below(usb, variant, clock, khz):
    probe = usb.add(ram_target(), variant)
    site = connected(usb, f"stlink://?clock={clock}")
    assert probe.mode == 0x02 and probe.swd_khz == khz
    assert site.probe.clock_hz == khz * 1000


def test_connect_under_reset_holds_nrst_low_from_before_swd_until_released(usb) -> None:
    probe = usb.add(ram_target(), "V3")
    site = connected(usb, "stlink://?connect=under-reset")
    # asserted before ENTER2 (the part may disable its SWD pins at once) and again after
    assert probe.events == ["nrst-low", "enter-swd", "nrst-low"] and probe.nrst_low
    site.swd.set_reset(False)
    assert not probe.nrst_low
    site.power(False)  # a site never leaves the board held in reset either
    assert probe.events[-1] == "nrst-high"


def test_no_target_names_the_voltage_and_the_wiring(usb) -> None:
    probe = usb.add(None, "V2J37")
    site = open_stlink("stlink://", usb).sites[0]
    with pytest.raises(SwdError, match=r"no SW-DP answered .* target voltage 3\.30 V: check SWDIO"):
        site.swd.connect()
    probe.target_volts = 0.0
    with pytest.raises(SwdError, match=r"target voltage 0\.00 V: the board is not powered"):
        site.swd.connect()


# -- memory ----------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["V2J22", "V2J37", "V3"])
def test_16k_round_trip_at_the_usb_transfer_floor(usb, variant) -> None:
    sim = ram_target()
    probe = usb.add(sim, variant)
    site = connected(usb)
    words = [random.Random(3).getrandbits(32) for _ in range(4096)]
    probe.bulk_out = probe.bulk_in = 0
    site.swd.write_words(RAM, words)
    # a command moves at most one 1 KiB TAR block: 16 commands, each its 16-byte block,
    # its data phase and GETLASTRWSTATUS2 (block out, 12 bytes in)
    commands = math.ceil(16384 / 1024)
    assert (probe.bulk_out, probe.bulk_in) == (3 * commands, commands)
    probe.bulk_out = probe.bulk_in = 0
    assert site.swd.read_words(RAM, 4096) == words
    assert (probe.bulk_out, probe.bulk_in) == (2 * commands, 2 * commands)
    assert bytes(sim.regions[RAM][:16384]) == b"".join(w.to_bytes(4, "little") for w in words)


def test_blocks_are_split_at_every_1k_boundary(usb) -> None:
    """The fake writes TAR once per command, so a block across 1 KiB would wrap."""
    sim = ram_target()
    probe = usb.add(sim, "V2J37")
    site = connected(usb)
    data = random.Random(4).randbytes(3000)
    words = [int.from_bytes(data[i : i + 4], "little") for i in range(0, 3000, 4)]
    start = RAM + 0x400 - 8  # two words before a boundary: 8 + 1024 + 1024 + 944 bytes
    probe.commands.clear()
    site.swd.write_words(start, words)
    assert site.swd.read_words(start, len(words)) == words
    assert bytes(sim.regions[RAM][0x3F8 : 0x3F8 + 3000]) == data
    assert probe.commands[0x08] == probe.commands[0x07] == 4


def test_a_fault_names_the_address_and_the_port_recovers(usb) -> None:
    probe = usb.add(ram_target(), "V2J37")
    site = connected(usb)
    with pytest.raises(SwdFault, match=r"FAULT reading 16 bytes at 0x60000000: .* 0x60000000"):
        site.swd.read_words(0x6000_0000, 4)
    assert probe.commands[0x46] == 1  # the sticky error cleared with DP ABORT
    site.swd.write_words(RAM, [0xCAFE])
    assert site.swd.read_words(RAM, 1) == [0xCAFE]


def test_a_fault_mid_block_names_the_first_address_that_failed(usb) -> None:
    usb.add(ram_target(1024), "V3")
    site = connected(usb)
    with pytest.raises(SwdFault, match=r"the target's bus refused 0x20000400 "):
        site.swd.write_words(RAM + 0x3F0, list(range(8)))  # 4 words in RAM, 4 past its end


def test_a_block_the_target_answered_wait_to_is_sent_again(usb) -> None:
    sim = ram_target()
    probe = usb.add(sim, "V3")
    site = connected(usb)
    site.probe.wait_backoff_s = 0.0
    site.swd.write_words(RAM, [1, 2, 3])
    probe.commands.clear()
    sim.wait_next = 100  # the fake's firmware retries a packet 64 times, then answers WAIT
    assert site.swd.read_words(RAM, 3) == [1, 2, 3]
    assert probe.commands[0x07] == 2
    sim.wait_next = 10**6
    with pytest.raises(SwdError, match=r"reading 12 bytes at 0x20000000 failed: .*WAIT to 9"):
        site.swd.read_words(RAM, 3)


def test_old_firmware_recovers_from_a_fault_by_entering_swd_again(usb) -> None:
    probe = usb.add(ram_target(), "V2J22")  # no WRITE_DAP_REG for the ABORT
    site = connected(usb)
    probe.events.clear()
    with pytest.raises(SwdFault, match="0x60000000"):
        site.swd.read_words(0x6000_0000, 1)
    assert probe.events == ["exit", "enter-swd"]
    site.swd.write_words(RAM, [7])
    assert site.swd.read_words(RAM, 1) == [7]


# -- polled writes (flash programming) ------------------------------------------------------


def busy_flash() -> BusyFlash:
    return BusyFlash(regions={FLASH: bytearray(b"\xff" * 64), STATUS: bytearray(4)})


@pytest.mark.parametrize("variant", ["V2J37", "V3"])
def test_half_words_are_written_and_the_status_polled_until_ready(usb, variant) -> None:
    sim = busy_flash()
    probe = usb.add(sim, variant)
    site = connected(usb)
    probe.bulk_out = probe.bulk_in = 0
    assert site.swd.write_polled([(FLASH, 0x1234), (FLASH + 2, 0xABCD)], 2, STATUS, 1) == [0, 0]
    assert sim.regions[FLASH][:4] == bytes.fromhex("3412CDAB")
    assert probe.commands[0x48] == 2
    # each unit: WRITEMEM_16BIT (block + data out), then 1 + 3 busy status reads, each a
    # READMEM (block out, data in) and its GETLASTRWSTATUS2 (block out, status in)
    polls = 1 + BusyFlash.busy_reads
    assert (probe.bulk_out, probe.bulk_in) == (2 * (2 + 2 * polls), 2 * 2 * polls)


@pytest.mark.parametrize(
    ("variant", "out", "in_"), [("V2J22", 4, 2), ("V2J37", 3, 1), ("V3", 3, 1)]
)
def test_a_word_and_its_first_status_read_share_a_round_trip_where_rw_misc_exists(
    usb, variant, out, in_
) -> None:
    sim = busy_flash()
    sim.busy_reads = 0  # ready at the first poll
    probe = usb.add(sim, variant)
    site = connected(usb)
    probe.bulk_out = probe.bulk_in = 0
    units = [(FLASH + 8, 0x89ABCDEF), (FLASH + 12, 0x01234567)]
    assert site.swd.write_polled(units, 4, STATUS, 1) == [0, 0]
    assert sim.regions[FLASH][8:16] == bytes.fromhex("EFCDAB8967452301")
    # V2J22: WRITEMEM (block, data), READMEM (block; data in), GETLASTRWSTATUS2 (block;
    # status in). V2J32+ and V3: RW_MISC_OUT (block, items) and RW_MISC_IN (block; answer)
    assert (probe.bulk_out, probe.bulk_in) == (2 * out, 2 * in_)
    assert probe.commands[0x51] == (0 if variant == "V2J22" else 2)


def test_a_busy_word_is_polled_after_its_batch(usb) -> None:
    sim = busy_flash()
    probe = usb.add(sim, "V3")
    site = connected(usb)
    assert site.swd.write_polled([(FLASH, 0xA5A5A5A5)], 4, STATUS, 1) == [0]
    assert probe.commands[0x51] == 1 and probe.commands[0x07] == BusyFlash.busy_reads


def test_a_batched_write_that_faults_names_its_address(usb) -> None:
    usb.add(busy_flash(), "V2J37")
    site = connected(usb)
    with pytest.raises(SwdFault, match=r"FAULT writing at 0x09000000: .*status 0x11"):
        site.swd.write_polled([(0x0900_0000, 1)], 4, STATUS, 1)
    assert site.swd.read_words(FLASH, 1) == [0xFFFFFFFF]  # the sticky error was cleared


class ReadyFlash(SimSwdTarget):
    """A controller whose READY flag (bit 0 of STATUS) is clear for two reads after each
    write to flash, as Nordic's NVMC READY is while a word programs."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.not_ready = 0

    def _store(self, address: int, value: int) -> bool:
        if address < STATUS:
            self.not_ready = 2
        return super()._store(address, value)

    def _load(self, address: int) -> int | None:
        if address == STATUS:
            self.not_ready = max(0, self.not_ready - 1)
            return 0 if self.not_ready else 1
        return super()._load(address)


@pytest.mark.parametrize("variant", ["V2J22", "V3"])
def test_a_ready_flag_is_polled_until_it_sets(usb, variant) -> None:
    sim = ReadyFlash(regions={FLASH: bytearray(b"\xff" * 16), STATUS: bytearray(4)})
    probe = usb.add(sim, variant)
    site = connected(usb)
    assert site.probe.write_polled([(FLASH, 0x11223344), (FLASH + 4, 5)], 4, STATUS, 1, 1) == [1, 1]
    assert sim.regions[FLASH][:8] == bytes.fromhex("4433221105000000")
    assert probe.commands[0x07] == (4 if variant == "V2J22" else 2)  # a second poll each
    with pytest.raises(ValueError, match="outside the mask"):
        site.probe.write_polled([(FLASH, 1)], 4, STATUS, 1, 2)


def test_half_words_on_old_firmware_are_refused_with_the_version_needed(usb) -> None:
    sim = busy_flash()
    probe = usb.add(sim, "V2J22")
    site = connected(usb)
    with pytest.raises(
        StlinkFirmwareError,
        match=r"firmware V2J22S4, which has no 16-bit memory access .* needs V2J26 or later"
        r" .*STSW-LINK007",
    ):
        site.swd.write_polled([(FLASH, 0x1234)], 2, STATUS, 1)
    assert probe.commands[0x48] == 0 and sim.regions[FLASH][:2] == b"\xff\xff"


def test_a_write_that_faults_is_named_not_the_status_read_after_it(usb) -> None:
    usb.add(busy_flash(), "V3")
    site = connected(usb)
    with pytest.raises(SwdFault, match=r"FAULT writing at 0x09000000"):
        site.swd.write_polled([(0x0900_0000, 0x1234)], 2, STATUS, 1)
    assert site.swd.read_words(STATUS, 1) == [0]  # the port works again


def test_a_status_that_never_clears_is_named(usb) -> None:
    sim = busy_flash()
    sim.busy_reads = 10**9
    usb.add(sim, "V3")
    site = connected(usb)
    site.probe.poll_timeout_s = 0.01
    with pytest.raises(SwdMismatch, match=r"0x4002200C still reads 0x00000001 after 0\.0 s"):
        site.swd.write_polled([(FLASH, 0x1234)], 2, STATUS, 1)


# -- access ports ------------------------------------------------------------------------------


def test_other_aps_are_opened_then_read_and_written(usb) -> None:
    probe = usb.add(ram_target(), "V3")
    site = connected(usb)
    assert site.swd.ap_read(0, 0xFC) == 0x24770011  # the AHB-AP's IDR
    site.swd.ap_write(0, 0x04, RAM + 8)  # TAR, through the DAP register commands
    assert site.swd.ap_read(0, 0x04) == RAM + 8
    site.swd.ap_write(1, 0x04, 1)  # the simulated target has no AP 1: ignored
    site.swd.ap_read(1, 0x00)
    assert probe.commands[0x4B] == 2  # INIT_AP for AP 0 (at connect) and AP 1, once each


def test_an_ap_register_fault_is_raised_and_cleared(usb) -> None:
    probe = usb.add(ram_target(), "V2J37")
    site = connected(usb)
    site.swd.ap_write(0, 0x04, 0x6000_0000)  # TAR at nothing, then DRW reads it
    with pytest.raises(SwdFault, match=r"reading AP 0 register 0x0C failed .*0x11"):
        site.swd.ap_read(0, 0x0C)
        site.swd.ap_read(0, 0x0C)  # the first read's fault shows on the next AP access
    assert probe.commands[0x46] == 2  # the TAR write, then DP ABORT
    assert site.swd.read_words(RAM, 1) == [0]


def test_ap_access_on_old_firmware_is_refused_with_the_version_needed(usb) -> None:
    usb.add(ram_target(), "V2J22")
    site = connected(usb)
    with pytest.raises(StlinkFirmwareError, match=r"DAP register access .* needs V2J24 or later"):
        site.swd.ap_read(1, 0x00)


# -- the USB link -------------------------------------------------------------------------------


def test_unplug_mid_read_is_a_link_error_and_reconnect_finds_it_again(usb) -> None:
    probe = usb.add(ram_target(), "V2J37")
    site = connected(usb)
    site.swd.write_words(RAM, list(range(2048)))
    probe.fail_after = 9  # two blocks and a half into the read
    with pytest.raises(LinkError, match=rf"USB link to ST-LINK {SERIAL} lost while reading"):
        site.swd.read_words(RAM, 2048)
    assert site.link_lost and not site.reconnect()
    with pytest.raises(LinkError, match="disconnected"):
        site.swd.read_words(RAM, 1)
    probe.replug(address=9)  # back at another USB address: found by its serial number
    assert site.reconnect() and not site.link_lost
    assert site.swd.connect() == IDCODE
    assert site.swd.read_words(RAM, 2048) == list(range(2048))


def test_a_short_answer_is_a_link_error(usb) -> None:
    probe = usb.add(ram_target(), "V2J37")
    site = connected(usb)
    probe.garble_next = "short"
    with pytest.raises(LinkError, match=r"answered 3 of 4 bytes while reading 4 bytes"):
        site.swd.read_words(RAM, 1)
    assert site.link_lost
    assert site.reconnect() and site.swd.connect() == IDCODE


def test_a_status_no_st_link_sends_is_a_link_error(usb) -> None:
    probe = usb.add(ram_target(), "V3")
    site = connected(usb)
    probe.garble_next = "status"
    with pytest.raises(LinkError, match=r"status 0x5A while asserting NRST, which is no ST-LINK"):
        site.swd.set_reset(True)
    assert site.link_lost


# -- URLs and several probes ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("stlink://?speed=1", "unknown stlink option"),
        ("stlink://?clock=fast", "give Hz"),
        ("stlink://?connect=under-reset&nrst=0", "needs NRST wired"),
        ("stlink://1:2/3", "name a probe by serial number"),
        ("stlink://ABC-1", "name a probe by serial number"),
    ],
)
def test_url_errors(usb, url, message) -> None:
    usb.add(ram_target())
    with pytest.raises(ProgrammerUrlError, match=message):
        open_stlink(url, usb)


def test_probe_selection_errors(usb) -> None:
    with pytest.raises(
        HalError, match=r"no ST-LINK matches stlink:// \(connected ST-LINKs: none\)"
    ):
        open_stlink("stlink://", usb)
    usb.add(ram_target(), address=5, serial="AAA")
    usb.add(ram_target(), address=6, serial="BBB")
    with pytest.raises(ProgrammerUrlError, match=r"2 ST-LINKs .*\(stlink://AAA or stlink://BBB\)"):
        open_stlink("stlink://", usb)
    with pytest.raises(HalError, match=r"connected ST-LINKs: AAA, BBB"):
        open_stlink("stlink://CCC", usb)
    usb.probes[1].accessible = False
    with pytest.raises(HalError, match=r"not accessible \(permission denied\).*udev"):
        open_stlink("stlink://BBB", usb)


def test_clones_sharing_a_serial_are_bound_by_usb_path_as_two_sites(usb) -> None:
    targets = [ram_target(), ram_target()]
    usb.add(targets[0], address=5, serial="CLONE1")
    usb.add(targets[1], address=6, serial="CLONE1")
    with pytest.raises(ProgrammerUrlError, match=r"carry the serial number CLONE1.*stlink://1:5"):
        open_stlink("stlink://CLONE1", usb)
    station = open_stlink("stlink://1:5 ; stlink://1:6?clock=1M", usb)
    assert [site.index for site in station.sites] == [1, 2]
    assert [site.swd.name for site in station.sites] == ["ST-LINK 1:5", "ST-LINK 1:6"]
    for n, site in enumerate(station.sites):
        site.swd.connect()
        site.swd.write_words(RAM, [0x100 + n])
    assert [t.regions[RAM][0] for t in targets] == [0x00, 0x01]
    assert [p.swd_khz for p in usb.probes] == [4000, 950]


def test_a_clone_unplugged_is_not_found_again_as_its_twin(usb) -> None:
    """Two clones with one serial, bound by USB path: while site 1's probe is away, the
    other clone carrying the same serial is site 2's, not site 1's found again."""
    usb.add(ram_target(), address=5, serial="CLONE1")
    usb.add(ram_target(), address=6, serial="CLONE1")
    station = open_stlink("stlink://1:5 ; stlink://1:6", usb)
    first, second = station.sites
    usb.probes[0].unplug()
    with pytest.raises(LinkError):
        first.swd.connect()
    assert first.link_lost and not first.reconnect()
    probes = [site.board_site.probe for site in (first, second)]
    assert [p.device.address for p in probes] == [5, 6]


def test_every_probe_with_star(usb) -> None:
    usb.add(ram_target(), "V3", address=7, serial="B")
    usb.add(ram_target(), "V2J37", address=4, serial="A")
    programmer = open_stlink("stlink://*", usb)
    sites = check(programmer)  # the Site and Programmer protocols, a DebugAccess each
    assert all(isinstance(s.swd, DebugAccess) and isinstance(s.probe, DebugAccess) for s in sites)
    assert [site.probe.device.serial for site in sites] == ["A", "B"]
    assert programmer.capabilities.buses == frozenset({"swd"})


def test_a_v2_serial_of_raw_bytes_is_printed_in_hex() -> None:
    raw = "".join(chr(b) for b in bytes.fromhex("066DFF343633464257172733"))
    assert readable_serial(raw) == "066DFF343633464257172733"
    assert readable_serial("0669FF3530") == "0669FF3530"


def test_the_udev_rules_cover_every_st_link_product() -> None:
    rules = (Path(__file__).parent.parent / "packaging/linux/99-socketeer.rules").read_text()
    for product in PRODUCTS:
        assert f'ATTR{{idVendor}}=="0483", ATTR{{idProduct}}=="{product:04x}"' in rules


# -- socketeer hw list / diagnose ------------------------------------------------------------------


@pytest.fixture
def hw_with(monkeypatch, usb):
    """`socketeer hw` seeing the fake ST-LINKs through the real listing code."""
    import app.hal.stlink_programmer as backend_module
    from app.engine import hw_diagnosis as hw
    from app.engine.hw_diagnosis import UsbScan

    monkeypatch.setattr(hw, "scan_ftdi", lambda: UsbScan([]))
    monkeypatch.setattr(hw, "scan_wch", lambda: UsbScan([]))
    monkeypatch.setattr(hw, "scan_serial_ports", lambda: [])
    monkeypatch.setattr(hw, "PLATFORM", "linux")
    monkeypatch.setattr(backend_module, "pyusb_backend", usb.backend)
    return usb


def run(capsys, *argv: str) -> tuple[int, str]:
    from app.cli import main

    code = main(list(argv))
    return code, capsys.readouterr().out


def test_hw_list_shows_probes_with_firmware_and_url(hw_with, capsys) -> None:
    hw_with.add(ram_target(), "V2J37", address=5)
    hw_with.add(ram_target(), "V3", address=6, serial="CLONE")
    hw_with.add(ram_target(), "V2J22", address=7, serial="CLONE")
    code, out = run(capsys, "hw", "list")
    assert code == 0
    assert (
        f"0483:3748  ST-LINK/V2  serial {SERIAL}  bus 1 address 5  firmware V2J37S7"
        f"  stlink://{SERIAL}"
    ) in out
    assert (
        "0483:374e  STLINK-V3E  serial CLONE  bus 1 address 6  firmware V3J7M2B3S1  stlink://1:6"
        in out
    )
    assert [p.mode for p in hw_with.probes] == [0x01, 0x01, 0x01]  # DFU left, nothing else
    code, out = run(capsys, "hw", "list", "--json")
    doc = [(d["firmware"], d["url"]) for d in __import__("json").loads(out)["stlink"]["devices"]]
    assert doc == [
        ("V2J37S7", f"stlink://{SERIAL}"),
        ("V3J7M2B3S1", "stlink://1:6"),
        ("V2J22S4", "stlink://1:7"),
    ]


def test_hw_list_leaves_a_probe_in_debug_mode_alone(hw_with, capsys) -> None:
    probe = hw_with.add(ram_target(), "V3")
    probe.mode = 0x02  # another program's debug session (on the same USB claim, say)
    code, out = run(capsys, "hw", "list")
    assert code == 0 and "firmware V3J7M2B3S1" in out
    assert probe.mode == 0x02 and "exit" not in probe.events


def test_hw_diagnose_names_st_link_problems(hw_with, capsys) -> None:
    hw_with.add(ram_target(), "V2J22", address=5, serial="OLD")
    hw_with.add(ram_target(), "V2J37", address=6, serial="LOCKED").accessible = False
    hw_with.add(ram_target(), "V2J37", address=8, serial="STUCK").stuck_in_dfu = True
    code, out = run(capsys, "hw", "diagnose")
    assert code == 1
    assert (
        "OK      ST-LINK/V2 OLD (bus 1 address 5): firmware V2J22S4, accessible as stlink://OLD"
        in out
    )
    assert (
        "NOTE    ST-LINK/V2 OLD (bus 1 address 5): firmware V2J22S4 has no half-word flash" in out
    )
    assert "PROBLEM ST-LINK/V2 LOCKED (bus 1 address 6): not accessible (permission denied)" in out
    assert "99-socketeer.rules" in out
    assert "PROBLEM ST-LINK/V2 STUCK (bus 1 address 8): ST-LINK STUCK stays in DFU mode" in out


# -- real hardware ---------------------------------------------------------------------------------


@pytest.mark.hardware
def test_real_st_link_reads_the_cpuid(request) -> None:
    url = request.config.getoption("--stlink")
    if not url:
        pytest.skip("give --stlink URL")
    programmer = open_programmer(url)
    try:
        site = programmer.sites[0]
        assert site.swd.connect() not in (0, 0xFFFFFFFF)
        (cpuid,) = site.swd.read_words(0xE000_ED00, 1)  # Cortex-M SCB CPUID
        assert cpuid >> 24 == 0x41, f"CPUID 0x{cpuid:08X} is not ARM's"
    finally:
        programmer.close()
