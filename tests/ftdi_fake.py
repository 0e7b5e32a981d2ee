"""A fake of pyftdi at the controller/port level, wired to the simulator's chip models.

pyftdi's virtual USB backend is not in its wheel, so this stands in for
``SpiController`` / ``I2cController`` / their ports / the GPIO port with the methods
app.hal.ftdi uses, and for the controller's ``Ftdi`` object, whose ``write_data``
interprets the MPSSE command stream (SET_BITS_LOW/HIGH, WRITE/READ_BYTES, CLK_BYTES,
GET_BITS, SEND_IMMEDIATE) into /CS-framed transactions on a SpiNorChip. Errors are
pyftdi's own classes, so the backend's error mapping is exercised too.

With a MicrowireChip on the interface the fake works at the pin level instead, as FTDI's
AN108 describes the commands: CS on ADBUS3 selects the part while *high*; each clock
of a data command is one SK pulse into the chip model; bits written (0x11/0x13) go out
MSB first; a read on the rising edge (0x20/0x22) samples DO as it stood before the edge,
on the falling edge (0x24/0x26) as the part drives it after the edge; a bit read's n
bits land in the low bits of its byte; GET_BITS_LOW (0x81) reads DO on ADBUS2.

With an SWD target (``iface.swd``: a tests/swd_bitlevel.py SwdBitFront around a target
model) the fake works at the pin level for SWD wiring: ADBUS0 = SWCLK (clocks reach the
target only while it is an output), ADBUS1 drives SWDIO through a resistor while it is an
output, ADBUS2 reads SWDIO; the target's drive wins over the resistor, an undriven line
reads high (the target's pull-up). The LSB-first commands are modelled (AN108): 0x19/0x1B
bytes/bits out on the falling edge (the pin is set, then the rising edge); 0x28/0x2A
bytes/bits in on the rising edge (SWDIO as it stood before the edge), 0x2C/0x2E on the
falling edge (as it stands after the rising edge); an n-bit read shifts each bit in at
bit 7, so its bits end in the top n bits of the byte (OpenOCD's mpsse.c reads them from
bit 8 - n). ``nrst_bit`` is the pin wired to NRST, high unless driven low.

Every interface counts its USB writes and reads (a round trip is a write whose answer
is read back), so tests can assert the batching.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Any

from pyftdi.ftdi import FtdiError
from pyftdi.i2c import I2cIOError, I2cNackError
from pyftdi.spi import SpiIOError
from pyftdi.usbtools import UsbToolsError
from swd_bitlevel import SwdBitFront
from usb.core import USBError

from app.devicedb import Device
from app.hal.errors import I2cNack
from app.hal.ftdi import FtdiBackend
from app.hal.ftdi_usb import PRODUCT_ALIASES, UsbDeviceInfo, product_for
from app.hal.sim.clock import SimClock, Timing
from app.hal.sim.i2c_eeprom_chip import I2cEepromChip
from app.hal.sim.microwire_chip import MicrowireChip
from app.hal.sim.spi_nor_chip import ChipFaults, SpiNorChip

USB_TRANSFER_S = 0.0002  # virtual host time one USB transfer takes
CS_BIT = 0x08
SPI_OUT = 0x0B
DI_BIT, DO_BIT = 0x02, 0x04
SWCLK_PIN, SWDIO_OUT_PIN, SWDIO_IN_PIN = 0x01, 0x02, 0x04  # ADBUS0-2 in SWD wiring


def spi_chip(device: Device, **kwargs: Any) -> SpiNorChip:
    return SpiNorChip(device, SimClock(Timing("instant")), unique_id=bytes(range(16)), **kwargs)


def eeprom_chip(device: Device, faults: ChipFaults | None = None) -> I2cEepromChip:
    return I2cEepromChip(device, SimClock(Timing("instant")), faults=faults)


class FakeClock:
    """Virtual host time: the backend's sleep() advances it instead of sleeping."""

    def __init__(self) -> None:
        self._t = 0.0
        self._lock = threading.Lock()
        self.slept = 0.0

    def now(self) -> float:
        with self._lock:
            return self._t

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self._t += max(0.0, seconds)
            self.slept += max(0.0, seconds)

    def tick(self) -> None:
        with self._lock:
            self._t += USB_TRANSFER_S


@dataclass
class FakeInterface:
    board: FakeBoard
    number: int
    chip: SpiNorChip | I2cEepromChip | MicrowireChip | None = None
    power_bit: int | None = None  # the chip is powered only while this pin drives high
    detect_bit: int | None = None  # input pin, high while ``present``
    present: bool = True
    fail_after: int | None = None  # USB transfers that still work before the link fails
    outputs: int = 0
    direction: int = 0
    usb_writes: int = 0
    usb_reads: int = 0
    idle_clock_bytes: int = 0
    frequency: float = 0.0
    latency: int | None = None
    owner: Any = None
    frames: list[tuple[bytes, int]] = field(default_factory=list)
    history: list[int] = field(default_factory=list)  # output pins after each change
    threads: set[str] = field(default_factory=set)
    swd: SwdBitFront | None = None
    nrst_bit: int | None = None
    nrst_log: list[tuple[int, int]] = field(default_factory=list)  # (SWCLK edges, NRST level)
    _powered: bool = False

    # -- USB --------------------------------------------------------------------------

    def transfer(self, direction: str) -> None:
        """One USB transfer: fails when unplugged or when the injected fault fires."""
        board = self.board
        if not board.plugged:
            raise FtdiError("UsbError: [Errno 19] No such device (it may have been disconnected)")
        if self.fail_after is not None:
            if self.fail_after <= 0:
                raise FtdiError("UsbError: [Errno 5] Input/Output Error")
            self.fail_after -= 1
        if direction == "out":
            self.usb_writes += 1
        else:
            self.usb_reads += 1
        self.threads.add(threading.current_thread().name)
        board.usb.clock.tick()

    @property
    def round_trips(self) -> int:
        return self.usb_reads

    def reset_counts(self) -> None:
        self.usb_writes = self.usb_reads = self.idle_clock_bytes = 0
        self.frames.clear()

    # -- pins -------------------------------------------------------------------------

    def set_pins(self, value: int, direction: int, mask: int) -> None:
        self.outputs = (self.outputs & ~mask) | (value & mask)
        self.direction = (self.direction & ~mask) | (direction & mask)
        self.history.append(self.outputs & self.direction)
        self._update_power()
        if self.swd is not None and self.nrst_bit is not None:
            level = self.nrst_level()
            if not self.nrst_log or self.nrst_log[-1][1] != level:
                self.nrst_log.append((self.swd.edges, level))

    def nrst_level(self) -> int:
        """NRST: low only while its pin drives low (the board pulls it up)."""
        assert self.nrst_bit is not None
        return (
            0
            if self.direction >> self.nrst_bit & 1 and not self.outputs >> self.nrst_bit & 1
            else 1
        )

    def levels(self) -> int:
        """What the pins read: driven outputs, else the outside world (pulled up)."""
        inputs = 0xFFFF
        if self.detect_bit is not None and not self.present:
            inputs &= ~(1 << self.detect_bit)
        microwire = isinstance(self.chip, MicrowireChip) and self.chip_reachable()
        if microwire and self.chip.do_level() == 0:  # DO driven low (else high or pulled up)
            inputs &= ~DO_BIT
        return (self.outputs & self.direction) | (inputs & ~self.direction)

    def pin_high(self, bit: int) -> bool:
        return bool(self.outputs & self.direction & (1 << bit))

    @property
    def powered(self) -> bool:
        return self.power_bit is None or self.pin_high(self.power_bit)

    def _update_power(self) -> None:
        now = self.powered
        if now and not self._powered and self.chip is not None:
            self.chip.power_cycle()
        self._powered = now

    def chip_reachable(self) -> bool:
        return self.chip is not None and self.powered and self.present


class FakeBoard:
    def __init__(
        self,
        usb: FakeUsb,
        serial: str,
        product: str = "2232h",
        *,
        bus: int = 1,
        address: int = 4,
        accessible: bool = True,
    ) -> None:
        self.usb = usb
        self.serial = serial
        self.pid = PRODUCT_ALIASES[product]
        self.bus = bus
        self.address = address
        self.accessible = accessible
        self.plugged = True
        count = {0x6014: 1, 0x6010: 2, 0x6011: 4}.get(self.pid, 1)
        self.interfaces = {n: FakeInterface(self, n) for n in range(1, count + 1)}

    def info(self) -> UsbDeviceInfo:
        return UsbDeviceInfo(
            vid=0x0403,
            pid=self.pid,
            bus=self.bus,
            address=self.address,
            serial=self.serial if self.accessible else None,
            description=product_for(self.pid).name,
            interfaces=len(self.interfaces),
            accessible=self.accessible,
            error=None if self.accessible else "permission denied",
        )

    def unplug(self) -> None:
        self.plugged = False

    def replug(self, address: int) -> None:
        """Plug the board back in; it comes back at a new USB address."""
        self.address = address
        self.plugged = True
        for iface in self.interfaces.values():
            iface.owner = None


class FakeUsb:
    """The host's USB bus with fake FTDI boards; ``backend()`` is the seam to inject."""

    def __init__(self) -> None:
        self.boards: list[FakeBoard] = []
        self.clock = FakeClock()
        self.opened_urls: list[str] = []

    def add(self, serial: str, product: str = "2232h", **kwargs: Any) -> FakeBoard:
        board = FakeBoard(self, serial, product, **kwargs)
        self.boards.append(board)
        return board

    def find_devices(self) -> list[UsbDeviceInfo]:
        return [b.info() for b in self.boards if b.plugged]

    def backend(self) -> FtdiBackend:
        return FtdiBackend(
            spi_controller=lambda: FakeSpiController(self),
            i2c_controller=lambda: FakeI2cController(self),
            find_devices=self.find_devices,
            link_errors=(FtdiError, USBError, I2cIOError),
            nack_errors=(I2cNackError,),
            sleep=self.clock.sleep,
            now=self.clock.now,
        )

    _URL = re.compile(r"ftdi://ftdi:(?P<product>[0-9a-z]+):(?P<loc>[^/]+)/(?P<iface>\d+)")

    def lookup(self, url: str) -> FakeInterface:
        match = self._URL.fullmatch(url)
        if match is None:
            raise UsbToolsError(f"Invalid device URL: {url}")
        loc = match["loc"]
        for board in self.boards:
            if not board.plugged:
                continue
            if loc in (board.serial, f"{board.bus:x}:{board.address:x}"):
                iface = board.interfaces.get(int(match["iface"]))
                if iface is None:
                    raise FtdiError(f"No such FTDI port: {match['iface']}")
                return iface
        raise UsbToolsError(f"No USB device with S/N {loc}")


# -- the Ftdi object: an MPSSE interpreter -------------------------------------------


class FakeFtdi:
    is_H_series = True
    frequency_max = 30e6

    def __init__(self, iface: FakeInterface) -> None:
        self.iface = iface
        self.rx = bytearray()
        self._frame: tuple[bytearray, int] | None = None

    def set_frequency(self, frequency: float) -> float:
        self.iface.transfer("out")
        self.iface.frequency = frequency
        return frequency

    def write_data(self, data: bytes) -> int:
        iface = self.iface
        iface.transfer("out")
        if iface.swd is not None:
            return self._swd(bytes(data), iface.swd)
        if isinstance(iface.chip, MicrowireChip):
            return self._microwire(bytes(data), iface.chip)
        cmd = memoryview(bytes(data))
        pos = 0
        while pos < len(cmd):
            op = cmd[pos]
            if op in (0x80, 0x82):  # SET_BITS_LOW / SET_BITS_HIGH
                value, direction = cmd[pos + 1], cmd[pos + 2]
                shift = 0 if op == 0x80 else 8
                self._set_pins(value << shift, direction << shift, 0xFF << shift)
                pos += 3
            elif op in (0x81, 0x83):  # GET_BITS_LOW / GET_BITS_HIGH
                self.rx.append((iface.levels() >> (0 if op == 0x81 else 8)) & 0xFF)
                pos += 1
            elif op in (0x11, 0x24, 0x8F):
                n = (cmd[pos + 1] | cmd[pos + 2] << 8) + 1
                pos += 3
                if op == 0x11:
                    self._write(bytes(cmd[pos : pos + n]))
                    pos += n
                elif op == 0x24:
                    self._read(n)
                else:
                    iface.idle_clock_bytes += n
                    if iface.chip is not None and iface.frequency:
                        iface.chip.clock.advance(8 * n / iface.frequency)
            elif op == 0x87:  # SEND_IMMEDIATE
                pos += 1
            else:
                raise ValueError(f"fake MPSSE: unexpected command 0x{op:02X} at {pos}")
        return len(data)

    # -- Microwire: pin-level --------------------------------------------------------

    def _microwire(self, cmd: bytes, chip: MicrowireChip) -> int:
        iface = self.iface
        pos = 0
        while pos < len(cmd):
            op = cmd[pos]
            if op == 0x80:
                was = iface.pin_high(3)
                iface.set_pins(cmd[pos + 1], cmd[pos + 2], 0xFF)
                now = iface.pin_high(3)
                if iface.chip_reachable() and now != was:
                    if now:
                        chip.select()
                    else:
                        chip.deselect()
                pos += 3
            elif op == 0x81:
                self.rx.append(iface.levels() & 0xFF)
                pos += 1
            elif op in (0x11, 0x20, 0x24):  # bytes: out -ve / in +ve / in -ve, MSB first
                n = (cmd[pos + 1] | cmd[pos + 2] << 8) + 1
                pos += 3
                if op == 0x11:
                    for byte in cmd[pos : pos + n]:
                        self._clock_out(chip, byte, 8)
                    pos += n
                else:
                    for _ in range(n):
                        self.rx.append(self._clock_in(chip, 8, rising=op == 0x20))
            elif op in (0x13, 0x22, 0x26):  # bits (1-8)
                n = cmd[pos + 1] + 1
                if op == 0x13:
                    self._clock_out(chip, cmd[pos + 2], n)
                    pos += 3
                else:
                    self.rx.append(self._clock_in(chip, n, rising=op == 0x22))
                    pos += 2
            elif op == 0x87:
                pos += 1
            else:
                raise ValueError(f"fake MPSSE (Microwire): unexpected command 0x{op:02X} at {pos}")
        return len(cmd)

    def _sk(self, chip: MicrowireChip, di: int) -> int | None:
        """One SK pulse with DI at ``di``; DO before the edge (None: nobody drives it)."""
        iface = self.iface
        if not iface.chip_reachable():
            return None
        return chip.pulse(di)

    def _clock_out(self, chip: MicrowireChip, byte: int, n: int) -> None:
        for i in range(n):
            di = (byte >> (7 - i)) & 1
            self.iface.outputs = (self.iface.outputs & ~DI_BIT) | (DI_BIT if di else 0)
            self._sk(chip, di)

    def _clock_in(self, chip: MicrowireChip, n: int, *, rising: bool) -> int:
        value = 0
        di = 1 if self.iface.outputs & DI_BIT else 0
        for _ in range(n):
            before = self._sk(chip, di)
            level = before if rising else (chip.do_level() if self.iface.chip_reachable() else None)
            value = (value << 1) | (1 if level is None else level)
        return value

    # -- SWD: pin-level ---------------------------------------------------------------

    def _swd(self, cmd: bytes, front: SwdBitFront) -> int:
        iface = self.iface
        pos = 0
        while pos < len(cmd):
            op = cmd[pos]
            if op in (0x80, 0x82):
                shift = 0 if op == 0x80 else 8
                iface.set_pins(cmd[pos + 1] << shift, cmd[pos + 2] << shift, 0xFF << shift)
                pos += 3
            elif op == 0x81:
                self.rx.append(self._pins_low(front))
                pos += 1
            elif op in (0x19, 0x28, 0x2C):  # bytes, LSB first
                n = (cmd[pos + 1] | cmd[pos + 2] << 8) + 1
                pos += 3
                if op == 0x19:
                    for byte in cmd[pos : pos + n]:
                        for i in range(8):
                            self._swd_clock(front, out=(byte >> i) & 1)
                    pos += n
                else:
                    for _ in range(n):
                        value = 0
                        for i in range(8):
                            value |= self._swd_clock(front, rising=op == 0x28) << i
                        self.rx.append(value)
            elif op in (0x1B, 0x2A, 0x2E):  # bits (1-8), LSB first
                n = cmd[pos + 1] + 1
                if op == 0x1B:
                    for i in range(n):
                        self._swd_clock(front, out=(cmd[pos + 2] >> i) & 1)
                    pos += 3
                else:
                    value = 0
                    for _ in range(n):
                        value = (value >> 1) | self._swd_clock(front, rising=op == 0x2A) << 7
                    self.rx.append(value)
                    pos += 2
            elif op == 0x87:
                pos += 1
            else:
                raise ValueError(f"fake MPSSE (SWD): unexpected command 0x{op:02X} at {pos}")
        return len(cmd)

    def _host_swdio(self) -> int | None:
        """What ADBUS1 drives onto SWDIO through the resistor (None: it is an input)."""
        iface = self.iface
        return (iface.outputs >> 1) & 1 if iface.direction & SWDIO_OUT_PIN else None

    def _pins_low(self, front: SwdBitFront) -> int:
        swdio = front.line(self._host_swdio())
        return (self.iface.levels() & ~SWDIO_IN_PIN | (SWDIO_IN_PIN if swdio else 0)) & 0xFF

    def _swd_clock(self, front: SwdBitFront, *, out: int | None = None, rising: bool = True) -> int:
        """One SWCLK pulse; ``out``: the bit a write command puts on ADBUS1 first. The
        SWDIO level the host reads on the chosen edge."""
        iface = self.iface
        if out is not None:
            iface.outputs = (iface.outputs & ~SWDIO_OUT_PIN) | (SWDIO_OUT_PIN if out else 0)
        host = self._host_swdio()
        before = front.line(host)
        if iface.direction & SWCLK_PIN:  # SWCLK reaches the target only while driven
            front.rising_edge(host)
        return before if rising else front.line(host)

    def read_data_bytes(self, size: int, attempt: int = 1) -> bytearray:
        self.iface.transfer("in")
        out, self.rx = self.rx[:size], self.rx[size:]
        return bytearray(out)

    def _set_pins(self, value: int, direction: int, mask: int) -> None:
        iface = self.iface
        was_selected = self._frame is not None
        iface.set_pins(value, direction, mask)
        selected = bool(iface.direction & CS_BIT) and not iface.outputs & CS_BIT
        if selected and not was_selected:
            self._frame = (bytearray(), 0)
        elif was_selected and not selected:
            self._end_frame()

    def _write(self, data: bytes) -> None:
        assert self._frame is not None, "fake MPSSE: data clocked out with /CS high"
        buf, read_len = self._frame
        assert read_len == 0, "fake MPSSE: write after read inside one /CS frame"
        buf += data

    def _read(self, n: int) -> None:
        if self._frame is None:
            self.rx += b"\xff" * n
            return
        buf, read_len = self._frame
        self._frame = (buf, read_len + n)

    def _end_frame(self) -> None:
        assert self._frame is not None
        write, read_len = self._frame
        self._frame = None
        iface = self.iface
        if not write and not read_len:
            return
        iface.frames.append((bytes(write), read_len))
        spi_driven = iface.direction & SPI_OUT == SPI_OUT
        chip = iface.chip
        if spi_driven and iface.chip_reachable() and isinstance(chip, SpiNorChip):
            self.rx += chip.transaction(bytes(write), read_len)
        else:
            self.rx += b"\xff" * read_len


# -- GPIO ---------------------------------------------------------------------------


class FakeGpioPort:
    """pyftdi's SpiGpioPort / I2cGpioPort: GPIO outside the bus pins."""

    def __init__(self, controller: _FakeController) -> None:
        self.controller = controller

    def set_direction(self, pins: int, direction: int) -> None:
        ctrl = self.controller
        if pins & ctrl.bus_mask:
            raise ctrl.io_error(f"Cannot access {ctrl.kind} pins as GPIO")
        ctrl.gpio_dir = (ctrl.gpio_dir & ~pins) | (pins & direction)
        ctrl.gpio_mask = pins

    def write(self, value: int) -> None:
        ctrl = self.controller
        if value & ctrl.gpio_dir != value:
            raise ctrl.io_error(f"No such GPO pins: {ctrl.gpio_dir:04x}/{value:04x}")
        iface = ctrl.iface
        iface.transfer("out")  # pyftdi: read-modify-write, one write for GET + one for SET
        iface.transfer("in")
        iface.transfer("out")
        # Like pyftdi's write_gpio: the pins as read, the GPIOs replaced, written back
        # with the controller's whole direction (the bus pins become outputs again).
        data = (iface.levels() & ~ctrl.gpio_mask) | value
        iface.set_pins(data, ctrl.direction, 0xFFFF)

    def read(self, with_output: bool = False) -> int:
        ctrl = self.controller
        ctrl.iface.transfer("out")
        ctrl.iface.transfer("in")
        value = ctrl.iface.levels() & ctrl.gpio_mask
        return value if with_output else value & ~ctrl.gpio_dir


# -- controllers --------------------------------------------------------------------


class _FakeController:
    kind = "SPI"
    bus_mask = 0x0F
    bus_direction = SPI_OUT
    idle = CS_BIT

    def __init__(self, usb: FakeUsb) -> None:
        self.usb = usb
        self._iface: FakeInterface | None = None
        self._ftdi: FakeFtdi | None = None
        self.gpio_dir = 0
        self.gpio_mask = 0
        self.configure_args: dict[str, Any] = {}

    def io_error(self, text: str) -> Exception:
        return SpiIOError(text)

    @property
    def iface(self) -> FakeInterface:
        if self._iface is None or self._iface.owner is not self:
            raise FtdiError("Not connected")
        return self._iface

    def configure(self, url: str, **kwargs: Any) -> None:
        iface = self.usb.lookup(url)
        if iface.owner is not None:
            raise USBError("[Errno 16] Resource busy")
        iface.owner = self
        self._iface = iface
        self._ftdi = FakeFtdi(iface)
        self.configure_args = dict(kwargs)
        self.usb.opened_urls.append(url)
        iface.latency = kwargs.get("latency")
        direction = int(kwargs.get("direction", 0)) & ~self.bus_mask & 0xFFFF
        initial = int(kwargs.get("initial", 0)) & direction
        self.gpio_dir = direction
        self.gpio_mask = 0xFFFF & ~self.bus_mask
        iface.transfer("out")
        iface.set_pins(self.idle | initial, self.bus_direction | direction, 0xFFFF)
        iface.frequency = float(kwargs.get("frequency", 6e6))

    @property
    def ftdi(self) -> FakeFtdi:
        self.iface  # noqa: B018  (raises when closed)
        assert self._ftdi is not None
        return self._ftdi

    @property
    def frequency_max(self) -> float:
        return 30e6

    @property
    def direction(self) -> int:
        return self.bus_direction | self.gpio_dir

    def get_gpio(self) -> FakeGpioPort:
        self.iface  # noqa: B018
        return FakeGpioPort(self)

    def close(self, freeze: bool = False) -> None:
        if self._iface is not None and self._iface.owner is self:
            self._iface.owner = None
        self._iface = None


class FakeSpiController(_FakeController):
    """pyftdi.spi.SpiController(cs_count=1) as app.hal.ftdi uses it."""


class FakeI2cController(_FakeController):
    """pyftdi.i2c.I2cController as app.hal.ftdi uses it."""

    kind = "I2C"
    bus_mask = 0x07
    bus_direction = 0x03
    idle = 0x07

    def __init__(self, usb: FakeUsb) -> None:
        super().__init__(usb)
        self.retry_count = 3

    def io_error(self, text: str) -> Exception:
        return I2cIOError(text)

    def set_retry_count(self, count: int) -> None:
        self.retry_count = count

    def get_port(self, address: int) -> FakeI2cPort:
        self.iface  # noqa: B018
        return FakeI2cPort(self, address)


class FakeI2cPort:
    def __init__(self, controller: FakeI2cController, address: int) -> None:
        self.controller = controller
        self.address = address

    def _chip(self) -> I2cEepromChip:
        iface = self.controller.iface
        iface.transfer("out")
        iface.transfer("in")
        chip = iface.chip
        if not iface.chip_reachable() or not isinstance(chip, I2cEepromChip):
            raise I2cNackError("NACK from slave")
        return chip

    def write(self, out: bytes, relax: bool = True, start: bool = True) -> None:
        chip = self._chip()
        try:
            chip.write(self.address, bytes(out))
        except I2cNack as err:
            raise I2cNackError(str(err)) from None

    def exchange(
        self, out: bytes = b"", readlen: int = 0, relax: bool = True, start: bool = True
    ) -> bytes:
        chip = self._chip()
        try:
            if out:
                chip.write(self.address, bytes(out))
            return chip.read(self.address, readlen)
        except I2cNack as err:
            raise I2cNackError(str(err)) from None

    def read(self, readlen: int = 0, relax: bool = True, start: bool = True) -> bytes:
        return self.exchange(b"", readlen, relax, start)

    def poll(self, write: bool = False, relax: bool = True, start: bool = True) -> bool:
        try:
            chip = self._chip()
        except I2cNackError:
            return False
        return chip.answers(self.address) and not chip.busy()
