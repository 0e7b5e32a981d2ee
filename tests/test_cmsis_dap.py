"""The cmsis-dap:// backend (app.hal.cmsis_dap*) against a fake probe at the USB packet
level (tests/cmsis_dap_fake.py, written from the CMSIS-DAP specification) with the
simulated SWD target behind it: the real link, debug port and programmer, no hardware."""

from __future__ import annotations

import json
import math
import random

import pytest
from cmsis_dap_fake import FakeDapProbe, FakeDapUsb, FakeUsbError
from test_swd import STATUS, BusyFlash  # a status word that reads busy after writes

from app.hal.cmsis_dap import CmsisDapLink
from app.hal.cmsis_dap_usb import DapBackend, DapProbe
from app.hal.debug_port import DebugPort
from app.hal.errors import HalError, LinkError, ProgrammerUrlError
from app.hal.programmer import open_programmer
from app.hal.sim.swd_target import SimSwdTarget
from app.hal.swd import Access, SwdError, SwdFault, SwdMismatch
from app.hal.swd_site import SwdProgrammer

RAM = 0x2000_0000
FLASH = 0x0800_0000
STICKYERR = 1 << 5  # DP CTRL/STAT (ADIv5)


def backend(usb: FakeDapUsb) -> DapBackend:
    def find() -> list[DapProbe]:
        return [
            DapProbe(i.vid, i.pid, i.bus, i.address, i.serial, i.product, i.version)
            for i in usb.find()
        ]

    return DapBackend(
        find_probes=find,
        open=lambda probe: usb.open(probe.bus, probe.address),
        link_errors=(FakeUsbError,),
    )


def ram_target(size: int = 32 * 1024) -> SimSwdTarget:
    return SimSwdTarget(regions={RAM: bytearray(size)})


def open_one(usb: FakeDapUsb, url: str = "cmsis-dap://") -> SwdProgrammer:
    programmer = open_programmer(url, cmsis_dap_backend=backend(usb))
    assert isinstance(programmer, SwdProgrammer)
    return programmer


@pytest.fixture(params=[1, 2], ids=["v1-hid", "v2-bulk"])
def version(request: pytest.FixtureRequest) -> int:
    return request.param


def test_connect_reads_idcode_at_the_clock_asked_for(version: int) -> None:
    probe = FakeDapProbe("DAP1", version, ram_target())
    programmer = open_one(FakeDapUsb(probe), "cmsis-dap://DAP1?clock=1M")
    swd = programmer.sites[0].swd
    assert swd.connect() == 0x1BA01477
    assert probe.clock_hz == 1_000_000 and probe.connected
    assert programmer.url == "cmsis-dap://DAP1"
    assert programmer.name == f"CMSIS-DAP v{version} Fake CMSIS-DAP v{version} DAP1"
    # reset, switch, reset and idle clocks went as one DAP_SWJ_Sequence
    assert probe.commands[0x12] == 1
    programmer.close()
    assert not probe.connected and probe.commands[0x03] == 1  # DAP_Disconnect


def floor_commands(words: int, per_command: int) -> int:
    return math.ceil(words / per_command)


@pytest.mark.parametrize(
    ("version", "write_words", "read_words"),
    # words a command carries at most: v1 64-byte packets: a DAP_TransferBlock write
    # (5 header bytes) 14 words, an answer (3-4 header bytes) 15 words; v2 512: 126, 127
    [(1, 14, 15), (2, 126, 127)],
    ids=["v1-hid", "v2-bulk"],
)
def test_16kib_round_trip_in_close_to_the_fewest_usb_transfers(
    version: int, write_words: int, read_words: int
) -> None:
    probe = FakeDapProbe("DAP1", version, ram_target())
    programmer = open_one(FakeDapUsb(probe))
    swd = programmer.sites[0].swd
    swd.connect()
    link = programmer.sites[0].link
    data = random.Random(7).randbytes(16 * 1024)
    words = [int.from_bytes(data[i : i + 4], "little") for i in range(0, len(data), 4)]

    before = probe.usb_out
    swd.write_words(RAM, words)
    writes = probe.usb_out - before
    assert bytes(probe.target.regions[RAM][: len(data)]) == data
    before = probe.usb_out
    assert swd.read_words(RAM, len(words)) == words
    reads = probe.usb_out - before

    # each command is one USB OUT and one IN transfer; the TAR write at every 1 KiB
    # (where auto-increment may stop) and the words sharing its DAP_Transfer (5 bytes a
    # word there, 4 in a block) cost a few commands over the floor of the data alone
    assert floor_commands(4096, write_words) <= writes <= floor_commands(4096, write_words) + 4
    assert floor_commands(4096, read_words) <= reads <= floor_commands(4096, read_words) + 1
    assert probe.usb_in == probe.usb_out  # every command answered, none left behind
    assert link.usb_writes == probe.usb_out and link.usb_reads == probe.usb_in
    if version == 2:
        assert probe.most_queued == 4  # the packet count kept in flight
    print(f"v{version}: 16 KiB written in {writes} commands, read in {reads}")


def flash_target() -> BusyFlash:
    return BusyFlash(regions={FLASH: bytearray(b"\xff" * 1024), STATUS: bytearray(4)})


def test_polled_writes_wait_inside_the_probe(version: int) -> None:
    probe = FakeDapProbe("DAP1", version, flash_target())
    programmer = open_one(FakeDapUsb(probe))
    swd = programmer.sites[0].swd
    swd.connect()
    units = [(FLASH + 2 * n, 0x1000 + n) for n in range(64)]
    before = probe.usb_out
    assert swd.write_polled(units, 2, STATUS, 1) == [0] * 64
    round_trips = probe.usb_out - before
    memory = probe.target.regions[FLASH]
    assert [int.from_bytes(memory[2 * n : 2 * n + 2], "little") for n in range(64)] == [
        0x1000 + n for n in range(64)
    ]
    # a unit is TAR, DRW, TAR (5 request bytes each), match mask and match read (5 each)
    # and a read of the status (1): 26 bytes, after 10 of SELECT and CSW; a command holds
    # packet - 3 bytes, less at most 10 where the next access (11 at most) does not fit.
    # The busy polls (3 a unit, 192 in all) never come back to the host.
    packet = 64 if version == 1 else 512
    assert round_trips == math.ceil((10 + 64 * 26) / (packet - 3 - 10))


def test_a_status_that_never_clears_is_a_mismatch_naming_the_register() -> None:
    target = flash_target()
    target.busy_reads = 10**9
    probe = FakeDapProbe("DAP1", 2, target)
    usb = FakeDapUsb(probe)
    link = CmsisDapLink(usb.open(1, 10), name="DAP1", clock_hz=4_000_000, match_retries=20)
    swd = DebugPort(link)
    swd.connect()
    with pytest.raises(SwdMismatch, match=r"AP read 0xC still reads 0x00000001 after 20 match"):
        swd.write_polled([(FLASH, 0x1234)], 2, STATUS, 1)
    assert probe.match_retries == 20


def test_a_fault_names_the_access_and_the_sticky_error_is_cleared(version: int) -> None:
    probe = FakeDapProbe("DAP1", version, ram_target())
    programmer = open_one(FakeDapUsb(probe))
    swd = programmer.sites[0].swd
    swd.connect()
    with pytest.raises(
        SwdFault,
        match=r"AP (read|write) 0x[0-9A-F]+ answered FAULT during the read of 40 words at"
        r" 0x60000000 \(CTRL/STAT",
    ):
        swd.read_words(0x6000_0000, 40)  # nothing mapped there: STICKYERR, then FAULT
    swd.write_words(RAM, [0xCAFE, 0xF00D])
    assert swd.read_words(RAM, 2) == [0xCAFE, 0xF00D]


def test_a_wait_storm_is_an_error(version: int) -> None:
    target = ram_target()
    probe = FakeDapProbe("DAP1", version, target)
    programmer = open_one(FakeDapUsb(probe))
    swd = programmer.sites[0].swd
    swd.connect()
    target.wait_next = 5  # a few WAITs: retried inside the probe
    swd.write_words(RAM, [7])
    assert swd.read_words(RAM, 1) == [7]
    target.wait_next = 10**6
    with pytest.raises(SwdError, match=r"still WAIT after 1000 retries on Fake CMSIS-DAP"):
        swd.read_words(RAM, 1)


def test_no_target_says_what_to_check() -> None:
    probe = FakeDapProbe("DAP1", 2, SimSwdTarget(present=False))
    programmer = open_one(FakeDapUsb(probe))
    with pytest.raises(SwdError, match=r"no acknowledge to DP read 0x0 on .*VTref"):
        programmer.sites[0].swd.connect()


def test_connect_under_reset_holds_nreset_low() -> None:
    probe = FakeDapProbe("DAP1", 2, ram_target())
    programmer = open_one(FakeDapUsb(probe), "cmsis-dap://?connect=under-reset")
    site = programmer.sites[0]
    site.swd.connect()
    assert probe.nreset_log == [True] and probe.nreset_low
    site.power(False)  # never leaves the board held in reset
    assert not probe.nreset_low


def test_an_unplugged_probe_is_a_link_error_and_reconnects_by_serial(version: int) -> None:
    probe = FakeDapProbe("DAP1", version, ram_target())
    programmer = open_one(FakeDapUsb(probe), "cmsis-dap://DAP1")
    site = programmer.sites[0]
    site.swd.connect()
    probe.fail_after = 3  # gone in the middle of the next block
    with pytest.raises(LinkError, match=r"USB link to CMSIS-DAP probe .*DAP1 lost"):
        site.swd.write_words(RAM, list(range(2000)))
    assert site.link_lost
    assert not site.reconnect()  # still unplugged
    probe.plug()  # back, at another USB address
    assert site.reconnect() and not site.link_lost
    assert site.swd.connect() == 0x1BA01477
    site.swd.write_words(RAM, [1, 2, 3])
    assert site.swd.read_words(RAM, 3) == [1, 2, 3]


def test_a_probe_that_stops_answering_times_out_naming_it() -> None:
    probe = FakeDapProbe("DAP7", 2, ram_target())
    site = open_one(FakeDapUsb(probe)).sites[0]
    site.swd.connect()
    probe.mute = True
    with pytest.raises(LinkError, match=r"probe Fake CMSIS-DAP v2 DAP7 lost .*timed out"):
        site.swd.read_words(RAM, 1)
    assert site.link_lost


def test_write_abort_clears_a_sticky_error() -> None:
    probe = FakeDapProbe("DAP1", 2, ram_target())
    link = CmsisDapLink(FakeDapUsb(probe).open(1, 10), name="DAP1", clock_hz=4_000_000)
    port = DebugPort(link)
    port.connect()
    link.transfer([Access(True, False, 0x04, 0x6000_0000), Access(True, False, 0x0C, 1)])
    (status,) = link.transfer([Access(False, True, 0x4)])
    assert status & STICKYERR  # the write to nothing set it
    link.write_abort(1 << 2)  # STKERRCLR
    (status,) = link.transfer([Access(False, True, 0x4)])
    assert not status & STICKYERR and probe.commands[0x08] == 1


@pytest.mark.parametrize("fault", ["garble", "cut"])
def test_a_garbled_or_short_answer_is_a_clear_link_error(fault: str) -> None:
    probe = FakeDapProbe("DAP1", 2, ram_target())
    programmer = open_one(FakeDapUsb(probe))
    site = programmer.sites[0]
    site.swd.connect()
    if fault == "garble":
        probe.garble_next = True
        expected = r"answer 0x5F to command 0x05 \(garbled or out of step\)"
    else:
        probe.cut_next = 5
        expected = r"(short answer|answer cut short).*re-plug the probe"
    with pytest.raises(LinkError, match=expected):
        site.swd.read_words(RAM, 4)
    assert site.link_lost
    assert site.reconnect()  # still plugged in: reopened and set up again
    site.swd.connect()
    site.swd.write_words(RAM, [5])
    assert site.swd.read_words(RAM, 1) == [5]


def test_url_errors_are_named_before_usb() -> None:
    usb = FakeDapUsb(FakeDapProbe("A1", 2, ram_target()), FakeDapProbe("B2", 1, ram_target()))
    with pytest.raises(ProgrammerUrlError, match=r"clock='fast': give Hz"):
        open_one(usb, "cmsis-dap://A1?clock=fast")
    with pytest.raises(ProgrammerUrlError, match=r"unknown cmsis-dap option\(s\) speed"):
        open_one(usb, "cmsis-dap://A1?speed=4M")
    with pytest.raises(ProgrammerUrlError, match=r"2 CMSIS-DAP probes connected: name one"):
        open_one(usb)
    with pytest.raises(HalError, match=r"no CMSIS-DAP probe with serial C3 \(connected: A1, B2\)"):
        open_one(usb, "cmsis-dap://C3")
    with pytest.raises(HalError, match=r"no CMSIS-DAP probe found"):
        open_one(FakeDapUsb())


def test_two_probes_make_a_station() -> None:
    first = FakeDapProbe("A1", 2, ram_target(), address=10)
    second = FakeDapProbe("B2", 1, ram_target(), address=11)
    station = open_programmer(
        "cmsis-dap://B2 ; cmsis-dap://A1", cmsis_dap_backend=backend(FakeDapUsb(first, second))
    )
    assert [s.index for s in station.sites] == [1, 2]
    station.sites[0].swd.connect()
    station.sites[0].swd.write_words(RAM, [0xB2])
    assert second.target.regions[RAM][0] == 0xB2
    assert first.commands[0x05] == first.commands[0x06] == 0  # the other probe: untouched
    station.close()


def test_hw_list_shows_the_probe_and_its_url(monkeypatch, capsys) -> None:
    import app.hal.cmsis_dap_usb as usb_module
    from app.cli import main

    usb = FakeDapUsb(FakeDapProbe("E6614C", 2, None))
    monkeypatch.setattr(usb_module, "pyusb_backend", lambda: backend(usb))
    assert main(["hw", "list"]) == 0
    out = capsys.readouterr().out
    assert "CMSIS-DAP probes:" in out
    assert "0d28:0204  Fake CMSIS-DAP v2 E6614C  v2 (bulk)  cmsis-dap://E6614C" in out
    assert main(["hw", "list", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    (entry,) = doc["cmsis_dap"]["devices"]
    assert entry["url"] == "cmsis-dap://E6614C" and entry["version"] == 2


# -- real hardware ----------------------------------------------------------------------


@pytest.mark.hardware
def test_real_probe_reads_an_idcode(request: pytest.FixtureRequest) -> None:
    url = request.config.getoption("--cmsis-dap")
    if not url:
        pytest.skip("give --cmsis-dap URL")
    programmer = open_programmer(url)
    try:
        idcode = programmer.sites[0].swd.connect()
        assert idcode not in (0, 0xFFFFFFFF)
        print(f"{programmer.name}: IDCODE 0x{idcode:08X}")
    finally:
        programmer.close()


LOCKED = DapProbe(
    0x2E8A,
    0x000C,
    3,
    9,
    "",
    "Raspberry Pi Debug Probe",
    0,
    accessible=False,
    error="permission denied",
)


def test_diagnose_names_a_probe_without_permission_and_the_udev_fix() -> None:
    from app.engine.hw_diagnosis import DapScan, UsbScan, diagnose

    usable = DapProbe(0x0D28, 0x0204, 1, 4, "", "DAPLink CMSIS-DAP", 2)
    findings = diagnose(UsbScan([]), [], "linux", set(), None, DapScan([LOCKED, usable]))
    (problem,) = [f for f in findings if f.level == "problem"]
    assert problem.text == (
        "CMSIS-DAP probe Raspberry Pi Debug Probe (bus 3 address 9) (2e8a:000c): not accessible"
        " (permission denied)"
    )
    assert "99-socketeer.rules" in problem.fixes[0]
    texts = [f.text for f in findings]
    assert (
        "CMSIS-DAP probe DAPLink CMSIS-DAP (bus 1 address 4) (0d28:0204): accessible as"
        " cmsis-dap://" in texts
    )
    assert any("has no USB serial number" in t for t in texts)


def test_opening_a_probe_without_permission_says_so() -> None:
    locked = DapBackend(find_probes=lambda: [LOCKED], open=lambda p: None, link_errors=())
    with pytest.raises(
        HalError,
        match=r"Debug Probe .* not accessible \(permission denied\):"
        r" see `socketeer hw diagnose`",
    ):
        open_programmer("cmsis-dap://", cmsis_dap_backend=locked)


def test_the_udev_rules_cover_the_common_probes() -> None:
    from pathlib import Path

    rules = (Path(__file__).parent.parent / "packaging/linux/99-socketeer.rules").read_text()
    for vid, pid in [("0d28", "0204"), ("2e8a", "000c"), ("2e8a", "0004")]:
        assert f'ATTR{{idVendor}}=="{vid}", ATTR{{idProduct}}=="{pid}", MODE="0660"' in rules


# -- finding probes by their USB descriptors (app.hal.cmsis_dap_usb._describe) ------------


class Endpoint:
    def __init__(self, address: int, attributes: int, size: int = 64) -> None:
        self.bEndpointAddress, self.bmAttributes, self.wMaxPacketSize = address, attributes, size


class Interface(list):
    def __init__(self, number: int, cls: int, string: int, endpoints: list[Endpoint]) -> None:
        super().__init__(endpoints)
        self.bInterfaceNumber, self.bInterfaceClass, self.iInterface = number, cls, string


class Device:
    """A USB device as pyusb shows it: ids, string indexes, the active configuration."""

    def __init__(self, vid: int, pid: int, interfaces: list[Interface]) -> None:
        self.idVendor, self.idProduct, self.bus, self.address = vid, pid, 1, 5
        self.iProduct, self.iSerialNumber = 1, 2
        self.interfaces = interfaces

    def get_active_configuration(self) -> list[Interface]:
        return self.interfaces


BULK, INTERRUPT = 0x02, 0x03
#: string index -> text; a composite probe with a CDC UART, a v2 and a v1 interface
STRINGS = {1: "DAPLink CMSIS-DAP", 2: "0240000034", 4: "CMSIS-DAP v2", 5: "CDC UART"}


@pytest.fixture
def descriptors(monkeypatch: pytest.MonkeyPatch) -> dict[int, str]:
    import usb.util

    strings = dict(STRINGS)

    def get_string(dev: Device, index: int) -> str:
        if not strings:
            raise ValueError("The device has no langid (permission issue, no string descriptors)")
        return strings[index]

    monkeypatch.setattr(usb.util, "get_string", get_string)
    monkeypatch.setattr(usb.util, "dispose_resources", lambda dev: None)
    return strings


def composite(vid: int = 0x0D28, pid: int = 0x0204) -> Device:
    return Device(
        vid,
        pid,
        [
            Interface(0, 0x02, 5, [Endpoint(0x83, INTERRUPT)]),
            Interface(1, 0x03, 0, [Endpoint(0x81, INTERRUPT), Endpoint(0x01, INTERRUPT)]),
            Interface(2, 0xFF, 4, [Endpoint(0x02, BULK, 512), Endpoint(0x82, BULK, 512)]),
        ],
    )


def test_a_probe_with_both_interfaces_is_opened_as_v2(descriptors: dict[int, str]) -> None:
    from app.hal.cmsis_dap_usb import _describe

    probe = _describe(composite())
    assert probe is not None
    assert (probe.version, probe.interface, probe.serial) == (2, 2, "0240000034")
    assert probe.url == "cmsis-dap://0240000034" and probe.product == "DAPLink CMSIS-DAP"


def test_a_hid_only_probe_is_v1_by_its_product_string(descriptors: dict[int, str]) -> None:
    from app.hal.cmsis_dap_usb import _describe

    device = composite()
    device.interfaces = device.interfaces[:2]
    probe = _describe(device)
    assert probe is not None and (probe.version, probe.interface) == (1, 1)
    descriptors[1] = "USB keyboard"  # HID, but no CMSIS-DAP string anywhere: not a probe
    assert _describe(device) is None


def test_an_unreadable_device_is_listed_only_when_its_id_is_a_known_probe(
    descriptors: dict[int, str],
) -> None:
    from app.hal.cmsis_dap_usb import _describe

    descriptors.clear()  # no permission: no strings
    probe = _describe(composite(0x2E8A, 0x000C))
    assert probe is not None and not probe.accessible and probe.error == "permission denied"
    assert probe.label == "Raspberry Pi Debug Probe (bus 1 address 5)"
    assert _describe(composite(0x1234, 0x5678)) is None
