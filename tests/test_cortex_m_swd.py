"""The cortex_m_swd algorithm on simulated SWD sites (sim://): every SWD family named
by issue 18 programs and verifies; only the pages/sectors an image touches are erased;
readout protection, wrong parts, absent targets, controller errors, connect under
reset. The target model (app.hal.sim.mcu_target) was written from the reference
manuals apart from the algorithm, so the two check each other."""

from __future__ import annotations

import random
from typing import Any

import pytest

from app.core.image import MemoryImage
from app.devicedb import load_database
from app.engine.cycle import part_names
from app.engine.events import Event, LogEvent
from app.engine.results import DeviceResult
from app.engine.site_runner import CycleSpec
from app.engine.station import Station
from app.hal.programmer import open_programmer

#: one part per series (F42x: dual bank; nRF: both generations)
FAMILIES = [
    "st.stm32f030x8-f05x",
    "st.stm32f10x-md",
    "st.stm32f303x8-f334",
    "st.stm32f2",
    "st.stm32f40x-f41x",
    "st.stm32f42x-f43x",
    "st.stm32g07x-g08x",
    "st.stm32g431-g441",
    "st.stm32l43x-l44x",
    "nordic.nrf51822-xxaa",
    "nordic.nrf52832-xxaa",
    "nordic.nrf52840",
]


class Fixture:
    """One simulated SWD site with a part on it, kept across cycles (a board on a
    bed of nails); the events of every cycle."""

    def __init__(self, database, device_id: str, url: str = "sim://") -> None:
        self.device = database.get(device_id)
        self.programmer = open_programmer(url, device=self.device, database=database)
        self.events: list[Event] = []
        self.station = Station(self.programmer, self.events.append, part_names(database))
        self.site: Any = self.programmer.sites[0]

    @property
    def flash(self) -> bytearray:
        return self.site.mcu.flash

    def cycle(self, image: MemoryImage | None, action: str = "program", **spec) -> DeviceResult:
        spec.setdefault("backup", False)
        return self.station.run(CycleSpec(action, self.device, image, **spec)).results[0]

    def logged(self) -> str:
        return "\n".join(e.message for e in self.events if isinstance(e, LogEvent))


def image_for(device, rng: random.Random) -> MemoryImage:
    """Data at the start of flash, and just into its last page/sector."""
    base = device.memory_base
    last = device.facts.flash.sectors[-1].start
    return MemoryImage.from_segments(
        [(base, rng.randbytes(3000)), (base + last + 16, rng.randbytes(500))]
    )


@pytest.mark.parametrize("loader", ["1", "0"], ids=["flash-loader", "host-driven"])
@pytest.mark.parametrize("device_id", FAMILIES)
def test_each_family_programs_and_verifies(database, device_id: str, loader: str) -> None:
    """Through the flash loader the part's core runs from RAM (the default), and unit
    by unit from the host through the debug port (loader=0)."""
    fixture = Fixture(database, device_id, f"sim://?loader={loader}")
    image = image_for(fixture.device, random.Random(device_id))
    result = fixture.cycle(image)
    assert result.passed, result.message
    for segment in image.segments:
        offset = segment.start - fixture.device.memory_base
        assert bytes(fixture.flash[offset : offset + len(segment.data)]) == segment.data
    assert result.unique_id  # STM32 UID / nRF DEVICEID, for backups and the log
    assert not fixture.site.mcu.halted  # the part runs its new firmware


def test_only_the_pages_the_image_touches_are_erased(database) -> None:
    fixture = Fixture(database, "st.stm32f10x-md")  # 1 KiB pages
    first = MemoryImage.from_segments([(0x0800_0000, b"\xaa" * 4096)])  # pages 0-3
    assert fixture.cycle(first).passed
    second = MemoryImage.from_segments([(0x0800_0000, b"\x55" * 1500)])  # pages 0 and 1
    assert fixture.cycle(second).passed
    assert bytes(fixture.flash[:1500]) == b"\x55" * 1500
    assert bytes(fixture.flash[1500:2048]) == b"\xff" * 548  # erased with page 1
    assert bytes(fixture.flash[2048:4096]) == b"\xaa" * 2048  # pages 2-3 untouched


def test_a_protected_part_is_refused_unless_unprotect_and_then_mass_erased(database) -> None:
    fixture = Fixture(database, "st.stm32f40x-f41x", "sim://?fault=1:protected")
    image = MemoryImage.from_segments([(0x0800_0000, b"\x12\x34" * 512)])
    refused = fixture.cycle(image)
    assert not refused.passed and "enable 'unprotect'" in refused.message
    assert "readout protection level 1" in refused.message
    result = fixture.cycle(image, unprotect=True)
    assert result.passed, result.message
    # said before it happened
    assert "clearing protection: readout protection level 1" in fixture.logged()
    assert "mass-erases the flash" in fixture.logged()
    assert bytes(fixture.flash[:1024]) == b"\x12\x34" * 512


@pytest.mark.parametrize(
    "device_id",
    ["st.stm32f10x-md", "st.stm32f40x-f41x", "st.stm32l43x-l44x", "nordic.nrf52832-xxaa"],
)
def test_protect_sets_readout_protection_and_unprotect_clears_it(database, device_id) -> None:
    fixture = Fixture(database, device_id)
    image = image_for(fixture.device, random.Random(1))
    assert fixture.cycle(image, protect=True).passed
    again = fixture.cycle(image)
    assert not again.passed and "protection" in again.message
    cleared = fixture.cycle(image, unprotect=True)
    assert cleared.passed, cleared.message


def test_a_wrong_part_is_named_from_the_database(database) -> None:
    fixture = Fixture(database, "st.stm32f10x-md", "sim://?fault=1:wrong-id")
    result = fixture.cycle(MemoryImage.from_segments([(0x0800_0000, b"\x00" * 16)]))
    assert not result.passed
    assert "unexpected part: the ID register at 0xE0042000 reads" in result.message
    assert "STM32F10x medium-density" not in result.message.split("reads")[1].split(",")[0]


def test_no_target_is_an_absent_part(database) -> None:
    fixture = Fixture(database, "nordic.nrf52840", "sim://?fault=1:empty")
    result = fixture.cycle(MemoryImage.from_segments([(0, b"\x00" * 16)]))
    assert not result.passed and result.message.startswith("no part or bad contact")


def test_a_bit_that_does_not_program_fails_verify_at_its_address(database) -> None:
    fixture = Fixture(database, "st.stm32g07x-g08x", "sim://?fault=1:stuck-bit@0x100")
    result = fixture.cycle(MemoryImage.from_segments([(0x0800_0000, bytes(512))]))
    assert not result.passed and result.address == 0x0800_0100


def test_a_flash_controller_that_stays_busy_is_a_timeout_not_a_hang(database) -> None:
    fixture = Fixture(database, "st.stm32f030x8-f05x", "sim://?fault=1:busy-timeout")
    result = fixture.cycle(MemoryImage.from_segments([(0x0800_0000, bytes(64))]))
    assert not result.passed and "still busy" in result.message


def test_wait_storms_are_ridden_out(database) -> None:
    fixture = Fixture(database, "st.stm32f303x8-f334", "sim://?fault=1:flaky")
    image = image_for(fixture.device, random.Random(3))
    assert fixture.cycle(image).passed


def test_a_dropped_link_is_a_lost_link(database) -> None:
    fixture = Fixture(database, "st.stm32f40x-f41x", "sim://?fault=1:link-drop")
    image = MemoryImage.from_segments([(0x0800_0000, random.Random(2).randbytes(32768))])
    result = fixture.cycle(image)
    assert result.status == "link-lost", result.message


def test_firmware_that_turns_swd_off_needs_connect_under_reset(database) -> None:
    image = MemoryImage.from_segments([(0x0800_0000, b"\x42" * 256)])
    normal = Fixture(database, "st.stm32f10x-md", "sim://?fault=1:swd-off")
    assert not normal.cycle(image).passed
    under = Fixture(database, "st.stm32f10x-md", "sim://?fault=1:swd-off&connect=under-reset")
    result = under.cycle(image)
    assert result.passed, result.message


def test_an_swd_only_part_on_a_site_without_swd_says_what_to_use(database) -> None:
    device = database.get("nordic.nrf52840")
    programmer = open_programmer("sim://", device=database.get("winbond.w25q128jv"))
    station = Station(programmer, lambda _e: None)
    result = station.run(CycleSpec("program", device, MemoryImage.from_segments([(0, b"1")])))
    assert "use an SWD probe" in result.results[0].message


# -- through a real probe driver ------------------------------------------------------


@pytest.mark.parametrize("version", [1, 2], ids=["v1-hid", "v2-bulk"])
def test_the_cli_programs_an_stm32_through_a_cmsis_dap_probe(
    database, version, monkeypatch, tmp_path, capsys
) -> None:
    """`socketeer program --device st.stm32f10x-md --programmer cmsis-dap:// fw.hex`, as
    typed: the CMSIS-DAP driver at the USB packet level (tests/cmsis_dap_fake.py)
    wired to the simulated STM32F103, the algorithm end to end."""
    from cmsis_dap_fake import FakeDapProbe, FakeDapUsb
    from test_cmsis_dap import backend

    import app.hal.cmsis_dap_programmer as backend_module
    from app.cli import main
    from app.hal.sim.clock import SimClock, Timing
    from app.hal.sim.mcu_target import make_mcu
    from app.hal.sim.swd_sites import mcu_spec

    device = database.get("st.stm32f10x-md")
    mcu = make_mcu(mcu_spec(device), SimClock(Timing("instant")), Timing("instant"))
    usb = FakeDapUsb(FakeDapProbe("DAPLINK1", version, mcu))
    monkeypatch.setattr(backend_module, "pyusb_backend", lambda: backend(usb))
    data = random.Random(7).randbytes(12_000)
    image = tmp_path / "fw.bin"
    image.write_bytes(data)
    argv = ["program", "--device", "st.stm32f10x-md", "--programmer", "cmsis-dap://"]
    code = main([*argv, "--base", "0x08000000", "--no-backup", str(image)])
    out = capsys.readouterr().out
    assert code == 0 and "1 passed, 0 failed" in out, out
    assert bytes(mcu.flash[:12_000]) == data
    assert not mcu.halted  # reset and running its new firmware


def test_a_locked_nrf52_is_found_through_its_ctrl_ap_and_unlocked_by_eraseall(database) -> None:
    """APPROTECT closes the AHB-AP: the part is there (its CTRL-AP answers) but cannot
    be identified or read until the CTRL-AP's ERASEALL, which unprotect runs."""
    fixture = Fixture(database, "nordic.nrf52840", "sim://?fault=1:protected")
    image = MemoryImage.from_segments([(0x1000, b"\x5a" * 4096)])
    refused = fixture.cycle(image)
    assert not refused.passed and "APPROTECT" in refused.message
    assert refused.message.startswith("part is write-protected")
    result = fixture.cycle(image, unprotect=True)
    assert result.passed, result.message
    assert bytes(fixture.flash[0x1000:0x2000]) == b"\x5a" * 4096


SWD_PARTS = [d.id for d in load_database(use_overlay=False) if d.swd is not None]


@pytest.mark.parametrize("device_id", SWD_PARTS)
def test_every_swd_part_of_the_catalogue_programs_and_verifies(database, device_id) -> None:
    """Data in the first and the last page/sector of every part with SWD facts, then
    readout protection set: the part's ID, layout and controller all agree with the
    simulated part built from the same entry's facts and the manuals."""
    fixture = Fixture(database, device_id)
    image = image_for(fixture.device, random.Random(device_id))
    result = fixture.cycle(image, protect=True)
    assert result.passed, result.message
    assert fixture.site.mcu.protected


@pytest.mark.parametrize(
    "device_id",
    ["st.stm32f030x8-f05x", "st.stm32f40x-f41x", "st.stm32g07x-g08x", "nordic.nrf52832-xxaa"],
)
def test_the_cli_programs_each_kind_on_simulated_swd(device_id, tmp_path, capsys) -> None:
    """`socketeer program --device PART --programmer sim:// fw.hex`, as typed, with an
    Intel HEX file at the part's own addresses; then `socketeer verify` of the same file
    on the same kind of part fails (a fresh simulated part is blank), naming the address."""
    from app.cli import main
    from app.core.formats import save_image

    device = load_database(use_overlay=False).get(device_id)
    image = MemoryImage.from_bytes(random.Random(9).randbytes(10_000), device.memory_base)
    path = tmp_path / "fw.hex"
    save_image(image, path, "ihex")
    argv = ["program", "--device", device_id, "--programmer", "sim://", "--no-backup"]
    code = main([*argv, str(path)])
    out = capsys.readouterr().out
    assert code == 0 and "1 passed, 0 failed" in out, out
    code = main(["verify", "--device", device_id, "--programmer", "sim://", str(path)])
    out = capsys.readouterr().out
    assert code != 0 and f"0x{device.memory_base:X}" in out, out


@pytest.mark.parametrize(
    ("device_id", "bank_size"),
    [("st.stm32l47x-l48x", 512 * 1024), ("st.stm32g47x-g48x", 256 * 1024)],
)
def test_a_dual_bank_part_erases_the_page_in_the_right_bank(database, device_id, bank_size) -> None:
    """Page n of bank 2 is PNB n with BKER set: erasing it must leave page n of bank 1
    alone (RM0351 3.3.6, RM0440 3.3.7)."""
    fixture = Fixture(database, device_id)
    first = MemoryImage.from_segments([(0x0800_0000 + 2048, b"\x11" * 2048)])  # bank 1 page 1
    assert fixture.cycle(first).passed
    second = MemoryImage.from_segments([(0x0800_0000 + bank_size + 2048, b"\x22" * 2048)])
    result = fixture.cycle(second)
    assert result.passed, result.message
    assert bytes(fixture.flash[2048:4096]) == b"\x11" * 2048
    assert bytes(fixture.flash[bank_size + 2048 : bank_size + 4096]) == b"\x22" * 2048


def test_a_full_erase_of_a_dual_bank_part_erases_both_banks(database) -> None:
    fixture = Fixture(database, "st.stm32l47x-l48x")
    old = MemoryImage.from_segments([(0x0800_0000 + 0x80000, b"\x33" * 64)])  # bank 2
    assert fixture.cycle(old).passed
    result = fixture.cycle(
        MemoryImage.from_segments([(0x0800_0000, b"\x44" * 64)]), erase_mode="full"
    )
    assert result.passed, result.message
    assert bytes(fixture.flash[0x80000:0x80040]) == b"\xff" * 64  # MER1 | MER2


@pytest.mark.parametrize(
    ("device_id", "swd_id"),
    [
        ("st.stm32f10x-md", "E0042000:410"),
        ("st.stm32g07x-g08x", "40015800:460"),
        ("nordic.nrf52840", "10000100:52840"),
        ("nordic.nrf51822-xxab", "1000005C:26"),
    ],
)
def test_detect_names_the_part_on_an_swd_site(device_id, swd_id, capsys) -> None:
    """`socketeer detect` on a board: the ID register that holds a known part, named
    from the database, the part left running (nothing halted or written)."""
    import json

    from app.cli import main

    url = f"sim://?sites=2&chip={device_id}&fault=2:protected"
    code = main(["detect", "--programmer", url, "--json"])
    sites = json.loads(capsys.readouterr().out)["sites"]
    assert sites[0]["swd_id"] == swd_id and device_id in sites[0]["candidates"]
    if device_id.startswith("nordic.nrf52"):  # APPROTECT hides FICR: present, unnamed
        assert "readout protection" in sites[1]["summary"]
    else:  # RDP hides the flash, not DBGMCU or FICR
        assert sites[1]["swd_id"] == swd_id
    assert code == 0 and sites[1]["present"]  # a part answered on every site


@pytest.mark.parametrize(
    ("device_id", "register", "bits"),
    [
        ("st.stm32f030x8-f05x", 0x4001_5808, 0x1800),  # behind RCC's DBGMCUEN
        ("st.stm32f10x-md", 0xE004_2004, 0x300),
        ("st.stm32f40x-f41x", 0xE004_2008, 0x1800),
        ("st.stm32g07x-g08x", 0x4001_5808, 0x1800),  # behind RCC's DBGEN
    ],
)
def test_the_watchdogs_are_frozen_while_the_core_is_halted(database, device_id, register, bits):
    """A watchdog the firmware started must not reset the part while it is programmed:
    the DBGMCU freeze bits are set once the part is halted and identified."""
    fixture = Fixture(database, device_id)
    assert fixture.cycle(None, action="identify").passed
    assert fixture.site.swd.read_words(register, 1)[0] & bits == bits


@pytest.mark.parametrize("loader", ["1", "0"], ids=["flash-loader", "host-driven"])
@pytest.mark.parametrize(
    ("device_id", "flag"),
    [
        ("st.stm32f10x-md", "PGERR"),
        ("st.stm32l43x-l44x", "PROGERR"),  # F2/F4 have no such flag: verify finds it
    ],
)
def test_programming_over_data_without_erase_names_the_unit_and_flag(
    database, device_id, flag, loader
) -> None:
    """erase=none over a part holding other data: the controller refuses the first unit
    (a programming-error flag), the run stops there and the message names both."""
    fixture = Fixture(database, device_id, f"sim://?loader={loader}")
    assert fixture.cycle(MemoryImage.from_segments([(0x0800_0000, b"\x00" * 64)])).passed
    result = fixture.cycle(
        MemoryImage.from_segments([(0x0800_0000, b"\x5a" * 64)]), erase_mode="none", verify=False
    )
    assert not result.passed
    assert "programming 0x08000000 failed" in result.message and flag in result.message, (
        result.message
    )


def test_the_flash_loader_moves_the_data_once(database) -> None:
    """With the loader a KiB costs its 256 data words and a little more on the wire
    (code, registers, polls), against some 1,000 transactions from the host."""
    counts = {}
    for loader in ("1", "0"):
        fixture = Fixture(database, "st.stm32f40x-f41x", f"sim://?loader={loader}")
        image = MemoryImage.from_segments([(0x0800_0000, random.Random(5).randbytes(16384))])
        before = fixture.site.link.packets - fixture.site.link.waits
        assert fixture.cycle(image, erase_mode="none", verify=False).passed  # a blank part
        counts[loader] = fixture.site.link.packets - fixture.site.link.waits - before
    assert 16 * 256 < counts["1"] < 16 * 300 and counts["0"] > 16 * 1000


def test_the_flash_loader_programs_while_the_next_buffer_travels(database, monkeypatch) -> None:
    """Double buffering, in the part's virtual time (typical flash times, SWD at 4 MHz):
    64 KiB into an STM32F407, whose flash (16 us a word) is about as fast as the wire,
    takes well under the wire's time plus the flash's, as it would done one after the
    other (deterministic: the clock moves only with packets and the host's pauses)."""
    from types import SimpleNamespace

    from app.algorithms import flash_loader
    from app.algorithms.cortex_m_swd import CortexMSwd
    from app.hal.debug_port import DebugPort
    from app.hal.sim.clock import SimClock, Timing
    from app.hal.sim.mcu_target import make_mcu
    from app.hal.sim.swd_sites import mcu_spec
    from app.hal.swd import PacketLink
    from app.hal.swd_site import SwdBus, SwdSiteOptions

    device = database.get("st.stm32f40x-f41x")
    clock = SimClock(Timing())  # virtual: never sleeps; the part takes typical times
    mcu = make_mcu(mcu_spec(device), clock, Timing("typ"), swd_hz=4_000_000)
    monkeypatch.setattr(
        flash_loader, "time", SimpleNamespace(sleep=clock.advance, monotonic=clock.now)
    )
    options = SwdSiteOptions(4_000_000, False, True, True, True)
    algo = CortexMSwd(SwdBus(DebugPort(PacketLink(mcu)), options), device)
    assert algo.identify().present
    data = random.Random(8).randbytes(65536)
    start = clock.now()
    algo.program(
        [(offset, data[offset : offset + 1024]) for offset in range(0, 65536, 1024)],
        lambda _n: None,
    )
    took = clock.now() - start
    wire = 65536 / 4 * 48 / 4_000_000  # every data word's packet at 4 MHz
    flash = 65536 / 4 * 16e-6  # tPROG x32, typical
    assert bytes(mcu.flash[:65536]) == data
    assert max(wire, flash) < took < 0.8 * (wire + flash)
