"""Microwire (93xx EEPROMs) on an FTDI MPSSE interface: bit-level frames, CS active high.

The three-wire bus shares the SPI pins: SK on ADBUS0, DI of the part on ADBUS1 (MOSI),
DO of the part on ADBUS2 (MISO), CS on ADBUS3, which Microwire drives high to select.
A frame is built from MPSSE commands (FTDI AN108, "MPSSE command processor"):

- SET_BITS_LOW with CS low (held for tCSL: the part resets its instruction logic),
  then CS high;
- the instruction, padded at the front with zeros to whole bytes (a part ignores
  zeros before its start bit), clocked out with ``0x11`` (bytes out on the falling
  edge, MSB first: DI is stable at each rising edge, where the part samples it);
- the answer clocked in with ``0x20`` / ``0x22`` (bytes / bits in on the rising edge,
  MSB first): the part changes DO after a rising edge, so sampling at the next rising
  edge reads each bit a full clock period after it changed; the first bit read is the
  READ's dummy 0. A bit read returns its n bits in the low bits of one byte;
- CS low again, which starts a write's self-timed cycle.

Ready/busy (ReadyWait): CS low, CS high, ``GET_BITS_LOW`` (0x81) reads DO on ADBUS2:
0 busy, 1 ready. The first read rides in the same USB write as the instruction; a busy
part is polled again from the host on the learned schedule (app.hal.busy_poll).
"""

from __future__ import annotations

from collections.abc import Sequence

from app.hal.bus import MicrowireOp, MicrowireStep, ReadyWait
from app.hal.busy_poll import BusyPoller
from app.hal.errors import BusTimeout, LinkError
from app.hal.ftdi_spi import MAX_CLOCK_HZ, MpsseLink, set_mpsse_clock

SET_BITS_LOW = 0x80
GET_BITS_LOW = 0x81
SEND_IMMEDIATE = 0x87
WRITE_BYTES_NVE_MSB = 0x11
READ_BYTES_PVE_MSB = 0x20
READ_BITS_PVE_MSB = 0x22

SK, DI, DO, CS = 0x01, 0x02, 0x04, 0x08
DIRECTION = SK | DI | CS
MAX_CHUNK = 0x10000
READ_BUDGET = 512  # bytes read before more commands in the same USB write (TX FIFO)
CS_LOW_REPEAT = 3  # SET_BITS_LOW commands of CS low: tCSL (250 ns) at any MPSSE speed


class _Frames:
    """One USB write of Microwire frames and ready reads, and where each answer goes."""

    def __init__(self, gpio_low: int, direction: int) -> None:
        self.cmd = bytearray()
        self.reads: list[tuple[int, int, str]] = []  # (slot, bits, "data" | "ready")
        self.read_bytes = 0
        self.wire_bits = 0
        self._gpio = gpio_low & ~(SK | DI | DO | CS) & 0xFF
        self._direction = (direction | DIRECTION) & ~DO & 0xFF

    def __bool__(self) -> bool:
        return bool(self.cmd)

    def _pins(self, cs: bool) -> None:
        value = self._gpio | (CS if cs else 0)
        self.cmd += bytes((SET_BITS_LOW, value, self._direction))

    def _deselect(self) -> None:
        for _ in range(CS_LOW_REPEAT):
            self._pins(False)

    def frame(self, op: MicrowireOp, slot: int) -> None:
        self._deselect()
        self._pins(True)
        nbytes = -(-op.count // 8)
        out = op.bits.to_bytes(nbytes, "big")  # leading zeros: ignored before the start bit
        for pos in range(0, nbytes, MAX_CHUNK):
            chunk = out[pos : pos + MAX_CHUNK]
            n = len(chunk) - 1
            self.cmd += bytes((WRITE_BYTES_NVE_MSB, n & 0xFF, n >> 8)) + chunk
        whole, rest = divmod(op.read_bits, 8)
        for pos in range(0, whole, MAX_CHUNK):
            n = min(MAX_CHUNK, whole - pos) - 1
            self.cmd += bytes((READ_BYTES_PVE_MSB, n & 0xFF, n >> 8))
        if rest:
            self.cmd += bytes((READ_BITS_PVE_MSB, rest - 1))
        self._deselect()
        if op.read_bits:
            self.reads.append((slot, op.read_bits, "data"))
            self.read_bytes += whole + (1 if rest else 0)
        self.wire_bits += 8 * nbytes + op.read_bits

    def ready_read(self, slot: int) -> None:
        """CS low then high: DO shows ready/busy; read the pins; CS low again."""
        self._deselect()
        self._pins(True)
        self.cmd += bytes((GET_BITS_LOW,))
        self._deselect()
        self.reads.append((slot, 1, "ready"))
        self.read_bytes += 1

    def payload(self) -> bytes:
        return bytes(self.cmd) + (bytes((SEND_IMMEDIATE,)) if self.reads else b"")


class FtdiMicrowireBus:
    """MicrowireBus on one MPSSE interface (the module docstring has the frames)."""

    def __init__(self, link: MpsseLink, *, max_clock_hz: int) -> None:
        self.link = link
        self.max_clock_hz = max(1, min(max_clock_hz, MAX_CLOCK_HZ))
        self.clock_hz = 0
        self.usb_writes = 0
        self.poller = BusyPoller()

    def set_clock(self, hz: int) -> int:
        self.clock_hz = set_mpsse_clock(
            self.link, hz, self.max_clock_hz, self.clock_hz, "Microwire"
        )
        return self.clock_hz

    def transfer(self, ops: Sequence[MicrowireStep]) -> list[int]:
        if not self.clock_hz:
            self.set_clock(self.max_clock_hz)
        results = [0] * len(ops)
        with self.link.io("a Microwire transfer"):
            frames = self._new()
            for slot, op in enumerate(ops):
                if isinstance(op, ReadyWait):
                    frames.ready_read(slot)
                    self._flush(frames, results)
                    self._poll(op, slot, results)
                    frames = self._new()
                    continue
                frames.frame(op, slot)
                if frames.read_bytes > READ_BUDGET and slot + 1 < len(ops):
                    self._flush(frames, results)
                    frames = self._new()
            if frames:
                self._flush(frames, results)
        return results

    def _new(self) -> _Frames:
        gpio, direction = self.link.low_byte()
        return _Frames(gpio, direction)

    def _flush(self, frames: _Frames, results: list[int]) -> None:
        ftdi = self.link.ftdi()
        self.link.spi_driven()
        ftdi.write_data(frames.payload())
        self.usb_writes += 1
        if not frames.reads:
            return
        deadline = self.link.now() + frames.wire_bits / max(1, self.clock_hz) + 1.0
        data = bytearray()
        while len(data) < frames.read_bytes:
            data += ftdi.read_data_bytes(frames.read_bytes - len(data), 4)
            if len(data) < frames.read_bytes and self.link.now() > deadline:
                raise LinkError(
                    f"FTDI answered {len(data)} of {frames.read_bytes} bytes (USB transfer stalled)"
                )
        pos = 0
        for slot, bits, kind in frames.reads:
            if kind == "ready":
                results[slot] = 1 if data[pos] & DO else 0
                pos += 1
                continue
            whole, rest = divmod(bits, 8)
            value = int.from_bytes(data[pos : pos + whole], "big")
            pos += whole
            if rest:
                value = (value << rest) | (data[pos] & ((1 << rest) - 1))
                pos += 1
            results[slot] = value

    def _poll(self, op: ReadyWait, slot: int, results: list[int]) -> None:
        """The first read went with the instruction; poll on from the host while busy."""
        started = self.link.now()
        elapsed, polls = 0.0, 1
        while not results[slot]:
            if elapsed > op.timeout_s:
                raise BusTimeout(f"DO stayed low (busy) for {op.timeout_s * 1000:.0f} ms")
            elapsed = self.link.now() - started
            self.link.sleep(max(0.0, self.poller.next_poll(op, elapsed) - elapsed))
            elapsed = self.link.now() - started
            frames = self._new()
            frames.ready_read(slot)
            self._flush(frames, results)
            polls += 1
        self.poller.learn(op, elapsed, polls)
