"""Every backend's sites and programmers are what app.hal's protocols declare: the engine
and the front ends use the declared members only, so a backend that leaves one out (or
gives it the wrong type) must fail here, not in a cycle on the production line."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from ch341a_fake import FakeCh341Usb  # tests/ is on sys.path (rootdir conftest)
from ch347_fake import CH347F, FakeCh347Usb
from ftdi_fake import FakeUsb
from serprog_emulator import SerprogEmulator, make_chip

from app.core.image import MemoryImage
from app.engine.site_runner import CycleSpec
from app.engine.station import Station
from app.hal.bus import BootloaderLink, DebugAccess, I2cBus, MicrowireBus, SpiBus
from app.hal.programmer import Programmer, Site, open_programmer
from app.hal.sim.programmer import SimSite
from app.hal.station_programmer import StationSite

#: every data member of Site and the types its value may have
SITE_MEMBERS: dict[str, tuple[type, ...]] = {
    "index": (int,),
    "adapter_id": (str, type(None)),
    "spi": (SpiBus, type(None)),
    "i2c": (I2cBus, type(None)),
    "uart": (BootloaderLink, type(None)),
    "microwire": (MicrowireBus, type(None)),
    "swd": (DebugAccess, type(None)),
    "in_system": (bool,),
    "board_powered": (bool,),
    "link_lost": (bool,),
    "insertions": (int,),
}
SITE_METHODS = {"power", "part_present", "indicate", "reconnect"}


def declared(protocol: type) -> set[str]:
    return {name for name in vars(protocol) if not name.startswith("_")}


def check(programmer: Programmer) -> list[Site]:
    """Assert ``programmer`` and each of its sites conform; returns the sites."""
    assert isinstance(programmer, Programmer)
    assert isinstance(programmer.url, str) and isinstance(programmer.name, str)
    sites = list(programmer.sites)
    assert sites and [site.index for site in sites] == sorted({site.index for site in sites})
    for site in sites:
        assert isinstance(site, Site), type(site).__name__
        for name, types in SITE_MEMBERS.items():
            value = getattr(site, name)
            assert isinstance(value, types), f"{type(site).__name__}.{name} = {value!r}"
        spi_pins = site.spi or site.microwire  # an FTDI SPI site offers both on its pins
        assert sum(bus is not None for bus in (spi_pins, site.i2c, site.uart, site.swd)) == 1
    return sites


def test_the_tables_here_list_every_declared_member() -> None:
    assert declared(Site) == set(SITE_MEMBERS) | SITE_METHODS
    assert declared(Programmer) == {"url", "name", "capabilities", "sites", "close"}


# -- every backend --------------------------------------------------------------------


def test_sim_sites(database) -> None:
    device = database.get("winbond.w25q128jv")
    programmer = open_programmer("sim://?sites=2", device=device, database=database)
    sites = check(programmer)
    assert all(type(site) is SimSite and isinstance(site.spi, SpiBus) for site in sites)
    microwire = open_programmer("sim://", device=database.get("st.m93c46-x8"), database=database)
    (site,) = check(microwire)
    assert isinstance(site.microwire, MicrowireBus) and site.spi is None
    eeprom = database.get("microchip.24lc256")
    (site,) = check(open_programmer("sim://?sites=1", device=eeprom, database=database))
    assert isinstance(site.i2c, I2cBus) and site.spi is None


def test_ftdi_sites(database) -> None:
    usb = FakeUsb()
    usb.add("FT2SITES", "2232h")
    url = "ftdi://ftdi:2232h:FT2SITES/*"
    programmer = open_programmer(url, ftdi_backend=usb.backend())
    try:
        sites = check(programmer)
        assert len(sites) == 2 and all(isinstance(site.spi, SpiBus) for site in sites)
        assert all(site.insertions == 0 for site in sites)  # a detect pin counts nothing
    finally:
        programmer.close()
    i2c = open_programmer(url + "?i2c=1", ftdi_backend=usb.backend())
    try:
        assert all(isinstance(site.i2c, I2cBus) for site in check(i2c))
    finally:
        i2c.close()


def test_ch341a_sites() -> None:
    usb = FakeCh341Usb()
    usb.add(address=5)
    usb.add(address=6)
    programmer = open_programmer("ch341a://*", ch341a_backend=usb.backend())
    try:
        sites = check(programmer)
        assert len(sites) == 2 and all(isinstance(site.spi, SpiBus) for site in sites)
    finally:
        programmer.close()
    i2c = open_programmer("ch341a://1:6?i2c=1", ch341a_backend=usb.backend())
    try:
        assert all(isinstance(site.i2c, I2cBus) for site in check(i2c))
    finally:
        i2c.close()


def test_ch347_sites() -> None:
    usb = FakeCh347Usb()
    usb.add(address=5)
    usb.add(address=6, product=CH347F)
    programmer = open_programmer("ch347://*", ch347_backend=usb.backend())
    try:
        sites = check(programmer)
        assert len(sites) == 2 and all(isinstance(site.spi, SpiBus) for site in sites)
    finally:
        programmer.close()
    i2c = open_programmer("ch347://1:6?i2c=1", ch347_backend=usb.backend())
    try:
        assert all(isinstance(site.i2c, I2cBus) for site in check(i2c))
    finally:
        i2c.close()


def test_serprog_site(tmp_path: Path) -> None:
    emu = SerprogEmulator(make_chip(), link=tmp_path / "ttyACM0")
    emu.plug()
    try:
        programmer = open_programmer(f"serprog://{emu.path}")
        try:
            (site,) = check(programmer)
            assert isinstance(site.spi, SpiBus) and site.in_system and site.insertions == 0
        finally:
            programmer.close()
    finally:
        emu.unplug()


@pytest.fixture
def pty_path() -> Iterator[str]:
    if not hasattr(os, "openpty"):
        pytest.skip("POSIX pseudo-terminals")
    master, slave = os.openpty()
    try:
        yield os.ttyname(slave)
    finally:
        os.close(master)
        os.close(slave)


def test_uart_site(pty_path: str) -> None:
    programmer = open_programmer(f"uart://{pty_path}?parity=none")
    try:
        (site,) = check(programmer)
        link = site.uart
        assert isinstance(link, BootloaderLink) and link.port_name == pty_path
        assert not link.has_reset  # a pty has no modem lines: declared, not probed
        assert link.baud == link.nominal_baud == 115200
    finally:
        programmer.close()


def test_station_sites_forward_every_member(database) -> None:
    device = database.get("winbond.w25q128jv")
    url = "sim://?sites=1&adapter=SOIC8 ; sim://?sites=2&fault=2:link-drop"
    programmer = open_programmer(url, device=device, database=database)
    sites = check(programmer)
    assert all(type(site) is StationSite for site in sites)
    assert [site.index for site in sites] == [1, 2, 3]
    for site in sites:
        assert isinstance(site, StationSite)
        board = site.board_site
        for name in SITE_MEMBERS.keys() - {"index"}:
            assert getattr(site, name) is getattr(board, name), name
    assert sites[0].adapter_id == "SOIC8" and sites[1].adapter_id == "sim-universal"

    station = Station(programmer, lambda _event: None)
    image = MemoryImage.from_bytes(bytes(range(256)) * 256, 0)
    results = station.run(CycleSpec("program", device, image)).results
    assert [r.status for r in results] == ["pass", "pass", "link-lost"]
    assert sites[2].link_lost and not sites[2].reconnect()  # a dropped sim link stays down
    assert not sites[1].link_lost and sites[1].reconnect()
    again = station.run(CycleSpec("identify", device), [3]).results[0]
    assert again.status == "link-lost" and again.failed_step == "socket"


# -- insertions -----------------------------------------------------------------------


def wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_sim_insertions_count_handler_swaps(database) -> None:
    device = database.get("winbond.w25q128jv")
    url = "sim://?sites=2&handler=0.01&fault=2:empty"
    programmer = open_programmer(url, device=device, database=database)
    site, empty = check(programmer)
    assert site.insertions == 0 and site.part_present()  # the first part is not counted
    for swaps in (1, 2):
        site.indicate("pass" if swaps == 1 else "fail")  # the handler takes the part away
        wait_for(lambda swaps=swaps: site.insertions == swaps and site.part_present())
    site.indicate("busy")
    assert site.insertions == 2  # only a result makes the handler swap the part
    empty.indicate("pass")
    time.sleep(0.05)  # the handler's swap time twice over
    assert empty.insertions == 0  # no part ever reaches this socket's contacts


def test_sim_insertions_count_parts_put_in_by_hand(database) -> None:
    device = database.get("microchip.24lc256")
    (site,) = check(open_programmer("sim://?sites=1", device=device, database=database))
    assert isinstance(site, SimSite)
    site.insert_part(True)  # already there: not an insertion
    site.insert_part(False)
    assert not site.part_present() and site.chip is None and site.insertions == 0
    site.insert_part(True)
    assert site.part_present() and site.chip is not None and site.insertions == 1
    assert site.i2c is not None and site.i2c.chip is site.chip  # on the site's own bus


def test_every_backend_is_in_the_scheme_table_and_registers_its_scheme() -> None:
    """open_programmer imports a backend only when its scheme is used; a backend file
    missing from BACKENDS would be unreachable."""
    import importlib
    import re
    from pathlib import Path

    from app.hal import programmer

    hal = Path(programmer.__file__).parent
    declared = {
        match.group(1): path
        for path in hal.rglob("*.py")
        for match in re.finditer(r'@register_scheme\("([a-z0-9-]+)"\)', path.read_text())
    }
    assert set(declared) == set(programmer.BACKENDS), declared
    for scheme, module in programmer.BACKENDS.items():
        importlib.import_module(module)
        assert scheme in programmer._SCHEMES


def test_swd_sites(database) -> None:
    """The simulator's SWD sites and both probe backends (at their USB packet level)."""
    from cmsis_dap_fake import FakeDapProbe, FakeDapUsb
    from stlink_fake import FakeStlinkUsb
    from test_cmsis_dap import backend as dap_backend

    from app.hal.sim.swd_target import SimSwdTarget

    device = database.get("st.stm32f10x-md")
    sim = open_programmer("sim://?sites=2", device=device, database=database)
    assert all(isinstance(site.swd, DebugAccess) for site in check(sim))
    dap = FakeDapUsb(FakeDapProbe("DAP1", 2, SimSwdTarget()))
    probe = open_programmer("cmsis-dap://", cmsis_dap_backend=dap_backend(dap))
    try:
        assert all(isinstance(site.swd, DebugAccess) for site in check(probe))
    finally:
        probe.close()
    usb = FakeStlinkUsb()
    usb.add(SimSwdTarget(), "V3")
    stlink = open_programmer("stlink://", stlink_backend=usb.backend())
    try:
        assert all(isinstance(site.swd, DebugAccess) for site in check(stlink))
    finally:
        stlink.close()
