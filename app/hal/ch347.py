"""CH347 programmers (WCH's high-speed USB bridge, the CH347T in mode 1 (1a86:55db) or
mode 2 (1a86:55dc) and the CH347F (1a86:55de)): SPI and I2C.

URLs:

    ch347://                    the only CH347 connected
    ch347://1:7                 the one at USB bus 1, address 7 (decimal, as lsusb prints)
    ch347://SERIAL              the one with this USB serial number (when no other has it)
    ch347://*                   every CH347 connected: one site each, in bus:address order
    ch347://1:7 ; ch347://1:9   two boards as sites 1 and 2 (a station URL)

The CH347T's mode pins choose its USB face at power-up. Mode 1 (1a86:55db) has a vendor
interface with bulk endpoints; mode 2 (1a86:55dc) carries the same packets in HID reports
on interface 1 (app.hal.ch347_usb.HidReports wraps the board's handle, above the USB
seam, so the buses speak mode 1 in both; the mode-2 framing comes from a third-party
hidapi library and a descriptor dump, not from WCH). Modes 0 and 3 have no SPI/I2C
(`hw diagnose` says to set mode 1 or 2). pyusb reaches the HID interface once the kernel's
usbhid driver is detached from it (done when the board is opened); Windows needs WinUSB
bound to interface 1 (Zadig, "MI_01"); macOS holds HID interfaces in its own driver and
is untried.

Every CH347T carries the serial number "0123456789", so a serial number names a board
only while no other connected board has it: with two CH347Ts, name them by bus:address
(app.hal.wch_board refuses the serial then, and binds such boards by bus:address).

Options:
- ``i2c=1``: the I2C pins are the bus (default: I2C for I2C parts, else SPI).
- ``spi_hz=HZ`` (``15M``, ``937.5k`` ...): the fastest SPI clock to use (default 60M);
  the clock is the fastest of 60 MHz / 2^n (n = 0..7, down to 468.75 kHz) not above it
  and not above the part's maximum.
- ``spi_mode=0|3``: the SPI mode (default 0; memories take 0 or 3).
- ``cs=1|2``: the chip select the part is on (default 1).
- ``clock=HZ``: the I2C clock: 20k, 100k, 400k (default) or 750k (at most the part's).
- ``vcc=MV``: the voltage the board drives its lines at; parts rated below it are
  refused before power is applied. The CH347 runs its I/O at 3.3 V, so without ``vcc=``
  there is no warning (``Capabilities.unstated_drive_mv`` None).
- ``connection=socket|in-system`` (default socket), ``power=programmer|board``.

A board is bound by its USB bus:address path or serial number and found again after a
re-plug (app.hal.wch_board). It has no switched supply, socket detect or LEDs.

pyusb is reached through a ``WchBackend`` (app.hal.wch_usb);
``open_programmer(url, ch347_backend=...)`` swaps it, which is how the tests run this
module against chip models at the USB packet level (tests/ch347_fake.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from app.hal.ch347_i2c import CH347_HID_I2C, CH347_I2C
from app.hal.ch347_spi import MIN_HZ, Ch347SpiBus, cs_packet, divisor_for
from app.hal.ch347_usb import CH347F_PID, CH347T_HID_PID, framing, pyusb_backend, switch_to_i2c
from app.hal.errors import ProgrammerUrlError
from app.hal.programmer import Capabilities, ParsedUrl, check_options, choice, register_scheme
from app.hal.usb_naming import check_path, select, shared_serials
from app.hal.wch_board import (
    BoardOptions,
    WchProgrammer,
    WchSite,
    board_options,
    clock_option,
    open_sites,
)
from app.hal.wch_i2c import WchI2cBus, speed_stream
from app.hal.wch_usb import WchBackend, WchDevice, WchHandle

KNOWN_OPTIONS = {"i2c", "spi_hz", "spi_mode", "cs", "clock", "vcc", "connection", "power"}
DEFAULT_SPI_HZ = 60_000_000


@dataclass(frozen=True)
class SiteSettings:
    board: BoardOptions  # bus, I2C clock, vcc=, connection and power
    spi_hz: int  # the spi_hz option (the bus picks its clock at or below it)
    spi_mode: int  # 0 or 3
    cs: int


def _settings(parsed: ParsedUrl, context: Mapping[str, object]) -> SiteSettings:
    board = board_options(parsed, context, "CH347")
    spi_hz = clock_option(parsed, "spi_hz")
    spi_hz = DEFAULT_SPI_HZ if spi_hz is None else spi_hz
    if divisor_for(spi_hz) is None:
        raise ProgrammerUrlError(
            f"ch347 option spi_hz={parsed.options['spi_hz']!r}: the CH347's slowest SPI"
            f" clock is {MIN_HZ} Hz"
        )
    return SiteSettings(
        board=board,
        spi_hz=spi_hz,
        spi_mode=int(choice(parsed, "spi_mode", "0", ("0", "3"))),
        cs=int(choice(parsed, "cs", "1", ("1", "2"))),
    )


class Ch347Site(WchSite):
    """One CH347 board: its SPI or I2C bus (app.hal.wch_board has the USB link)."""

    chip = "CH347"
    lower_voltage_hint = "use a level-shifting adapter for the part and set vcc= to its voltage"

    def __init__(
        self,
        backend: WchBackend,
        device: WchDevice,
        index: int,
        settings: SiteSettings,
        *,
        only_board: bool,
        serial_shared: bool,
    ) -> None:
        super().__init__(
            backend,
            device,
            index,
            vcc_mv=settings.board.vcc_mv,
            in_system=settings.board.in_system,
            board_powered=settings.board.board_powered,
            only_board=only_board,
            serial_shared=serial_shared,
        )
        self.settings = settings
        self.spi: Ch347SpiBus | None = None
        self.i2c: WchI2cBus | None = None
        if settings.board.bus == "spi":
            self.spi = Ch347SpiBus(
                self, cs=settings.cs, limit_hz=settings.spi_hz, mode=settings.spi_mode
            )
        else:
            dialect = CH347_HID_I2C if device.product == CH347T_HID_PID else CH347_I2C
            self.i2c = WchI2cBus(self, dialect, clock_hz=settings.board.i2c_hz)

    def framed(self, usb: WchHandle) -> WchHandle:
        return framing(self.device.product, usb)

    def start(self, handle: WchHandle) -> None:
        if self.spi is not None:
            self.spi.configure(handle)
            return
        if self.device.product == CH347F_PID:
            switch_to_i2c(handle)
        handle.write(speed_stream(self.settings.board.i2c_hz))

    def drive(self, handle: WchHandle, on: bool) -> None:
        if self.spi is None:
            return
        handle.write(cs_packet(self.spi.cs, False))  # idle between cycles: CS high
        if on:
            self.spi.poller.reset()  # maybe another part: busy times learned anew


@register_scheme("ch347")
def open_ch347(parsed: ParsedUrl, context: Mapping[str, object]) -> WchProgrammer:
    check_options(parsed, KNOWN_OPTIONS)
    path = parsed.path.strip("/")
    check_path("ch347", path, "board")
    # the options are checked before touching USB, so a bad URL says so without a board
    settings = _settings(parsed, context)
    given = context.get("ch347_backend")  # tests swap pyusb for a packet-level fake
    backend = given if isinstance(given, WchBackend) else pyusb_backend()
    found = backend.find_devices()
    devices = select("ch347", "CH347", "CH347 boards", path, found, noun="board")
    shared = shared_serials(found)
    sites = [
        Ch347Site(
            backend, dev, n, settings, only_board=not path, serial_shared=dev.serial in shared
        )
        for n, dev in enumerate(devices, 1)
    ]
    open_sites(sites, backend)
    spi = sites[0].spi
    where = path or sites[0].label
    return WchProgrammer(
        url=f"ch347://{where}",
        name=f"CH347 {', '.join(s.label for s in sites)}",
        capabilities=Capabilities(
            buses=frozenset({settings.board.bus}),
            max_spi_clock_hz=spi.max_clock_hz if spi is not None else 0,
        ),
        _sites=sites,
    )


__all__ = ["Ch347Site", "open_ch347"]
