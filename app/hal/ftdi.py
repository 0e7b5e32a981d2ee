"""FTDI MPSSE programmers (FT232H, FT2232H, FT4232H) through pyftdi.

URLs are pyftdi's own, with Socketeer's options in the query:

    ftdi://ftdi:232h/1                      the only FT232H, interface 1
    ftdi://ftdi:2232h:FT4ABCDE/2            that FT2232H's interface B
    ftdi://ftdi:2232h:FT4ABCDE/*            every MPSSE interface (A and B): two sites
    ftdi://ftdi:232h/1?clock=10000000&pins=standard

Options:
- ``clock=HZ``: SPI clock cap (default and maximum 30 MHz; the part's own maximum also
  applies); with ``i2c=1`` the I2C clock (default 400 kHz, at most 1 MHz).
- ``pins=NAME`` or ``pins=power=D4,detect=D5,pass=D6,fail=D7``: see ftdi_pins.
- ``i2c=1``: the interface is an I2C master (default: I2C for I2C parts, else SPI).
- ``swd=1``: the interface is an SWD probe (app.hal.ftdi_swd; SWCLK = ADBUS0, SWDIO =
  ADBUS2 and, through ~470 ohm, ADBUS1); then ``clock=`` is SWCLK (default 4 MHz),
  ``nrst=PIN`` names the GPIO wired to the target's NRST (e.g. ``nrst=D4``, driven open
  drain) and ``connect=normal|under-reset`` says whether to hold NRST while attaching;
  ``connection`` and ``power`` default to in-system and board-powered.
- ``connection=socket|in-system`` (default socket), ``power=programmer|board``.
- ``latency=MS``: USB latency timer, 1-255 (default 2).
- ``sites=all``: same as ``/*``.
- ``vcc=MV``: the site's I/O (and switched supply) voltage, default 3300; parts whose
  maximum voltage is lower are refused before power is applied.

A SPI site also offers the Microwire bus of 93xx EEPROMs on the same pins (SK = ADBUS0,
DI = ADBUS1, DO = ADBUS2, CS = ADBUS3, CS active high), clocked bit by bit
(app.hal.ftdi_microwire).

Sites are numbered by interface (A = 1, B = 2) and bound to the board's USB serial
number: ``reconnect()`` finds the board again by serial, so a re-plugged board keeps
its site numbers. FT4232H interfaces C and D have no MPSSE and are never sites.

pyftdi is reached through an ``FtdiBackend`` (the controller classes, device
enumeration, sleep and clock); ``open_programmer(url, ftdi_backend=...)`` swaps it,
which is how the tests run this module against chip models (tests/ftdi_fake.py).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from app.devicedb.families import Family
from app.devicedb.models import Device
from app.hal.bus import DebugAccess
from app.hal.debug_port import DebugPort
from app.hal.errors import HalError, I2cNack, LinkError, ProgrammerUrlError
from app.hal.ftdi_i2c import FtdiI2cBus
from app.hal.ftdi_microwire import FtdiMicrowireBus
from app.hal.ftdi_pins import Pin, PinMap, parse_pin, parse_pin_map
from app.hal.ftdi_spi import MAX_CLOCK_HZ, SPI_DIRECTION, FtdiSpiBus, Mpsse
from app.hal.ftdi_swd import FtdiSwdLink, FtdiSwdWire
from app.hal.ftdi_usb import (
    FTDI_VID,
    PRODUCT_ALIASES,
    PRODUCTS,
    FtdiProduct,
    UsbDeviceInfo,
    access_error,
    enumerate_ftdi,
    locator,
    product_for,
    udev_fix,
)
from app.hal.programmer import (
    Capabilities,
    Indication,
    ParsedUrl,
    check_options,
    choice,
    connection_options,
    register_scheme,
)
from app.hal.swd_site import DEFAULT_CLOCK_HZ as DEFAULT_SWD_HZ
from app.hal.swd_site import SwdBus, SwdSiteOptions

log = logging.getLogger(__name__)

KNOWN_OPTIONS = {
    "clock",
    "pins",
    "i2c",
    "swd",
    "nrst",
    "connect",
    "loader",
    "connection",
    "power",
    "latency",
    "sites",
    "vcc",
}
SWD_ONLY_OPTIONS = ("nrst", "connect", "loader")
DEFAULT_LATENCY_MS = 2  # flashrom's and iceprog's choice; 1 ms is allowed via latency=1
DEFAULT_I2C_HZ = 400_000
MAX_I2C_HZ = 1_000_000
POWER_SETTLE_S = 0.01


# -- the pyftdi seam ----------------------------------------------------------------


@dataclass(frozen=True)
class FtdiBackend:
    """Everything this module takes from pyftdi (and the host), so tests can swap it."""

    spi_controller: Callable[[], Any]  # -> pyftdi.spi.SpiController(cs_count=1)
    i2c_controller: Callable[[], Any]  # -> pyftdi.i2c.I2cController()
    find_devices: Callable[[], list[UsbDeviceInfo]]
    #: errors that mean the USB link failed (-> LinkError, site.link_lost)
    link_errors: tuple[type[BaseException], ...]
    #: pyftdi's I2C NACK error (-> I2cNack)
    nack_errors: tuple[type[BaseException], ...] = ()
    sleep: Callable[[float], None] = time.sleep
    now: Callable[[], float] = time.monotonic


def pyftdi_backend() -> FtdiBackend:
    """The real thing; pyftdi is imported only when an ftdi:// URL is opened."""
    from pyftdi.ftdi import FtdiError
    from pyftdi.i2c import I2cController, I2cIOError, I2cNackError, I2cTimeoutError
    from pyftdi.spi import SpiController
    from pyftdi.usbtools import UsbTools
    from usb.core import USBError

    def find_devices() -> list[UsbDeviceInfo]:
        devices = enumerate_ftdi()
        UsbTools.flush_cache()  # a re-plugged board has a new USB address
        return devices

    return FtdiBackend(
        spi_controller=lambda: SpiController(cs_count=1),
        i2c_controller=I2cController,
        find_devices=find_devices,
        # I2cNackError is an I2cIOError: io() checks nack_errors first.
        link_errors=(FtdiError, USBError, I2cIOError, I2cTimeoutError),
        nack_errors=(I2cNackError,),
    )


# -- URL ----------------------------------------------------------------------------


@dataclass(frozen=True)
class FtdiUrl:
    product: FtdiProduct | None
    serial: str | None
    index: int | None  # 0-based, pyftdi semantics (1 and 0 both mean the first)
    bus_address: tuple[int, int] | None
    interfaces: tuple[int, ...] | None  # None = every MPSSE interface


def parse_ftdi_path(path: str, all_sites: bool = False) -> FtdiUrl:
    """Split ``vendor:product:serial/interface`` (pyftdi's URL scheme)."""
    shown = f"ftdi://{path}"
    selector, slash, iface = path.rpartition("/")
    if not slash:
        raise ProgrammerUrlError(
            f"{shown}: no interface; end the URL with /1 (or /* for every MPSSE interface),"
            " e.g. ftdi://ftdi:232h/1"
        )
    parts = selector.strip("/").split(":") if selector.strip("/") else []
    vendor = parts[0].lower() if parts else ""
    if vendor not in ("", "ftdi") and _int(vendor) != FTDI_VID:
        raise ProgrammerUrlError(f"{shown}: vendor {parts[0]!r} is not FTDI (use ftdi or 0x403)")
    product = None
    if len(parts) > 1 and parts[1]:
        name = parts[1].lower()
        pid = PRODUCT_ALIASES.get(name.removeprefix("ft"), PRODUCT_ALIASES.get(name))
        if pid is None:
            pid = _int(name)
        if pid is None or pid not in PRODUCTS:
            known = "232h, 2232h, 4232h, 4232ha, 4232hp or a hex product id"
            raise ProgrammerUrlError(f"{shown}: unknown FTDI product {parts[1]!r} ({known})")
        product = PRODUCTS[pid]
        if not product.mpsse_interfaces:
            raise ProgrammerUrlError(
                f"{shown}: an {product.name} has no MPSSE engine; SPI and I2C need an"
                " FT232H, FT2232H or FT4232H"
            )
    serial = index = bus_address = None
    rest = parts[2:]
    if len(rest) >= 2:
        bus, address = _int(rest[0], 16), _int(rest[1], 16)
        if bus is None or address is None:
            raise ProgrammerUrlError(f"{shown}: bad bus:address {':'.join(rest)!r} (hex)")
        bus_address = (bus, address)
    elif rest and rest[0]:
        if rest[0].isdigit() and int(rest[0]) <= 255:
            index = max(0, int(rest[0]) - 1)
        else:
            serial = rest[0]
    if iface == "*" or all_sites:
        interfaces = None
    elif iface.isdigit() and int(iface) >= 1:
        interfaces = (int(iface),)
    else:
        raise ProgrammerUrlError(
            f"{shown}: interface {iface!r} must be a number from 1 (or * for all MPSSE interfaces)"
        )
    return FtdiUrl(product, serial, index, bus_address, interfaces)


def _int(text: str, base: int = 0) -> int | None:
    try:
        return int(text, base)
    except ValueError:
        return None


def _number(options: Mapping[str, str], key: str, default: int, lo: int, hi: int) -> int:
    text = options.get(key)
    if text is None or text == "":
        return default
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([kKmM]?)\s*", text)
    if match is None:
        raise ProgrammerUrlError(
            f"ftdi option {key}={text!r} is not a number (e.g. 10000000 or 10M)"
        )
    scale = {"": 1, "k": 1000, "m": 1_000_000}[match.group(2).lower()]
    value = round(float(match.group(1)) * scale)
    if not lo <= value <= hi:
        raise ProgrammerUrlError(f"ftdi option {key}={value} must be within {lo}..{hi}")
    return value


@dataclass(frozen=True)
class SiteSettings:
    bus: str  # "spi", "i2c" or "swd"
    clock_hz: int  # SPI cap, I2C clock or SWCLK
    pins: PinMap
    latency_ms: int
    in_system: bool
    board_powered: bool
    vcc_mv: int
    swd: SwdSiteOptions | None = None
    nrst: Pin | None = None  # the SWD target's NRST


# -- sites --------------------------------------------------------------------------


class FtdiSite:
    """One MPSSE interface: a SPI or I2C bus plus the GPIO pins of its pin map.

    The site is also the bus's link: every USB access goes through :meth:`io`, which
    serialises access (the GUI may poll socket detect while a cycle runs) and turns
    pyftdi/pyusb errors into LinkError with ``link_lost`` set.
    """

    uart = None  # MPSSE interfaces here are SPI or I2C masters, or SWD probes
    insertions = 0  # the detect pin reports presence, not insertions: not counted here

    def __init__(
        self,
        backend: FtdiBackend,
        device: UsbDeviceInfo,
        interface: int,
        settings: SiteSettings,
    ) -> None:
        self.index = interface
        self.interface = interface
        self.adapter_id: str | None = None
        self.in_system = settings.in_system
        self.board_powered = settings.board_powered
        self.link_lost = False
        self.settings = settings
        self.pins = settings.pins
        self.backend = backend
        self.device = device
        self.serial = device.serial or ""
        self.sleep = backend.sleep
        self.now = backend.now
        # pyftdi's SpiController or I2cController while open, and its GpioPort (pyftdi
        # ships no type hints, hence Any)
        self.controller: Any = None
        self.h_series = True
        self.frequency_max = float(MAX_CLOCK_HZ)
        self.mpsse_hz = 0
        self._gpio: Any = None
        self._lock = threading.RLock()
        self._states: dict[str, bool] = {}
        self._spi_mode = "idle"  # see _spi_lines
        self.spi: FtdiSpiBus | None = None
        self.i2c: FtdiI2cBus | None = None
        self.microwire: FtdiMicrowireBus | None = None
        self.swd: DebugAccess | None = None
        self.swd_wire: FtdiSwdWire | None = None
        if settings.bus == "spi":
            self.spi = FtdiSpiBus(self, max_clock_hz=settings.clock_hz)
            self.microwire = FtdiMicrowireBus(self, max_clock_hz=settings.clock_hz)
        elif settings.bus == "swd":
            assert settings.swd is not None
            name = f"FTDI {device.serial or device.vid_pid} interface {interface} (SWD)"
            self.swd_wire = FtdiSwdWire(self, clock_hz=settings.clock_hz, nrst=settings.nrst)
            port = DebugPort(FtdiSwdLink(self.swd_wire, name=name))
            self.swd = SwdBus(port, settings.swd)
        else:
            self.i2c = FtdiI2cBus(self, clock_hz=settings.clock_hz)

    # -- opening --------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The pyftdi URL of this interface, by serial number where the board has one."""
        return self.device.url(str(self.interface))

    def open(self) -> None:
        settings = self.settings
        pins = self.pins
        outputs = pins.output_value(self._states)
        common = {"direction": pins.outputs, "initial": outputs, "latency": settings.latency_ms}
        if self.spi is not None or self.swd_wire is not None:
            ctrl = self.backend.spi_controller()  # MPSSE mode; SWD clocks its own bits
            ctrl.configure(self.url, frequency=float(settings.clock_hz), **common)
        else:
            ctrl = self.backend.i2c_controller()
            ctrl.set_retry_count(1)
            ctrl.configure(self.url, frequency=float(settings.clock_hz), **common)
        self.controller = ctrl
        ftdi = ctrl.ftdi
        # getattr on pyftdi's own objects (third-party, untyped), with the values of
        # the chips this backend is written for where a pyftdi release lacks them
        self.h_series = bool(getattr(ftdi, "is_H_series", True))
        self.frequency_max = float(getattr(ctrl, "frequency_max", MAX_CLOCK_HZ))
        self._gpio = None
        if pins.used:
            self._gpio = ctrl.get_gpio()
            # pyftdi's configure() may leave the GPIO mask at the initial outputs only
            # (narrow ports, I2C); name our pins explicitly.
            self._gpio.set_direction(pins.used, pins.outputs)
            if pins.outputs:
                self._gpio.write(outputs)
        self._spi_mode = "idle"  # configure() leaves /CS high, SCK and MOSI low
        self.mpsse_hz = 0
        if self.microwire is not None:
            self.microwire.clock_hz = 0
        if self.spi is not None:
            self.spi.clock_hz = 0
            self.spi.set_clock(self.spi.max_clock_hz)
        if self.swd_wire is not None:
            self.swd_wire.clock_hz = 0
            self.swd_wire.set_clock(settings.clock_hz)

    def close(self) -> None:
        with self._lock:
            if self.swd_wire is not None:
                self.swd_wire.close()
            ctrl, self.controller, self._gpio = self.controller, None, None
            if ctrl is not None:
                with suppress(Exception):  # a board that is gone cannot be closed cleanly
                    ctrl.close()

    def reconnect(self) -> bool:
        """Find the board again by its serial number and reopen this interface."""
        with self._lock:
            self.close()
            try:
                devices = self.backend.find_devices()
            except HalError as err:
                log.warning("site %s: reconnect: %s", self.index, err)
                return False
            again = _same_board(self.device, devices)
            if again is None or not again.accessible:
                return False
            self.device = again
            self.link_lost = False
            try:
                self.open()
            except Exception as err:  # pyftdi raises many kinds while a board settles
                log.warning("site %s: reconnect to %s failed: %s", self.index, self.url, err)
                self.close()
                self.link_lost = True
                return False
            return True

    # -- the link the buses use -----------------------------------------------------

    @contextmanager
    def io(self, what: str) -> Iterator[None]:
        with self._lock:
            if self.link_lost or self.controller is None:
                raise LinkError(
                    f"FTDI {self.serial or self.device.vid_pid} interface {self.interface}"
                    " is disconnected"
                )
            try:
                yield
            except HalError:
                raise
            except self.backend.nack_errors as err:
                raise I2cNack(str(err) or "no acknowledge") from None
            except self.backend.link_errors as err:
                self.link_lost = True
                raise LinkError(
                    f"USB link to FTDI {self.serial or self.device.vid_pid} interface"
                    f" {self.interface} lost during {what}: {err}"
                ) from None

    def ftdi(self) -> Mpsse:
        ftdi: Mpsse = self.controller.ftdi  # pyftdi's Ftdi (untyped)
        return ftdi

    def low_byte(self) -> tuple[int, int]:
        outputs = self.pins.outputs & 0xFF
        return self.pins.output_value(self._states) & outputs, outputs

    def high_byte(self) -> tuple[int, int]:
        outputs = self.pins.outputs >> 8
        return (self.pins.output_value(self._states) >> 8) & outputs, outputs

    def spi_driven(self) -> None:
        self._spi_mode = "idle"

    # -- GPIO -----------------------------------------------------------------------

    def _set(self, **states: bool) -> None:
        """Change output roles (only those this pin map has) and write the port."""
        changed = False
        for role, active in states.items():
            if self.pins.get(role) is not None and self._states.get(role, False) != active:
                self._states[role] = active
                changed = True
        if changed and self._gpio is not None:
            self._gpio.write(self.pins.output_value(self._states))
            if self.spi is not None and self._spi_mode != "idle":
                # pyftdi's GPIO write re-drives every output pin; restore our SPI lines
                self._spi_lines(self._spi_mode)
            if self.swd_wire is not None:
                self.swd_wire.restore_pins()

    def _spi_lines(self, mode: str) -> None:
        """Put the SPI lines in ``mode``: "idle" (/CS high, SCK low), "low" (all driven
        low, so a part whose supply is switched off is not powered through /CS) or
        "released" (inputs: an in-system board's own MCU may use its flash)."""
        gpio, direction = self.low_byte()
        if mode != "released":
            direction |= SPI_DIRECTION
        value = (0x08 if mode == "idle" else 0x00) | gpio
        self.ftdi().write_data(bytes((0x80, value, direction)))
        self._spi_mode = mode

    def power(self, on: bool, voltage_mv: int | None = None) -> None:
        if not on and (self.link_lost or self.controller is None):
            return  # nothing to switch off on a board that is gone
        if on and voltage_mv is not None and voltage_mv < self.settings.vcc_mv:
            raise HalError(
                f"site {self.index} runs at {self.settings.vcc_mv / 1000:g} V (vcc option) but"
                f" the part allows at most {voltage_mv / 1000:g} V: use a level-shifting"
                " adapter and set vcc= to its voltage"
            )
        # voltage None with power=programmer still switches the supply (e.g. detect).
        supply = on and (voltage_mv is not None or not self.board_powered)
        switched = self.pins.get("power") is not None
        with self.io("switching power"):
            if on:
                if switched and supply and not self._states.get("power"):
                    self._set(power=True)
                    self.sleep(POWER_SETTLE_S)
                if self.spi is not None and self._spi_mode != "idle":
                    self._spi_lines("idle")
                if self.spi is not None:
                    self.spi.poller.reset()  # maybe another part: busy times learned anew
                if self.microwire is not None:
                    self.microwire.poller.reset()
            else:
                self._set(power=False)
                if self.swd_wire is not None:
                    self.swd_wire.release()  # NRST released, the board runs on its own
                if self.spi is not None:
                    if self.in_system:
                        self._spi_lines("released")
                    elif switched:
                        self._spi_lines("low")

    def part_present(self) -> bool:
        pin = self.pins.get("detect")
        if pin is None:
            return True
        with self.io("reading socket detect"):
            return pin.is_active(int(self._gpio.read()))

    def indicate(self, state: Indication) -> None:
        if not {"pass", "fail", "busy"} & set(self.pins.pins) or self.link_lost:
            return
        with suppress(LinkError), self.io("setting the LEDs"):
            self._set(
                **{
                    "pass": state == "pass",
                    "fail": state == "fail",
                    "busy": state == "busy",
                }
            )

    def set_reset(self, asserted: bool) -> None:
        if self.pins.get("reset") is None:
            return
        with self.io("driving the reset line"):
            self._set(reset=asserted)


def _same_board(old: UsbDeviceInfo, devices: list[UsbDeviceInfo]) -> UsbDeviceInfo | None:
    for dev in devices:
        if dev.vid != old.vid or dev.pid != old.pid:
            continue
        if old.serial and dev.serial == old.serial:
            return dev
        if not old.serial and (dev.bus, dev.address) == (old.bus, old.address):
            return dev
    return None


# -- the programmer -----------------------------------------------------------------


@dataclass
class FtdiProgrammer:
    url: str
    name: str
    capabilities: Capabilities
    _sites: list[FtdiSite] = field(default_factory=list)

    @property
    def sites(self) -> list[FtdiSite]:
        return list(self._sites)

    def close(self) -> None:
        for site in self._sites:
            with suppress(HalError):
                site.indicate("idle")
                site.power(False)
            site.close()


def _match(url: FtdiUrl, devices: list[UsbDeviceInfo], shown: str) -> UsbDeviceInfo:
    candidates = [
        d
        for d in devices
        if d.vid == FTDI_VID
        and (url.product.pid == d.pid if url.product else d.product.mpsse_interfaces > 0)
        and (url.serial is None or d.serial == url.serial)
        and (url.bus_address is None or (d.bus, d.address) == url.bus_address)
    ]
    if url.index is not None:
        candidates = candidates[url.index : url.index + 1]
    if not candidates:
        seen = ", ".join(f"{d.product.name} {d.serial or d.vid_pid}" for d in devices) or "none"
        raise HalError(
            f"no FTDI device matches {shown} (connected FTDI devices: {seen});"
            " see `socketeer hw list`"
        )
    if len(candidates) > 1:
        urls = " or ".join(d.url() for d in candidates)
        raise ProgrammerUrlError(
            f"{len(candidates)} FTDI devices match {shown}: name one by serial number, {urls}"
        )
    return candidates[0]


def _settings(
    parsed: ParsedUrl, context: Mapping[str, object], product: FtdiProduct
) -> SiteSettings:
    options = parsed.options
    device = context.get("device")
    part = device if isinstance(device, Device) else None
    default_bus = "1" if part is not None and part.family is Family.I2C_EEPROM else "0"
    i2c = _flag(options, "i2c", default_bus)
    swd = _flag(options, "swd", "0")
    if swd:
        if "i2c" in options and i2c:
            raise ProgrammerUrlError(
                "ftdi options i2c=1 and swd=1: an interface is one or the other"
            )
        return _swd_settings(parsed, product)
    for key in SWD_ONLY_OPTIONS:
        if key in options:
            raise ProgrammerUrlError(f"ftdi option {key}= is for SWD probes: add swd=1")
    bus = "i2c" if i2c else "spi"
    part_max = (part.max_clock_hz if part is not None else None) or 0
    if bus == "spi":
        cap = _number(options, "clock", MAX_CLOCK_HZ, 1000, 200_000_000)
        clock = min(cap, MAX_CLOCK_HZ, part_max or MAX_CLOCK_HZ)
    else:
        cap = _number(options, "clock", DEFAULT_I2C_HZ, 1000, MAX_I2C_HZ)
        clock = min(cap, part_max or cap)
    pins = parse_pin_map(options.get("pins", "none"), bus=bus, wide=product.wide, chip=product.name)
    in_system, board_powered = connection_options(parsed, in_system=False, board_powered=False)
    return SiteSettings(
        bus=bus,
        clock_hz=clock,
        pins=pins,
        latency_ms=_number(options, "latency", DEFAULT_LATENCY_MS, 1, 255),
        in_system=in_system,
        board_powered=board_powered,
        vcc_mv=_number(options, "vcc", 3300, 1000, 5500),
    )


def _flag(options: Mapping[str, str], key: str, default: str) -> bool:
    text = options.get(key, default).strip().lower()
    if text not in ("0", "1", "yes", "no", "true", "false", "on", "off"):
        raise ProgrammerUrlError(f"ftdi option {key}={options[key]!r}: expected 1 or 0")
    return text in ("1", "yes", "true", "on")


def _swd_settings(parsed: ParsedUrl, product: FtdiProduct) -> SiteSettings:
    """swd=1: SWCLK (clock=), NRST (nrst=PIN), connect=, the pin map around them."""
    options = parsed.options
    clock = _number(options, "clock", DEFAULT_SWD_HZ, 1000, MAX_CLOCK_HZ)
    pins = parse_pin_map(
        options.get("pins", "none"), bus="swd", wide=product.wide, chip=product.name
    )
    nrst = None
    if options.get("nrst"):
        where = f"ftdi option nrst={options['nrst']}"
        nrst = parse_pin(options["nrst"], where, bus="swd", wide=product.wide, chip=product.name)
        for role, pin in pins.pins.items():
            if pin.bit == nrst.bit:
                raise ProgrammerUrlError(f"{where}: pin already used for {role} (pins=)")
    if pins.get("reset") is not None:
        raise ProgrammerUrlError(
            "ftdi swd=1: give the target's reset line as nrst=PIN, not pins=reset="
        )
    connect = choice(parsed, "connect", "normal", ("normal", "under-reset"))
    if connect == "under-reset" and nrst is None:
        raise ProgrammerUrlError(
            "ftdi: connect=under-reset needs the target's NRST wired to a GPIO pin (nrst=D4)"
        )
    in_system, board_powered = connection_options(parsed, in_system=True, board_powered=True)
    return SiteSettings(
        bus="swd",
        clock_hz=clock,
        pins=pins,
        latency_ms=_number(options, "latency", DEFAULT_LATENCY_MS, 1, 255),
        in_system=in_system,
        board_powered=board_powered,
        vcc_mv=_number(options, "vcc", 3300, 1000, 5500),
        swd=SwdSiteOptions(
            clock,
            connect == "under-reset",
            nrst is not None,
            in_system,
            board_powered,
            loader=choice(parsed, "loader", "1", ("1", "0")) == "1",
        ),
        nrst=nrst,
    )


def _open_error(err: BaseException, site: FtdiSite) -> HalError:
    text = str(err)
    if access_error(err) == "permission denied":
        return HalError(
            f"permission denied opening {site.url}: install Socketeer's udev rules"
            f" ({udev_fix()}), then re-plug the board; `socketeer hw diagnose` checks the setup"
        )
    if "busy" in text.lower() or "Errno 16" in text:
        return HalError(
            f"{site.url} is in use by another program (close it, or unbind ftdi_sio; see"
            " `socketeer hw diagnose`)"
        )
    return HalError(f"cannot open {site.url}: {text or type(err).__name__}")


@register_scheme("ftdi")
def open_ftdi(parsed: ParsedUrl, context: Mapping[str, object]) -> FtdiProgrammer:
    options = parsed.options
    check_options(parsed, KNOWN_OPTIONS)
    sites_opt = options.get("sites")
    if sites_opt not in (None, "all"):
        raise ProgrammerUrlError(f"ftdi option sites={sites_opt!r}: only sites=all is accepted")
    shown = f"ftdi://{parsed.path}"
    url = parse_ftdi_path(parsed.path, all_sites=sites_opt == "all")
    # Check the options before touching USB, so a bad URL says so even without a board.
    _settings(parsed, context, url.product or PRODUCTS[0x6014])
    given = context.get("ftdi_backend")  # tests swap pyftdi for chip models
    backend = given if isinstance(given, FtdiBackend) else pyftdi_backend()
    device = _match(url, backend.find_devices(), shown)
    product = device.product
    settings = _settings(parsed, context, product)
    if not device.accessible:
        raise HalError(
            f"FTDI {product.name} {device.vid_pid} ({shown}) is not accessible"
            f" ({device.error}): install Socketeer's udev rules ({udev_fix()}) and re-plug it"
        )
    interfaces = url.interfaces or tuple(range(1, product.mpsse_interfaces + 1))
    for number in interfaces:
        if number > product.mpsse_interfaces:
            letters = "AB"[: product.mpsse_interfaces]
            raise ProgrammerUrlError(
                f"{shown}: interface {number} of an {product.name} has no MPSSE engine"
                f" (MPSSE interfaces: {', '.join(f'{i + 1} ({c})' for i, c in enumerate(letters))})"
            )
    sites = [FtdiSite(backend, device, number, settings) for number in interfaces]
    opened: list[FtdiSite] = []
    try:
        for site in sites:
            try:
                site.open()
            except HalError:
                raise
            except Exception as err:
                raise _open_error(err, site) from None
            opened.append(site)
    except BaseException:
        for site in opened:
            site.close()
        raise
    pins = settings.pins
    which = "*" if url.interfaces is None else str(interfaces[0])
    return FtdiProgrammer(
        url=f"ftdi://ftdi:{product.url_name}:{locator(device)}/{which}",
        name=f"FTDI {product.name} {device.serial or device.vid_pid}",
        capabilities=Capabilities(
            buses=frozenset(
                {settings.bus, "microwire"} if settings.bus == "spi" else {settings.bus}
            ),
            max_spi_clock_hz=settings.clock_hz if settings.bus in ("spi", "swd") else 0,
            power_control=pins.get("power") is not None,
            socket_detect=pins.get("detect") is not None,
        ),
        _sites=sites,
    )


__all__ = ["FtdiBackend", "FtdiProgrammer", "FtdiSite", "open_ftdi", "product_for"]
