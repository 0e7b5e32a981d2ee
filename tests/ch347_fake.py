"""A fake CH347 at the USB packet level, wired to the simulator's chip models.

Written from the protocol facts (flashrom's programmers/ch347_spi.c; WCH's ch34x_mphsi
Linux driver; Frank Zago's ch347 driver for the I2C stream), not from app.hal.ch347* or
the WCH modules they share: only the seam types (WchBackend, WchDevice) come from the
app. It decodes every bulk OUT transfer as the chip does:

- a framed command ``[command, length (16 bits, little endian), payload]``, one per USB
  write, at most 510 bytes:
  - 0xC0 SPI configuration (26 bytes: divisor in byte 12 bits 5:3, CPOL byte 6 bit 1,
    CPHA byte 8 bit 0, LSB first byte 14 bit 7, CS polarities byte 21 bits 7/6),
    answered ``[0xC0, 1, 0, 0]``;
  - 0xC1 chip selects (10 bytes: byte 0 CS1, byte 5 CS2; 0x80 change, 0x40 deassert);
  - 0xC4 write (answered ``[0xC4, 1, 0, 0]``), 0xC3 read (a 32-bit count, answered in
    packets ``[0xC3, length, data]`` of at most 507 bytes), 0xC2 full duplex (answered
    ``[0xC2, length, the bytes clocked in]``);
  - 0xE2 function switch (the CH347F's I2C pins need bytes 2-3 = 0x81), answered
    ``[0xE2, 1, 0, 0]``;
- an I2C stream (first byte 0xAA), not framed: one stream per 512-byte USB packet, ended
  by 0x00 and padded with 0x00; 0x74 START, 0x75 STOP, 0x60|s speed, 0x80|n + n bytes
  (each answered by its acknowledge: 0x01 acknowledged, 0x00 not), a bare 0x80 + one byte
  (answered likewise), 0xC0|n reads n bytes, a bare 0xC0 reads one.

A CH347T in mode 2 (product 0x55DC, HID reports on interface 1: nic3-14159/CH347-Research's
descriptor dump and report descriptor, i2cy/CH347-HIDAPI's framing) takes every OUT
transfer as one output report of at most 512 bytes, ``[length (16 bits, little endian),
packet, padding]``, and handles the packet as a mode-1 board handles a bulk write; each
answer goes back as one 512-byte input report framed the same way, zero padded. A report
whose length is over 510 or runs past its end is ignored (what the real chip does with one
is not known; ignoring it leaves the host waiting for an answer that never comes, the
worst a chip could do short of acting on garbage), and counted in ``ignored_reports``.

The chip models are half duplex (``transaction(write, read_len)``): a frame's written
bytes go to the part with the first read (0xC3) or when CS rises; a 0xC2 frame is split
as the CH341A fake splits one (bytes from the last one that is not 0xFF on are the read
phase; opcode 0x02 never reads).

Every board counts its OUT and IN transfers (bulk, or interrupt in mode 2) and keeps
their sizes; faults: unplug (every transfer fails), ``fail_after`` (the link fails after N
more transfers, the board back in its power-on state), ``drop_reply_bytes`` (the next
answer comes back short), ``garble_replies`` (the next answers carry a wrong command
byte), ``misreport_length`` (mode 2: the next input report's length field says this).
"""

from __future__ import annotations

import threading
from array import array
from collections import deque

from ftdi_fake import FakeClock

from app.hal.sim.i2c_eeprom_chip import I2cEepromChip
from app.hal.sim.spi_eeprom_chip import SpiEepromChip
from app.hal.sim.spi_nor_chip import SpiNorChip
from app.hal.wch_usb import WchBackend, WchDevice

CH347T = 0x55DB
CH347T_HID = 0x55DC  # mode 2
CH347F = 0x55DE
MAX_WRITE = 510
I2C_PACKET = 512
REPORT = 512  # mode 2: every input and output report

Chip = SpiNorChip | SpiEepromChip | I2cEepromChip

#: product -> {interface: (OUT endpoint, IN endpoint, the kernel driver Linux binds)}, from
#: the lsusb dumps (CH347-Research) and WCH's driver (the CH347F's interface 4)
INTERFACES = {
    CH347T: {1: (0x04, 0x84, "cdc_acm"), 2: (0x06, 0x86, "")},
    CH347T_HID: {0: (0x04, 0x84, "usbhid"), 1: (0x06, 0x86, "usbhid")},
    CH347F: {4: (0x06, 0x86, "")},
}


#: (CPOL, CPHA, LSB first) a 25xx memory answers in: SPI modes 0 and 3, MSB first (the
#: datasheets: data in on the rising edge, out on the falling edge, either clock idle level)
MEMORY_MODES = ((0, 0, False), (1, 1, False))


class FakeUsbError(IOError):
    """What pyusb's USBError stands for here."""


def _framed(code: int, data: bytes) -> bytes:
    return bytes((code, len(data) & 0xFF, len(data) >> 8)) + data


class FakeCh347:
    """One CH347 board with a part on one of its chip selects (or none)."""

    def __init__(
        self,
        usb: FakeCh347Usb,
        bus: int,
        address: int,
        serial: str,
        chip: Chip | None,
        product: int,
        chip_cs: int,
    ) -> None:
        self.usb = usb
        self.bus, self.address, self.serial = bus, address, serial
        self.chip = chip
        self.product = product
        self.chip_cs = chip_cs
        self.plugged = True
        self.accessible = True
        self.opened = False
        self.fail_after: int | None = None
        self.drop_reply_bytes = 0
        self.garble_replies = 0
        self.read_timeout_s = 2.0  # real time a read waits for an answer that never comes
        self.bulk_out = self.bulk_in = 0
        self.out_sizes: set[int] = set()  # the size of every OUT transfer
        self.in_sizes: set[int] = set()
        self.misreport_length: int | None = None
        self.ignored_reports = 0
        self.divisors: list[int] = []  # the clock divisor of every 0xC0 received
        self.mode: tuple[int, int, bool] | None = None  # CPOL, CPHA, LSB first
        self.i2c_speed: int | None = None
        self.frames: list[tuple[int, bytes]] = []  # (CS, bytes written) of every frame
        self._lock = threading.Condition()
        self._answers: deque[bytes] = deque()
        self._reset()

    def _reset(self) -> None:
        """Power-on state."""
        self.selected = {1: False, 2: False}
        self.i2c_switched = False
        self.divisor: int | None = None
        self._written = bytearray()
        self._consumed = False  # the frame's bytes went to the part with a read
        self._answers.clear()
        self._i2c_expect_address = False
        self._i2c_address: int | None = None
        self._i2c_reading = False
        self._i2c_data = bytearray()

    # -- USB --------------------------------------------------------------------------

    def _usb(self) -> None:
        if not self.plugged:
            raise FakeUsbError("[Errno 19] No such device (it may have been disconnected)")
        if self.fail_after is not None:
            if self.fail_after <= 0:
                self._reset()  # the board dropped off the bus and came back blank
                raise FakeUsbError("[Errno 5] Input/Output Error")
            self.fail_after -= 1
        self.usb.clock.tick()

    @property
    def hid(self) -> bool:
        return self.product == CH347T_HID

    def write(self, data: bytes) -> None:
        with self._lock:
            self._usb()
            self.bulk_out += 1
            data = bytes(data)
            self.out_sizes.add(len(data))
            packet = self._unwrap(data) if self.hid else data
            if packet is None:
                return
            if packet[:1] == b"\xaa":
                self._i2c_write(packet)
            else:
                self._command(packet)

    def _unwrap(self, report: bytes) -> bytes | None:
        """The packet of an output report; None when its length makes no sense."""
        assert len(report) <= REPORT, f"a {len(report)}-byte transfer to a 512-byte report"
        length = int.from_bytes(report[:2], "little")
        if len(report) < 2 or length > REPORT - 2 or 2 + length > len(report):
            self.ignored_reports += 1
            return None
        return report[2 : 2 + length]

    def read(self, size: int) -> bytes:
        with self._lock:
            if not self._lock.wait_for(
                lambda: bool(self._answers) or not self.plugged, self.read_timeout_s
            ):
                raise FakeUsbError("[Errno 110] Operation timed out")
            self._usb()
            self.bulk_in += 1
            answer = self._answers.popleft()
            if self.hid:
                answer = self._report(answer)
            if len(answer) > size:
                raise FakeUsbError("[Errno 75] Overflow")  # as libusb reports it
            self.in_sizes.add(len(answer))
            return answer

    def _report(self, packet: bytes) -> bytes:
        """An input report carrying ``packet``."""
        assert len(packet) <= REPORT - 2, f"a {len(packet)}-byte answer for one report"
        length, self.misreport_length = self.misreport_length, None
        header = (len(packet) if length is None else length).to_bytes(2, "little")
        return (header + packet).ljust(REPORT, b"\x00")

    def close(self) -> None:
        self.opened = False

    def _answer(self, data: bytes) -> None:
        if self.garble_replies:
            self.garble_replies -= 1
            data = bytes((data[0] ^ 0x55,)) + data[1:]
        if self.drop_reply_bytes:
            cut = min(self.drop_reply_bytes, len(data))
            self.drop_reply_bytes -= cut
            data = data[:-cut]
        if data:
            self._answers.append(data)
            self._lock.notify_all()

    # -- framed commands ---------------------------------------------------------------

    def _command(self, data: bytes) -> None:
        assert len(data) <= MAX_WRITE, f"a {len(data)}-byte USB write (the chip takes 510)"
        assert len(data) >= 3, f"a {len(data)}-byte command"
        code, length, payload = data[0], data[1] | data[2] << 8, data[3:]
        assert len(payload) == length, f"command 0x{code:02X}: {len(payload)} bytes, says {length}"
        if code == 0xC0:
            self._configure(payload)
        elif code == 0xC1:
            self._chip_selects(payload)
        elif code == 0xC4:
            self._spi_write(payload)
        elif code == 0xC3:
            assert length == 4
            self._spi_read(int.from_bytes(payload, "little"))
        elif code == 0xC2:
            self._spi_duplex(payload)
        elif code == 0xE2:
            assert length == 8
            self.i2c_switched = payload[2] == payload[3] == 0x81
            self._answer(_framed(0xE2, b"\x00"))
        else:
            raise AssertionError(f"the fake CH347 got an unknown command 0x{code:02X}")

    def _configure(self, payload: bytes) -> None:
        assert len(payload) == 26
        # the bytes every driver sets: master mode, software CS, CRC polynomial
        assert (payload[2], payload[3], payload[11], payload[16]) == (4, 1, 2, 7), payload.hex()
        assert payload[21] & 0xC0 == 0, "chip selects must be active low"
        self.divisor = (payload[12] >> 3) & 7
        self.divisors.append(self.divisor)
        self.mode = ((payload[6] >> 1) & 1, payload[8] & 1, bool(payload[14] & 0x80))
        self._answer(_framed(0xC0, b"\x00"))

    def _chip_selects(self, payload: bytes) -> None:
        assert len(payload) == 10
        for cs, offset in ((1, 0), (2, 5)):
            control = payload[offset]
            if not control & 0x80:
                continue  # this line is left as it is
            select = not control & 0x40
            if self.selected[cs] and not select:
                self._end_frame(cs)
            if select and not self.selected[cs]:
                self._written.clear()
                self._consumed = False
            self.selected[cs] = select

    def _part(self) -> SpiNorChip | SpiEepromChip | None:
        """The SPI part when its chip select is the one asserted."""
        chip = self.chip
        spi_part = chip if isinstance(chip, SpiNorChip | SpiEepromChip) else None
        return spi_part if self.selected[self.chip_cs] and self.divisor is not None else None

    def _spi_write(self, payload: bytes) -> None:
        assert not self._consumed, "a write after the frame's read"
        self._written += payload
        self._answer(_framed(0xC4, b"\x00"))

    def _spi_read(self, count: int) -> None:
        part = self._part()
        written = bytes(self._written)
        if part is not None and self.mode in MEMORY_MODES:
            data = part.transaction(written, count)
        else:
            data = b"\xff" * count
        self._record(written)
        self._consumed = True
        for pos in range(0, len(data), MAX_WRITE - 3):
            self._answer(_framed(0xC3, data[pos : pos + MAX_WRITE - 3]))

    def _spi_duplex(self, payload: bytes) -> None:
        assert not self._written and not self._consumed, "0xC2 inside a 0xC4 frame"
        part = self._part()
        miso = b"\xff" * len(payload)
        if part is not None and self.mode in MEMORY_MODES:
            if payload[0] == 0x02:
                part.transaction(payload, 0)
            else:
                split = max(1, len(payload.rstrip(b"\xff")))
                miso = b"\xff" * split + part.transaction(payload[:split], len(payload) - split)
        self._record(payload)
        self._consumed = True
        self._answer(_framed(0xC2, miso))

    def _record(self, written: bytes) -> None:
        cs = next((cs for cs, on in self.selected.items() if on), 0)
        self.frames.append((cs, written))

    def _end_frame(self, cs: int) -> None:
        if self._written and not self._consumed:
            part = self._part() if cs == self.chip_cs else None
            if part is not None and self.mode in MEMORY_MODES:
                part.transaction(bytes(self._written), 0)
            self._record(bytes(self._written))
        self._written.clear()
        self._consumed = False

    # -- I2C --------------------------------------------------------------------------

    def _i2c_write(self, data: bytes) -> None:
        answer = bytearray()
        for pos in range(0, len(data), I2C_PACKET):
            packet = data[pos : pos + I2C_PACKET]
            before = len(answer)
            answer += self._i2c_packet(packet)
            assert len(answer) - before < I2C_PACKET, "a packet asking for 512 answers"
        for pos in range(0, len(answer), I2C_PACKET):  # answered a USB packet at a time
            self._answer(bytes(answer[pos : pos + I2C_PACKET]))

    def _i2c_packet(self, packet: bytes) -> bytes:
        assert packet[0] == 0xAA, "an I2C packet that does not start a stream"
        answer = bytearray()
        pos = 1
        while pos < len(packet):
            byte = packet[pos]
            pos += 1
            if byte == 0x00:
                assert not packet[pos:].strip(b"\x00"), "bytes after the end of a stream"
                return bytes(answer)
            if byte == 0x74:
                self._i2c_end()
                self._i2c_expect_address = True
            elif byte == 0x75:
                self._i2c_end()
            elif byte & 0xF0 == 0x60:
                self.i2c_speed = byte & 0x0F
            elif byte & 0xC0 == 0x80:
                n = max(1, byte & 0x3F)
                run = packet[pos : pos + n]
                assert len(run) == n, "an OUT run past the end of its packet"
                pos += n
                answer += bytes(0x01 if self._i2c_out(value) else 0x00 for value in run)
            elif byte & 0xC0 == 0xC0:
                answer += self._i2c_in(max(1, byte & 0x3F))
            else:
                raise AssertionError(f"I2C stream byte 0x{byte:02X} is not a command")
        raise AssertionError("I2C stream packet without its end command 0x00")

    def _i2c_out(self, value: int) -> bool:
        """Clock a byte out; True when the part acknowledges it."""
        chip = self.chip
        wired = self.product != CH347F or self.i2c_switched
        if self._i2c_expect_address:
            self._i2c_expect_address = False
            address, self._i2c_reading = value >> 1, bool(value & 1)
            acked = (
                wired
                and isinstance(chip, I2cEepromChip)
                and chip.answers(address)
                and not chip.busy()
            )
            self._i2c_address = address if acked else None
            self._i2c_data.clear()
            return acked
        if self._i2c_address is None or self._i2c_reading:
            return False
        self._i2c_data.append(value)
        return True

    def _i2c_in(self, n: int) -> bytes:
        chip = self.chip
        if self._i2c_address is None or not self._i2c_reading:
            return b"\xff" * n
        assert isinstance(chip, I2cEepromChip)
        return chip.read(self._i2c_address, n)

    def _i2c_end(self) -> None:
        """STOP or a repeated START: a write addressed to the part takes effect."""
        chip = self.chip
        if self._i2c_address is not None and not self._i2c_reading and self._i2c_data:
            assert isinstance(chip, I2cEepromChip)
            chip.write(self._i2c_address, bytes(self._i2c_data))
        self._i2c_address = None
        self._i2c_data.clear()

    # -- plugging -----------------------------------------------------------------------

    def info(self) -> WchDevice:
        return WchDevice(
            self.bus,
            self.address,
            self.serial,
            self.accessible,
            None if self.accessible else "permission denied",
            self.product,
        )

    def unplug(self) -> None:
        with self._lock:
            self.plugged = False
            self._answers.clear()
            self._lock.notify_all()

    def replug(self, address: int) -> None:
        """Plug the board back in; it comes back at a new USB address."""
        with self._lock:
            self.address = address
            self.plugged = True
            self._reset()


class PyusbDevice:
    """A board as pyusb's ``usb.core.Device`` shows it, for tests of the pyusb backend
    itself (below the seam): a transfer must go to an endpoint of an interface that was
    claimed and that no kernel driver holds, as libusb requires."""

    def __init__(self, board: FakeCh347) -> None:
        self.board = board
        self.idVendor, self.idProduct = 0x1A86, board.product
        self.bus, self.address = board.bus, board.address
        self.iSerialNumber = 3 if board.serial else 0
        layout = INTERFACES[board.product]
        self.drivers = {n: driver for n, (_o, _i, driver) in layout.items() if driver}
        self.claimed: set[int] = set()
        self.endpoints: set[int] = set()  # every endpoint a transfer went to

    def is_kernel_driver_active(self, interface: int) -> bool:
        return interface in self.drivers

    def detach_kernel_driver(self, interface: int) -> None:
        del self.drivers[interface]

    def get_active_configuration(self) -> int:
        return 1

    def _use(self, endpoint: int) -> None:
        layout = INTERFACES[self.board.product]
        (number,) = [n for n, (out, inn, _d) in layout.items() if endpoint in (out, inn)]
        assert number in self.claimed, f"endpoint 0x{endpoint:02X}: interface {number} unclaimed"
        assert number not in self.drivers, f"interface {number} is held by a kernel driver"
        self.endpoints.add(endpoint)

    def write(self, endpoint: int, data: bytes, timeout: int) -> int:
        assert not endpoint & 0x80, f"a write to IN endpoint 0x{endpoint:02X}"
        self._use(endpoint)
        self.board.write(bytes(data))
        return len(data)

    def read(self, endpoint: int, size: int, timeout: int) -> array[int]:
        assert endpoint & 0x80, f"a read from OUT endpoint 0x{endpoint:02X}"
        self._use(endpoint)
        return array("B", self.board.read(size))


class FakeCh347Usb:
    """The host's USB bus with fake CH347 boards; ``backend()`` is the seam to inject."""

    def __init__(self) -> None:
        self.boards: list[FakeCh347] = []
        self.clock = FakeClock()

    def add(
        self,
        chip: Chip | None = None,
        *,
        bus: int = 1,
        address: int = 5,
        serial: str = "",
        product: int = CH347T,
        chip_cs: int = 1,
    ) -> FakeCh347:
        board = FakeCh347(self, bus, address, serial, chip, product, chip_cs)
        self.boards.append(board)
        return board

    def find_devices(self) -> list[WchDevice]:
        return [board.info() for board in self.boards if board.plugged]

    def open(self, device: WchDevice) -> FakeCh347:
        for board in self.boards:
            if board.plugged and (board.bus, board.address) == (device.bus, device.address):
                board.opened = True
                return board
        raise FakeUsbError(f"no device at {device.bus}:{device.address}")

    def backend(self) -> WchBackend:
        return WchBackend(
            find_devices=self.find_devices,
            open=self.open,
            link_errors=(FakeUsbError,),
            sleep=self.clock.sleep,
            now=self.clock.now,
        )
