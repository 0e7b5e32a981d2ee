"""A fake CMSIS-DAP probe at the USB packet level, with a simulated target behind it.

Written from ARM's CMSIS-DAP specification (Documentation/Doxygen/src/ref_dap.txt of
github.com/ARM-software/CMSIS-DAP) and ADIv5, not from app.hal.cmsis_dap*, app.hal.swd
or app.hal.debug_port: it decodes every command packet itself and does the probe
firmware's job against a SimSwdTarget through the target's SWD packet interface:

- DAP_Info (0x00) ids 0x01-0x04, 0x09, 0xF0 (capabilities: SWD), 0xFE (packet count, a
  BYTE), 0xFF (packet size, a SHORT); unknown ids answer length 0;
- DAP_HostStatus 0x01, DAP_Connect 0x02 (port 0 or 1 -> SWD), DAP_Disconnect 0x03,
  DAP_TransferConfigure 0x04 (idle BYTE, WAIT retries SHORT, match retries SHORT),
  DAP_WriteABORT 0x08, DAP_SWJ_Pins 0x10 (nRESET = bit 7), DAP_SWJ_Clock 0x11,
  DAP_SWJ_Sequence 0x12 (1..256 bits, 0 = 256, LSB first): the line as the target sees
  it, >= 50 ones then a 0 is a line reset, and the 16 bits from that 0 on are handed to
  the target as a sequence (the JTAG-to-SWD switch); a transfer ends that;
- DAP_Transfer 0x05: request bits APnDP, RnW, A2, A3, value match (bit 4, reads),
  match mask (bit 5, writes); AP reads are posted (each AP read returns the previous
  one's value; a run ends with DP RDBUFF 0xC); the last write of a batch is checked with
  an RDBUFF read; WAIT is retried as configured; a match read is read again until
  value & mask == match or the match retries run out (response bit 4); ACK in bits 2:0,
  bit 3 for a parity (protocol) error; the answer: count executed, response, words read;
- DAP_TransferBlock 0x06: count SHORT, one request byte, the words; answer count SHORT,
  response byte, words read;
- commands it does not know answer 0xFF.

Variants: v1 (HID: 64-byte reports both ways, every OUT report exactly 64 bytes, one
command buffered) and v2 (bulk: packets up to 512 bytes, answers not padded, packet
count 4: up to 4 commands may be written before the first answer is read; a fifth would
stall the OUT endpoint, which shows here as a timeout). Faults: unplug (every transfer
fails), ``fail_after`` (unplugged after N more transfers), ``garble_next`` (the next
answer's first byte is wrong), ``cut_next`` (the next answer is cut to N bytes), ``mute``
(hung: commands taken, no answers, so every read times out).
Counters: ``usb_out`` / ``usb_in`` transfers, ``commands`` per command byte.
"""

from __future__ import annotations

import struct
from collections import Counter, deque
from dataclasses import dataclass

from app.hal.sim.swd_target import SimSwdTarget

_OK, _WAIT, _FAULT = 1, 2, 4
_PARITY_ERROR, _MISMATCH = 0x08, 0x10


class FakeUsbError(IOError):
    """What pyusb's USBError stands for here."""


def _swd_request(req: int) -> int:
    """The ADIv5 packet request byte for a DAP transfer request's low four bits:
    start 1, APnDP, RnW, A2, A3, even parity of those four, stop 0, park 1."""
    body = req & 0x0F
    return 0x81 | (body << 1) | ((bin(body).count("1") & 1) << 5)


_RDBUFF_READ = 0x02 | 0x0C  # DP read, A[3:2] = 0xC


@dataclass(frozen=True)
class FakeProbeInfo:
    """How the fake shows itself on the bus (the test turns it into the backend's)."""

    vid: int
    pid: int
    bus: int
    address: int
    serial: str
    product: str
    version: int


class FakeDapProbe:
    """One probe; ``target`` is what its SWD lines are wired to (None: nothing)."""

    def __init__(
        self,
        serial: str,
        version: int,
        target: SimSwdTarget | None,
        *,
        bus: int = 1,
        address: int = 10,
        vid: int = 0x0D28,
        pid: int = 0x0204,
    ) -> None:
        self.serial, self.version, self.target = serial, version, target
        self.bus, self.address, self.vid, self.pid = bus, address, vid, pid
        self.packet_size = 64 if version == 1 else 512
        self.packet_count = 1 if version == 1 else 4
        self.plugged = True
        self.generation = 0  # bumped on every re-plug: old handles are dead
        self.fail_after: int | None = None
        self.garble_next = False
        self.mute = False
        self.cut_next: int | None = None
        self.usb_out = self.usb_in = 0
        self.commands: Counter[int] = Counter()
        self.clock_hz = 0
        self.nreset_low = False
        self.nreset_log: list[bool] = []  # True: driven low
        self.swd_packets = 0
        self.most_queued = 0  # the most commands written ahead of their answers
        self._power_on()

    def _power_on(self) -> None:
        self.connected = False
        self.wait_retries = 100
        self.match_retries = 0
        self.match_mask = 0
        self._answers: deque[bytes] = deque()
        self._ones = 0
        self._collect: list[int] | None = None

    @property
    def info(self) -> FakeProbeInfo:
        return FakeProbeInfo(
            self.vid,
            self.pid,
            self.bus,
            self.address,
            self.serial,
            f"Fake CMSIS-DAP v{self.version}",
            self.version,
        )

    def unplug(self) -> None:
        self.plugged = False

    def plug(self) -> None:
        self.plugged, self.fail_after = True, None
        self.generation += 1
        self.address += 1  # a re-plug gets a new USB address
        self._power_on()

    # -- USB --------------------------------------------------------------------------

    def _usb(self, generation: int) -> None:
        if self.fail_after is not None:
            if self.fail_after <= 0:
                self.plugged = False
            self.fail_after -= 1
        if not self.plugged or generation != self.generation:
            raise FakeUsbError("[Errno 19] No such device (it may have been disconnected)")

    def write(self, data: bytes, generation: int) -> None:
        self._usb(generation)
        self.usb_out += 1
        if self.version == 1:
            assert len(data) == 64, f"a v1 HID report is 64 bytes, not {len(data)}"
        assert len(data) <= self.packet_size, f"{len(data)}-byte packet > {self.packet_size}"
        if self.mute:
            return  # hung firmware: takes commands, answers none
        if len(self._answers) >= self.packet_count:
            raise FakeUsbError("[Errno 110] Operation timed out (the probe's buffers are full)")
        answer = self._execute(bytes(data))
        assert len(answer) <= self.packet_size, f"{len(answer)}-byte answer > packet size"
        if self.garble_next:
            answer, self.garble_next = bytes([answer[0] ^ 0x5A]) + answer[1:], False
        if self.cut_next is not None:
            answer, self.cut_next = answer[: self.cut_next], None
        if self.version == 1:
            answer += bytes(64 - len(answer))
        self._answers.append(answer)
        self.most_queued = max(self.most_queued, len(self._answers))

    def read(self, generation: int) -> bytes:
        self._usb(generation)
        if not self._answers:
            raise FakeUsbError("[Errno 110] Operation timed out")
        self.usb_in += 1
        return self._answers.popleft()

    # -- commands ----------------------------------------------------------------------

    def _execute(self, packet: bytes) -> bytes:
        command = packet[0]
        self.commands[command] += 1
        if command != 0x12:
            self._ones, self._collect = 0, None  # anything else drives the line
        handler = {
            0x00: self._info,
            0x01: lambda p: b"\x01\x00",
            0x02: self._connect,
            0x03: self._disconnect,
            0x04: self._configure,
            0x05: self._transfer,
            0x06: self._transfer_block,
            0x08: self._write_abort,
            0x10: self._pins,
            0x11: self._clock,
            0x12: self._sequence,
        }.get(command)
        return b"\xff" if handler is None else handler(packet)

    def _info(self, packet: bytes) -> bytes:
        which = packet[1]
        strings = {
            0x01: "Socketeer tests",
            0x02: f"Fake CMSIS-DAP v{self.version}",
            0x03: self.serial,
            0x04: "1.3.0" if self.version == 1 else "2.1.0",
            0x09: "0.1",
        }
        if which in strings:
            raw = strings[which].encode() + b"\0"
        elif which == 0xF0:
            raw = b"\x01"  # SWD only
        elif which == 0xFE:
            raw = bytes([self.packet_count])
        elif which == 0xFF:
            raw = struct.pack("<H", self.packet_size)
        else:
            raw = b""
        return bytes([0x00, len(raw)]) + raw

    def _connect(self, packet: bytes) -> bytes:
        self.connected = packet[1] in (0, 1)
        return bytes([0x02, 1 if self.connected else 0])

    def _disconnect(self, packet: bytes) -> bytes:
        self.connected = False
        return b"\x03\x00"

    def _configure(self, packet: bytes) -> bytes:
        _, self.wait_retries, self.match_retries = struct.unpack_from("<BHH", packet, 1)
        return b"\x04\x00"

    def _pins(self, packet: bytes) -> bytes:
        output, select = packet[1], packet[2]
        if select & 0x80:
            self.nreset_low = not output & 0x80
            self.nreset_log.append(self.nreset_low)
        return bytes([0x10, 0x00 if self.nreset_low else 0x80])

    def _clock(self, packet: bytes) -> bytes:
        (hz,) = struct.unpack_from("<I", packet, 1)
        self.clock_hz = hz
        return bytes([0x11, 0x00 if hz else 0xFF])

    def _sequence(self, packet: bytes) -> bytes:
        count = packet[1] or 256
        data = packet[2 : 2 + (count + 7) // 8]
        for n in range(count):
            self._line_bit((data[n // 8] >> (n % 8)) & 1)
        return b"\x12\x00"

    def _line_bit(self, bit: int) -> None:
        if self.target is None:
            return
        if not bit and self._ones >= 50:
            self.target.line_reset()
            self._collect = []
        self._ones = self._ones + 1 if bit else 0
        if self._collect is not None:
            self._collect.append(bit)
            if len(self._collect) == 16:
                value = sum(b << n for n, b in enumerate(self._collect))
                self._collect = None
                if value:
                    self.target.sequence(value, 16)

    def _write_abort(self, packet: bytes) -> bytes:
        (value,) = struct.unpack_from("<I", packet, 2)
        ack, _ = self._swd(0x00, value)
        return bytes([0x08, 0x00 if ack == _OK else 0xFF])

    # -- SWD ---------------------------------------------------------------------------

    def _swd(self, req: int, word: int | None = None) -> tuple[int, int]:
        """One register transfer, WAIT retried: (response bits, value read)."""
        if self.target is None or not self.connected:
            return 0b111, 0
        read = bool(req & 0x02)
        for _ in range(self.wait_retries + 1):
            self.swd_packets += 1
            ack, data = self.target.packet(_swd_request(req), None if read else word)
            if ack != _WAIT:
                break
        if ack != _OK or not read:
            return ack, 0
        assert data is not None
        value = data & 0xFFFFFFFF
        if bin(value).count("1") & 1 != (data >> 32) & 1:
            return _PARITY_ERROR, 0
        return _OK, value

    def _transfer(self, packet: bytes) -> bytes:
        count, pos = packet[2], 3
        requests: list[tuple[int, int | None]] = []
        for _ in range(count):
            req = packet[pos]
            pos += 1
            word = None
            if not req & 0x02 or req & 0x10:  # writes, match masks and match values
                (word,) = struct.unpack_from("<I", packet, pos)
                pos += 4
            requests.append((req, word))
        data = bytearray()
        done, response = 0, _OK
        posted = check_write = False
        for req, word in requests:
            ap, read = req & 0x01, req & 0x02
            if posted and not (read and ap and not req & 0x10):
                response, value = self._swd(_RDBUFF_READ)  # the posted read's value
                if response != _OK:
                    break
                data += struct.pack("<I", value)
                posted = False
            if read and req & 0x10:
                response = self._match(req, word or 0)
            elif read and ap:
                response, value = self._swd(req)
                if response == _OK and posted:
                    data += struct.pack("<I", value)
                posted = True
            elif read:
                response, value = self._swd(req)
                if response == _OK:
                    data += struct.pack("<I", value)
            elif req & 0x20:
                self.match_mask = word or 0
            else:
                response, _ = self._swd(req, word)
                check_write = True
            if response != _OK:
                break
            if read:
                check_write = False
            done += 1
        if response == _OK and posted:
            response, value = self._swd(_RDBUFF_READ)
            if response == _OK:
                data += struct.pack("<I", value)
        elif response == _OK and check_write:
            response, _ = self._swd(_RDBUFF_READ)
        return bytes([0x05, done, response]) + bytes(data)

    def _match(self, req: int, match: int) -> int:
        """A value-match read: read until it matches or the retries run out."""
        for _ in range(self.match_retries + 1):
            response, value = self._swd(req)
            if response == _OK and req & 0x01:
                response, value = self._swd(_RDBUFF_READ)
            if response != _OK:
                return response
            if value & self.match_mask == match:
                return _OK
        return _OK | _MISMATCH

    def _transfer_block(self, packet: bytes) -> bytes:
        count, req = struct.unpack_from("<HB", packet, 2)
        ap, read = req & 0x01, req & 0x02
        data = bytearray()
        done, response = 0, _OK
        if read:
            if ap:
                response, _ = self._swd(req)  # posted
            while response == _OK and done < count:
                last = done == count - 1
                response, value = self._swd(_RDBUFF_READ if ap and last else req)
                if response == _OK:
                    data += struct.pack("<I", value)
                    done += 1
        else:
            words = struct.unpack_from(f"<{count}I", packet, 5)
            for word in words:
                response, _ = self._swd(req, word)
                if response != _OK:
                    break
                done += 1
            if response == _OK:
                response, _ = self._swd(_RDBUFF_READ)
        return struct.pack("<BHB", 0x06, done, response) + bytes(data)


class FakeDapHandle:
    """An opened probe: dead once the probe is re-plugged."""

    def __init__(self, probe: FakeDapProbe) -> None:
        self.probe = probe
        self.report_size = 64 if probe.version == 1 else None  # the HID report descriptor's
        self.packet_size = 64  # told by the host after DAP_Info (pyusb reads this much)
        self.generation = probe.generation
        self.closed = False

    def write(self, data: bytes) -> None:
        self.probe.write(data, self.generation)

    def read(self) -> bytes:
        answer = self.probe.read(self.generation)
        if len(answer) > self.packet_size:  # the host asked for less than came
            raise FakeUsbError("[Errno 75] Overflow")
        return answer

    def close(self) -> None:
        self.closed = True


class FakeDapUsb:
    """The USB bus with the fake probes on it."""

    def __init__(self, *probes: FakeDapProbe) -> None:
        self.probes = list(probes)
        self.opened: list[FakeDapHandle] = []

    def find(self) -> list[FakeProbeInfo]:
        return [p.info for p in self.probes if p.plugged]

    def open(self, bus: int, address: int) -> FakeDapHandle:
        for probe in self.probes:
            if probe.plugged and (probe.bus, probe.address) == (bus, address):
                handle = FakeDapHandle(probe)
                self.opened.append(handle)
                return handle
        raise FakeUsbError(f"no device at bus {bus} address {address}")
