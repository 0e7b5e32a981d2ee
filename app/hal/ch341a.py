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

A board is bound by its USB bus:address path or serial number and found again after a
re-plug (app.hal.wch_board). The board has no switched supply, socket detect or LEDs: the
part is powered while the board is plugged in, and power(False) only releases the SPI
lines.

pyusb is reached through a ``WchBackend`` (app.hal.wch_usb);
``open_programmer(url, ch341a_backend=...)`` swaps it, which is how the tests run this
module against chip models at the USB packet level (tests/ch341a_fake.py).
"""

from __future__ import annotations

from collections.abc import Mapping

from app.hal.ch341a_i2c import CH341_I2C, speed_packet
from app.hal.ch341a_spi import CLOCK_HZ, Ch341SpiBus, pins_packet
from app.hal.ch341a_usb import pyusb_backend
from app.hal.programmer import Capabilities, ParsedUrl, check_options, register_scheme
from app.hal.usb_naming import check_path, select, shared_serials
from app.hal.wch_board import (
    BoardOptions,
    WchProgrammer,
    WchSite,
    board_options,
    open_sites,
)
from app.hal.wch_i2c import WchI2cBus
from app.hal.wch_usb import WchBackend, WchDevice, WchHandle

KNOWN_OPTIONS = {"i2c", "clock", "vcc", "connection", "power"}
#: what the common black board drives its lines at, unmodified
BLACK_BOARD_MV = 5000


class Ch341Site(WchSite):
    """One CH341A board: its SPI or I2C bus (app.hal.wch_board has the USB link)."""

    chip = "CH341A"
    lower_voltage_hint = (
        "use a 1.8 V or 3.3 V adapter (or a board modified to run the CH341A at 3.3 V) and"
        " set vcc= to its voltage"
    )

    def __init__(
        self,
        backend: WchBackend,
        device: WchDevice,
        index: int,
        settings: BoardOptions,
        *,
        only_board: bool,
        serial_shared: bool,
    ) -> None:
        super().__init__(
            backend,
            device,
            index,
            vcc_mv=settings.vcc_mv,
            in_system=settings.in_system,
            board_powered=settings.board_powered,
            only_board=only_board,
            serial_shared=serial_shared,
        )
        self.settings = settings
        self.spi: Ch341SpiBus | None = None
        self.i2c: WchI2cBus | None = None
        if settings.bus == "spi":
            self.spi = Ch341SpiBus(self)
        else:
            self.i2c = WchI2cBus(self, CH341_I2C, clock_hz=settings.i2c_hz)

    def start(self, handle: WchHandle) -> None:
        # the stream speed (I2C clock; SPI single data line, as flashrom sets it)
        handle.write(speed_packet(self.settings.i2c_hz))

    def drive(self, handle: WchHandle, on: bool) -> None:
        if self.spi is None:
            return
        handle.write(pins_packet(on))  # power(False) releases the SPI lines
        if on:
            self.spi.poller.reset()  # maybe another part: busy times learned anew


@register_scheme("ch341a")
def open_ch341a(parsed: ParsedUrl, context: Mapping[str, object]) -> WchProgrammer:
    check_options(parsed, KNOWN_OPTIONS)
    path = parsed.path.strip("/")
    check_path("ch341a", path, "board")
    # the options are checked before touching USB, so a bad URL says so without a board
    settings = board_options(parsed, context, "CH341A")
    given = context.get("ch341a_backend")  # tests swap pyusb for a packet-level fake
    backend = given if isinstance(given, WchBackend) else pyusb_backend()
    found = backend.find_devices()
    devices = select("ch341a", "CH341A", "CH341A boards", path, found, noun="board")
    shared = shared_serials(found)
    sites = [
        Ch341Site(
            backend, dev, n, settings, only_board=not path, serial_shared=dev.serial in shared
        )
        for n, dev in enumerate(devices, 1)
    ]
    open_sites(sites, backend)
    where = path or sites[0].label
    return WchProgrammer(
        url=f"ch341a://{where}",
        name=f"CH341A {', '.join(s.label for s in sites)}",
        capabilities=Capabilities(
            buses=frozenset({settings.bus}),
            max_spi_clock_hz=CLOCK_HZ if settings.bus == "spi" else 0,
            unstated_drive_mv=BLACK_BOARD_MV if settings.vcc_mv is None else None,
        ),
        _sites=sites,
    )


__all__ = ["Ch341Site", "open_ch341a"]
