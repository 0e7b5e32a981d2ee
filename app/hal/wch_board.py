"""What the WCH programmer backends (ch341a://, ch347://) share above the USB seam: a
board as a site (its USB link, reconnecting after a re-plug); app.hal.usb_naming chooses
the boards a URL names.

Most boards have no USB serial number, so a board is bound by its USB bus:address path,
which changes when it is re-plugged: ``reconnect()`` finds it again by serial number when
it has one, else at the same bus:address, else (a URL that named no board, one site) as
the only board of its kind connected.

A serial number may not name one board: every CH347T carries "0123456789" (the lsusb
dumps of modes 1 and 2 in nic3-14159/CH347-Research). A serial that two connected boards
share is no name (app.hal.usb_naming refuses it in a URL), and a board that shared it
when opened is bound by its bus:address, so that a re-plug never
binds a site to another board carrying the same serial.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field

from app.devicedb.families import Family
from app.devicedb.models import Device
from app.hal.bus import I2cBus, SpiBus
from app.hal.errors import HalError, LinkError, ProgrammerUrlError
from app.hal.ftdi_usb import udev_fix
from app.hal.programmer import (
    Capabilities,
    Indication,
    ParsedUrl,
    choice,
    connection_options,
    int_option,
)
from app.hal.usb_naming import same_device
from app.hal.wch_i2c import SPEEDS
from app.hal.wch_usb import WchBackend, WchDevice, WchHandle

log = logging.getLogger(__name__)


class WchSite:
    """One board. Every USB access goes through :meth:`io`, which serialises access and
    turns USB errors into LinkError with ``link_lost`` set. A chip's site says what it
    sends when the board is opened (:meth:`start`)."""

    chip = ""  # the chip's name in messages
    #: how to get a part rated below the board's drive level programmed safely
    lower_voltage_hint = "use a level-shifting adapter for the part and set vcc= to its voltage"
    spi: SpiBus | None = None
    i2c: I2cBus | None = None
    uart = None
    microwire = None  # neither chip's SPI engine clocks single bits
    swd = None
    adapter_id: str | None = None
    insertions = 0  # no socket sensing

    def __init__(
        self,
        backend: WchBackend,
        device: WchDevice,
        index: int,
        *,
        vcc_mv: int | None,
        in_system: bool,
        board_powered: bool,
        only_board: bool,
        serial_shared: bool,
    ) -> None:
        self.index = index
        self.vcc_mv = vcc_mv  # None: not stated
        self.backend = backend
        self.device = device
        self.in_system = in_system
        self.board_powered = board_powered
        self.link_lost = False
        self.sleep = backend.sleep
        self.now = backend.now
        self.handle: WchHandle | None = None
        self._only_board = only_board  # the URL named no board: any one will do
        #: the serial number that names this board ("": none, or another board's too)
        self.serial = "" if serial_shared else device.serial
        self._lock = threading.RLock()

    @property
    def label(self) -> str:
        """How the board is named: its serial number where that names it, else bus:address."""
        return self.serial or self.device.location

    @property
    def name(self) -> str:
        return f"{self.chip} {self.label}"

    def start(self, handle: WchHandle) -> None:
        """Set the board up after it is opened (or reopened)."""

    def drive(self, handle: WchHandle, on: bool) -> None:
        """Drive the bus lines for a cycle (``on``) or leave them idle after it."""

    def framed(self, usb: WchHandle) -> WchHandle:
        """What the chip's packets travel through on the opened board: its USB transfers,
        unless the chip's mode wraps them (the CH347T's HID reports)."""
        return usb

    def open(self) -> None:
        self.handle = self.framed(self.backend.open(self.device))
        self.start(self.handle)

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
            failures: tuple[type[BaseException], ...] = (*self.backend.link_errors, HalError)
            try:
                self.open()
            except failures as err:  # gone again, or a bad answer while setting it up
                log.warning("site %s: reconnect to %s failed: %s", self.index, self.name, err)
                self.close()
                self.link_lost = True
                return False
            return True

    def _same_board(self, devices: list[WchDevice]) -> WchDevice | None:
        """The board again (app.hal.usb_naming.same_device), never one with another
        product id: the CH347T in another mode needs other buses."""
        devices = [dev for dev in devices if dev.product == self.device.product]
        return same_device(self.device, devices, self.serial, only_one=self._only_board)

    @contextmanager
    def io(self, what: str) -> Iterator[WchHandle]:
        with self._lock:
            if self.link_lost or self.handle is None:
                raise LinkError(f"{self.name} is disconnected")
            try:
                yield self.handle
            except HalError as err:
                if isinstance(err, LinkError):  # a bad answer: the stream is out of step
                    self.link_lost = True
                raise
            except self.backend.link_errors as err:
                self.link_lost = True
                raise LinkError(f"USB link to {self.name} lost during {what}: {err}") from None

    def power(self, on: bool, voltage_mv: int | None = None) -> None:
        """The boards have no switched supply: the part is powered while the board is
        plugged in. With ``vcc=`` stated, a part rated below it is refused here."""
        if not on and (self.link_lost or self.handle is None):
            return
        vcc = self.vcc_mv
        if on and vcc is not None and voltage_mv is not None and voltage_mv < vcc:
            raise HalError(
                f"site {self.index}: the {self.chip} drives its lines at {vcc / 1000:g} V"
                f" (vcc option) but the part allows at most {voltage_mv / 1000:g} V:"
                f" {self.lower_voltage_hint}"
            )
        with self.io("switching the bus lines") as handle:
            self.drive(handle, on)

    def part_present(self) -> bool:
        return True

    def indicate(self, state: Indication) -> None:
        return None  # no LEDs to drive


@dataclass
class WchProgrammer:
    url: str
    name: str
    capabilities: Capabilities
    _sites: Sequence[WchSite] = field(default_factory=list)

    @property
    def sites(self) -> list[WchSite]:
        return list(self._sites)

    def close(self) -> None:
        for site in self._sites:
            with suppress(HalError):
                site.power(False)
            site.close()


_HZ = re.compile(r"([0-9]+(?:\.[0-9]+)?)([km]?)")
DEFAULT_I2C_HZ = 400_000


def clock_option(parsed: ParsedUrl, key: str) -> int | None:
    """A clock option in hertz (``400k``, ``7.5M``, ``100000``); None when not given."""
    text = parsed.options.get(key, "").strip().lower()
    if not text:
        return None
    match = _HZ.fullmatch(text)
    if not match:
        raise ProgrammerUrlError(
            f"{parsed.scheme} option {key}={parsed.options[key]!r} is not a clock"
        )
    scale = {"": 1, "k": 1000, "m": 1_000_000}[match.group(2)]
    return round(float(match.group(1)) * scale)


@dataclass(frozen=True)
class BoardOptions:
    """The options both WCH backends take: the bus, its I2C clock, the line voltage the
    user stated (``vcc=``), and how the part is connected and powered."""

    bus: str  # "spi" or "i2c"
    i2c_hz: int
    vcc_mv: int | None  # None: not stated
    in_system: bool
    board_powered: bool


def board_options(parsed: ParsedUrl, context: Mapping[str, object], chip: str) -> BoardOptions:
    """``i2c=`` (default: I2C for I2C parts), ``clock=`` (one of the stream's I2C clocks,
    at most the part's), ``vcc=``, ``connection=`` and ``power=``."""
    device = context.get("device")
    part = device if isinstance(device, Device) else None
    default_bus = "1" if part is not None and part.family is Family.I2C_EEPROM else "0"
    i2c = choice(parsed, "i2c", default_bus, ("0", "1")) == "1"
    try:
        hz = clock_option(parsed, "clock")
    except ProgrammerUrlError:
        hz = 0  # named below with the clocks there are
    if hz is not None and hz not in SPEEDS:
        offered = ", ".join(f"{s // 1000}k" for s in SPEEDS)
        raise ProgrammerUrlError(
            f"{parsed.scheme} option clock={parsed.options['clock']!r}: the {chip}'s I2C"
            f" clocks are {offered}"
        )
    hz = hz or DEFAULT_I2C_HZ
    part_max = (part.max_clock_hz if part is not None else None) or hz
    in_system, board_powered = connection_options(parsed, in_system=False, board_powered=False)
    return BoardOptions(
        bus="i2c" if i2c else "spi",
        i2c_hz=max([s for s in SPEEDS if s <= min(hz, part_max)], default=min(SPEEDS)),
        vcc_mv=int_option(parsed, "vcc", 0, 1000, 5500) if "vcc" in parsed.options else None,
        in_system=in_system,
        board_powered=board_powered,
    )


def open_sites(sites: Sequence[WchSite], backend: WchBackend) -> None:
    """Open every site, or none: a board that fails closes the ones opened before it."""
    opened: list[WchSite] = []
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
