"""CH341A programmers (the black and blue USB boards, WCH 1a86:5512): SPI and I2C.

URLs:

    ch341a://                    the only CH341A connected
    ch341a://1:7                 the one at USB bus 1, address 7 (decimal, as lsusb prints)
    ch341a://SERIAL              the one with this USB serial number (few boards have one)
    ch341a://*                   every CH341A connected: one site each, in bus:address order
    ch341a://1:7 ; ch341a://1:9  two boards as sites 1 and 2 (a station URL)

Options:
- ``i2c=1``: the board's I2C pins (the 24xx rows of its socket) are the bus (default: I2C
  for I2C parts, else SPI).
- ``clock=HZ``: the I2C clock, one the chip offers: 20k, 100k, 400k (default) or 750k
  (at most the part's maximum). The SPI clock is fixed (app.hal.ch341a_spi).
- ``vcc=MV``: the voltage the board drives its lines at. The common black board runs the
  CH341A at 5 V, so its outputs are 5 V even where the socket is fed 3.3 V; but many
  boards are modified and many users plug a 1.8/3.3 V adapter in, which Socketeer cannot
  see. Without ``vcc=`` the station warns before a run with a part rated below 5 V
  (``Capabilities.unstated_drive_mv``); with it, parts whose maximum voltage is below it
  are refused before power is applied, as on the FTDI backend.
- ``connection=socket|in-system`` (default socket), ``power=programmer|board``.

Most boards have no USB serial number, so a board is bound by its USB bus:address path,
which changes when it is re-plugged: ``reconnect()`` finds it again by serial number when
it has one, else at the same bus:address, else (a URL that named no board, one site) as
the only CH341A connected. The board has no switched supply, socket detect or LEDs: the
part is powered while the board is plugged in, and power(False) only releases the SPI
lines.

pyusb is reached through a ``Ch341Backend`` (app.hal.ch341a_usb);
``open_programmer(url, ch341a_backend=...)`` swaps it, which is how the tests run this
module against chip models at the USB packet level (tests/ch341a_fake.py).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field

from app.devicedb.families import Family
from app.devicedb.models import Device
from app.hal.ch341a_i2c import SPEEDS, Ch341I2cBus, speed_packet
from app.hal.ch341a_spi import CLOCK_HZ, Ch341SpiBus, pins_packet
from app.hal.ch341a_usb import Ch341Backend, Ch341Device, Ch341Handle, pyusb_backend
from app.hal.errors import HalError, LinkError, ProgrammerUrlError
from app.hal.ftdi_usb import udev_fix
from app.hal.programmer import (
    Capabilities,
    Indication,
    ParsedUrl,
    check_options,
    choice,
    connection_options,
    int_option,
    register_scheme,
)

log = logging.getLogger(__name__)

KNOWN_OPTIONS = {"i2c", "clock", "vcc", "connection", "power"}
DEFAULT_I2C_HZ = 400_000
#: what the common black board drives its lines at, unmodified
BLACK_BOARD_MV = 5000
_LOCATION = re.compile(r"(\d{1,3}):(\d{1,3})")


@dataclass(frozen=True)
class SiteSettings:
    bus: str  # "spi" or "i2c"
    i2c_hz: int
    vcc_mv: int | None  # None: not stated (the board may drive 5 V)
    in_system: bool
    board_powered: bool


def _settings(parsed: ParsedUrl, context: Mapping[str, object]) -> SiteSettings:
    device = context.get("device")
    part = device if isinstance(device, Device) else None
    default_bus = "1" if part is not None and part.family is Family.I2C_EEPROM else "0"
    i2c = choice(parsed, "i2c", default_bus, ("0", "1")) == "1"
    text = parsed.options.get("clock", "").strip().lower()
    if text:
        match = re.fullmatch(r"([0-9]+)(k?)", text)
        hz = int(match.group(1)) * (1000 if match.group(2) else 1) if match else 0
        if hz not in SPEEDS:
            offered = ", ".join(f"{s // 1000}k" for s in SPEEDS)
            raise ProgrammerUrlError(
                f"ch341a option clock={parsed.options['clock']!r}: the CH341A's I2C clocks"
                f" are {offered}"
            )
    else:
        hz = DEFAULT_I2C_HZ
    part_max = (part.max_clock_hz if part is not None else None) or hz
    i2c_hz = max([s for s in SPEEDS if s <= min(hz, part_max)], default=min(SPEEDS))
    in_system, board_powered = connection_options(parsed, in_system=False, board_powered=False)
    return SiteSettings(
        bus="i2c" if i2c else "spi",
        i2c_hz=i2c_hz,
        vcc_mv=int_option(parsed, "vcc", 0, 1000, 5500) if "vcc" in parsed.options else None,
        in_system=in_system,
        board_powered=board_powered,
    )


class Ch341Site:
    """One CH341A board: its SPI or I2C bus. Every USB access goes through :meth:`io`,
    which serialises access and turns USB errors into LinkError with ``link_lost`` set."""

    uart = None
    microwire = None  # the SPI stream clocks whole bytes only
    adapter_id: str | None = None
    insertions = 0  # no socket sensing

    def __init__(
        self,
        backend: Ch341Backend,
        device: Ch341Device,
        index: int,
        settings: SiteSettings,
        *,
        only_board: bool,
    ) -> None:
        self.index = index
        self.backend = backend
        self.device = device
        self.settings = settings
        self.in_system = settings.in_system
        self.board_powered = settings.board_powered
        self.link_lost = False
        self.sleep = backend.sleep
        self.now = backend.now
        self.handle: Ch341Handle | None = None
        self._only_board = only_board  # the URL named no board: any one CH341A will do
        self._lock = threading.RLock()
        self.spi: Ch341SpiBus | None = None
        self.i2c: Ch341I2cBus | None = None
        if settings.bus == "spi":
            self.spi = Ch341SpiBus(self)
        else:
            self.i2c = Ch341I2cBus(self, clock_hz=settings.i2c_hz)

    @property
    def name(self) -> str:
        return f"CH341A {self.device.serial or self.device.location}"

    def open(self) -> None:
        self.handle = self.backend.open(self.device)
        # the stream speed (I2C clock; SPI single data line, as flashrom sets it)
        self.handle.write(speed_packet(self.settings.i2c_hz))

    def close(self) -> None:
        with self._lock:
            handle, self.handle = self.handle, None
            if handle is not None:
                with suppress(Exception):  # a board that is gone cannot be closed cleanly
                    handle.close()

    def reconnect(self) -> bool:
        with self._lock:
            self.close()
            try:
                devices = self.backend.find_devices()
            except HalError as err:
                log.warning("site %s: reconnect: %s", self.index, err)
                return False
            again = self._same_board(devices)
            if again is None or not again.accessible:
                return False
            self.device, self.link_lost = again, False
            try:
                self.open()
            except self.backend.link_errors as err:
                log.warning("site %s: reconnect to %s failed: %s", self.index, self.name, err)
                self.close()
                self.link_lost = True
                return False
            return True

    def _same_board(self, devices: list[Ch341Device]) -> Ch341Device | None:
        old = self.device
        for dev in devices:
            if old.serial and dev.serial == old.serial:
                return dev
            if not old.serial and dev.location == old.location:
                return dev
        if self._only_board and len(devices) == 1:
            return devices[0]
        return None

    @contextmanager
    def io(self, what: str) -> Iterator[Ch341Handle]:
        with self._lock:
            if self.link_lost or self.handle is None:
                raise LinkError(f"{self.name} is disconnected")
            try:
                yield self.handle
            except HalError as err:
                if isinstance(err, LinkError):  # a short answer: the stream is out of step
                    self.link_lost = True
                raise
            except self.backend.link_errors as err:
                self.link_lost = True
                raise LinkError(f"USB link to {self.name} lost during {what}: {err}") from None

    def power(self, on: bool, voltage_mv: int | None = None) -> None:
        if not on and (self.link_lost or self.handle is None):
            return
        vcc = self.settings.vcc_mv
        if on and vcc is not None and voltage_mv is not None and voltage_mv < vcc:
            raise HalError(
                f"site {self.index}: the CH341A drives its lines at {vcc / 1000:g} V (vcc"
                f" option) but the part allows at most {voltage_mv / 1000:g} V: use a 1.8 V or"
                " 3.3 V adapter (or a board modified to run the CH341A at 3.3 V) and set vcc="
                " to its voltage"
            )
        if self.spi is None:
            return
        with self.io("switching the SPI lines") as handle:
            handle.write(pins_packet(on))
        if on:
            self.spi.poller.reset()  # maybe another part: busy times learned anew

    def part_present(self) -> bool:
        return True

    def indicate(self, state: Indication) -> None:
        return None  # no LEDs to drive


@dataclass
class Ch341Programmer:
    url: str
    name: str
    capabilities: Capabilities
    _sites: list[Ch341Site] = field(default_factory=list)

    @property
    def sites(self) -> list[Ch341Site]:
        return list(self._sites)

    def close(self) -> None:
        for site in self._sites:
            with suppress(HalError):
                site.power(False)
            site.close()


def _select(path: str, devices: list[Ch341Device]) -> list[Ch341Device]:
    shown = f"ch341a://{path}"
    devices = sorted(devices, key=lambda d: (d.bus, d.address))
    if path == "*":
        chosen = devices
    elif not path:
        if len(devices) > 1:
            where = " or ".join(f"ch341a://{d.serial or d.location}" for d in devices)
            raise ProgrammerUrlError(
                f"{len(devices)} CH341A boards are connected: name one ({where}) or use"
                " ch341a://* for all of them"
            )
        chosen = devices
    elif match := _LOCATION.fullmatch(path):
        location = f"{int(match[1])}:{int(match[2])}"  # "001:007" as lsusb prints it too
        chosen = [d for d in devices if d.location == location]
    else:
        chosen = [d for d in devices if d.serial == path]
    if not chosen:
        seen = ", ".join(d.serial or d.location for d in devices) or "none"
        raise HalError(f"no CH341A matches {shown} (connected CH341A boards: {seen})")
    for dev in chosen:
        if not dev.accessible:
            raise HalError(
                f"CH341A at {dev.location} is not accessible ({dev.error}): install"
                f" Socketeer's udev rules ({udev_fix()}) and re-plug it"
            )
    return chosen


@register_scheme("ch341a")
def open_ch341a(parsed: ParsedUrl, context: Mapping[str, object]) -> Ch341Programmer:
    check_options(parsed, KNOWN_OPTIONS)
    path = parsed.path.strip("/")
    if path and path != "*" and not _LOCATION.fullmatch(path) and not path.isalnum():
        raise ProgrammerUrlError(
            f"ch341a://{path}: name a board by BUS:ADDRESS (e.g. ch341a://1:7), by serial"
            " number, or * for every board"
        )
    # the options are checked before touching USB, so a bad URL says so without a board
    settings = _settings(parsed, context)
    given = context.get("ch341a_backend")  # tests swap pyusb for a packet-level fake
    backend = given if isinstance(given, Ch341Backend) else pyusb_backend()
    devices = _select(path, backend.find_devices())
    sites = [
        Ch341Site(backend, dev, n, settings, only_board=not path)
        for n, dev in enumerate(devices, 1)
    ]
    opened: list[Ch341Site] = []
    try:
        for site in sites:
            try:
                site.open()
            except backend.link_errors as err:
                raise HalError(
                    f"cannot open {site.name}: {err} (permissions: {udev_fix()};"
                    " `socketeer hw diagnose` checks the setup)"
                ) from None
            opened.append(site)
    except BaseException:
        for site in opened:
            site.close()
        raise
    where = path or (devices[0].serial or devices[0].location)
    return Ch341Programmer(
        url=f"ch341a://{where}",
        name=f"CH341A {', '.join(s.device.serial or s.device.location for s in sites)}",
        capabilities=Capabilities(
            buses=frozenset({settings.bus}),
            max_spi_clock_hz=CLOCK_HZ if settings.bus == "spi" else 0,
            unstated_drive_mv=BLACK_BOARD_MV if settings.vcc_mv is None else None,
        ),
        _sites=sites,
    )


__all__ = ["Ch341Programmer", "Ch341Site", "open_ch341a"]
