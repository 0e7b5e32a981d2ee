"""A fake CH341A at the USB packet level, wired to the simulator's chip models.

Written from the protocol facts (flashrom's programmers/ch341a_spi.c, WCH's CH341DLL as
quoted in its C and Python ports), not from app.hal.ch341a*: it decodes the bulk OUT
stream itself, one 32-byte USB packet at a time, as the chip does:

- 0xAB UIO stream: 0x80|v sets pins D0-D5 (D0 is /CS, active low), 0x40|m their
  directions, 0xC0|n waits n us, 0x20 ends the packet's stream;
- 0xA8 SPI stream: every byte after the command is clocked out LSB first and the byte
  clocked in (LSB first) is answered, one IN packet per OUT packet, while D0-D5 are
  driven; with /CS high nothing answers (0xFF);
- 0xAA I2C stream: 0x74 START, 0x75 STOP, 0x80 + byte writes it and answers its
  acknowledge (bit 7 set: none), 0x80|n + n bytes writes them unanswered, 0xC0|n reads n
  bytes acknowledging each, 0xC0 reads one without, 0x60|s sets the speed, 0x00 ends.

The chip models are half duplex (``transaction(write, read_len)``), so a /CS frame is
handed to the model when /CS rises: bytes from the last one that is not 0xFF on are the
read phase (the host clocks 0xFF to read), except for opcode 0x02 (WRITE / PAGE PROGRAM
of 25xx EEPROMs and SPI NOR), which never reads. Answers of a frame's packets are queued
then, in order.

Every board counts its bulk OUT and IN transfers; faults: unplug (every transfer fails),
``fail_after`` (the link fails after N more transfers, the board back in its power-on
state), ``drop_reply_bytes`` (the next
answer comes back short).
"""

from __future__ import annotations

import threading
from collections import deque

from ftdi_fake import FakeClock

from app.hal.sim.i2c_eeprom_chip import I2cEepromChip
from app.hal.sim.spi_eeprom_chip import SpiEepromChip
from app.hal.sim.spi_nor_chip import SpiNorChip
from app.hal.wch_usb import WchBackend, WchDevice

USB_PACKET = 32


class FakeUsbError(IOError):
    """What pyusb's USBError stands for here."""


#: every byte value with its bits in the other order (the wire is LSB first)
_BITSWAP = bytes(int(f"{byte:08b}"[::-1], 2) for byte in range(256))


class FakeCh341:
    """One CH341A board with a part in its socket (or none)."""

    def __init__(
        self,
        usb: FakeCh341Usb,
        bus: int,
        address: int,
        serial: str,
        chip: SpiNorChip | SpiEepromChip | I2cEepromChip | None,
    ) -> None:
        self.usb = usb
        self.bus, self.address, self.serial = bus, address, serial
        self.chip = chip
        self.plugged = True
        self.accessible = True
        self.opened = False
        self.fail_after: int | None = None
        self.drop_reply_bytes = 0
        self.read_timeout_s = 2.0  # real time a read waits for an answer that never comes
        self.bulk_out = self.bulk_in = 0
        self.packets_out = 0
        self.pins = 0x00
        self.direction = 0x00
        self.i2c_speed: int | None = None
        self.frames: list[bytes] = []  # every /CS frame, as the part saw it
        self.threads: set[str] = set()
        self._frame = bytearray()
        self._pending: list[int] = []  # SPI packet sizes answered when the frame ends
        self._answers: deque[bytes] = deque()
        self._cond = threading.Condition()
        # I2C transaction state
        self._i2c_expect_address = False
        self._i2c_address: int | None = None  # 7-bit, None when not acknowledged
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

    def write(self, data: bytes) -> None:
        with self._cond:  # one transfer at a time, as the chip takes them
            self._usb()
            self.bulk_out += 1
            self.threads.add(threading.current_thread().name)
            for pos in range(0, len(data), USB_PACKET):
                self.packets_out += 1
                self._packet(bytes(data[pos : pos + USB_PACKET]))

    def read(self, size: int) -> bytes:
        with self._cond:
            if not self._cond.wait_for(
                lambda: bool(self._answers) or not self.plugged, self.read_timeout_s
            ):
                raise FakeUsbError("[Errno 110] Operation timed out")
            self._usb()
            self.bulk_in += 1
            answer = self._answers.popleft()
            if len(answer) > size:
                self._answers.appendleft(answer[size:])
                answer = answer[:size]
            return answer

    def close(self) -> None:
        self.opened = False

    def _answer(self, data: bytes) -> None:
        if self.drop_reply_bytes and data:
            cut = min(self.drop_reply_bytes, len(data))
            self.drop_reply_bytes -= cut
            data = data[:-cut]
        if data:
            self._answers.append(data)
            self._cond.notify_all()

    # -- the command stream -------------------------------------------------------------

    def _packet(self, packet: bytes) -> None:
        command, body = packet[0], packet[1:]
        if command == 0xAB:
            self._uio(body)
        elif command == 0xA8:
            self._spi(body)
        elif command == 0xAA:
            self._i2c(body)
        else:
            raise AssertionError(f"the fake CH341A got an unknown command 0x{command:02X}")

    def _uio(self, body: bytes) -> None:
        for byte in body:
            kind = byte & 0xC0
            if byte == 0x20:
                return
            if kind == 0x80:
                was_selected = self._selected()
                self.pins = byte & 0x3F
                if was_selected and not self._selected():
                    self._end_frame()
            elif kind == 0x40:
                self.direction = byte & 0x3F
            elif kind == 0xC0:
                self.usb.clock.sleep((byte & 0x3F) * 1e-6)
            else:
                raise AssertionError(f"UIO stream byte 0x{byte:02X} is not a command")
        raise AssertionError("UIO stream packet without its end command 0x20")

    def _selected(self) -> bool:
        return self.direction & 0x01 == 0x01 and not self.pins & 0x01

    def _spi(self, body: bytes) -> None:
        if not self._selected():
            self._answer(b"\xff" * len(body))
            return
        self._frame += body.translate(_BITSWAP)
        self._pending.append(len(body))

    def _end_frame(self) -> None:
        frame = bytes(self._frame)
        self._frame.clear()
        miso = self._run_frame(frame) if frame else b""
        pos = 0
        for size in self._pending:
            self._answer(miso[pos : pos + size].translate(_BITSWAP))
            pos += size
        self._pending.clear()

    def _run_frame(self, frame: bytes) -> bytes:
        self.frames.append(frame)
        chip = self.chip
        if chip is None or isinstance(chip, I2cEepromChip):
            return b"\xff" * len(frame)
        if frame[0] == 0x02:
            chip.transaction(frame, 0)
            return b"\xff" * len(frame)
        split = max(1, len(frame.rstrip(b"\xff")))
        data = chip.transaction(frame[:split], len(frame) - split)
        return b"\xff" * split + data

    # -- I2C --------------------------------------------------------------------------

    def _i2c(self, body: bytes) -> None:
        answer = bytearray()
        pos = 0
        while pos < len(body):
            byte = body[pos]
            pos += 1
            if byte == 0x00:
                break
            if byte == 0x74:
                self._i2c_end()
                self._i2c_expect_address = True
            elif byte == 0x75:
                self._i2c_end()
            elif byte & 0xF8 == 0x60:
                self.i2c_speed = byte & 0x03
            elif byte & 0xC0 == 0x80:
                n = byte & 0x3F
                if n == 0:
                    answer.append(0x00 if self._i2c_out(body[pos]) else 0x80)
                    pos += 1
                else:
                    for value in body[pos : pos + n]:
                        self._i2c_out(value)
                    pos += n
            elif byte & 0xC0 == 0xC0:
                answer += self._i2c_in(max(1, byte & 0x3F))
            else:
                raise AssertionError(f"I2C stream byte 0x{byte:02X} is not a command")
        else:
            raise AssertionError("I2C stream packet without its end command 0x00")
        self._answer(bytes(answer))

    def _i2c_out(self, value: int) -> bool:
        """Clock a byte out; True when the part acknowledges it."""
        chip = self.chip
        if self._i2c_expect_address:
            self._i2c_expect_address = False
            address, self._i2c_reading = value >> 1, bool(value & 1)
            acked = isinstance(chip, I2cEepromChip) and chip.answers(address) and not chip.busy()
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
        )

    def unplug(self) -> None:
        with self._cond:
            self.plugged = False
            self._answers.clear()
            self._cond.notify_all()

    def replug(self, address: int) -> None:
        """Plug the board back in; it comes back at a new USB address."""
        self.address = address
        self.plugged = True
        self._reset()

    def _reset(self) -> None:
        """Power-on state: pins released, no frame under way, no answers queued."""
        self.pins = self.direction = 0
        self._frame.clear()
        self._pending.clear()
        self._answers.clear()


class FakeCh341Usb:
    """The host's USB bus with fake CH341A boards; ``backend()`` is the seam to inject."""

    def __init__(self) -> None:
        self.boards: list[FakeCh341] = []
        self.clock = FakeClock()

    def add(
        self,
        chip: SpiNorChip | SpiEepromChip | I2cEepromChip | None = None,
        *,
        bus: int = 1,
        address: int = 5,
        serial: str = "",
    ) -> FakeCh341:
        board = FakeCh341(self, bus, address, serial, chip)
        self.boards.append(board)
        return board

    def find_devices(self) -> list[WchDevice]:
        return [board.info() for board in self.boards if board.plugged]

    def open(self, device: WchDevice) -> FakeCh341:
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
