"""Serial Wire Debug on an FTDI MPSSE interface (FT232H, FT2232H/FT4232H interface A or
B): the ADIv5 packet clocked bit by bit by the MPSSE, as an ``SwdWire`` (app.hal.swd).

Wiring (docs/swd/ftdi.md): ADBUS0 (TCK/SK) to SWCLK; ADBUS1 (TDI/DO) to SWDIO through
about 470 ohm; ADBUS2 (TDO/DI) straight to SWDIO; NRST on a spare GPIO pin, driven as an
open drain (low while asserted, an input otherwise, so the board's own reset circuit
keeps working); GND. ADBUS3 stays pyftdi's /CS output and is not used.

MPSSE commands (FTDI AN108, "Command Processor for MPSSE and MCU Host Bus Emulation
Modes"): 0x19/0x1B clock bytes/bits out on the falling edge, LSB first (the target
samples SWDIO on the rising edge); 0x28/0x2A clock bytes/bits in on the rising edge, LSB
first; a bit read of n bits returns them in the top n bits of its byte (OpenOCD's
src/jtag/drivers/mpsse.c reads them from bit offset 8 - n); 0x80/0x82 set the low/high
pins (value, direction); 0x87 sends the answers at once. ADBUS1 is an output only while
the host drives SWDIO: it is made an input before the target's turnaround and ACK, so
host and target never drive the line against each other through the resistor.

A packet is 46 clocks, as OpenOCD's ftdi driver clocks it (src/jtag/drivers/ftdi.c,
ftdi_swd_queue_cmd, OpenOCD 0.12.0): the 8-bit request out; for a read 38 bits in
(turnaround, ACK, 32 data bits, parity, turnaround); for a write 5 bits in (turnaround,
ACK, turnaround) and 33 out (data, parity). Each USB write ends with 8 idle clocks, so a
posted AP write is clocked through before SWCLK stops.

Overrun detection: the wire sets CTRL/STAT.ORUNDETECT (bit 0) in every CTRL/STAT write it
carries. The DP then expects the data phase even after a WAIT or FAULT (so the fixed
46-clock frame stays in step whatever the ACK), and once a packet has been refused it
answers FAULT to everything but IDCODE/CTRL-STAT reads and ABORT writes until ABORT's
ORUNERRCLR: nothing sent after a refused packet takes effect. That is what makes it safe
to post writes: with overrun detection on, a write is queued without waiting for its ACK
and answered OK; the queued writes go in the USB write of the next read (or of the flush
PacketLink makes at the end of a batch), and every ACK is checked when the answers come
back. A posted write answered WAIT is sent again, with the packets after it, once ABORT
has cleared the overrun; one answered FAULT fails the batch naming that write
(SwdPostedError). A read answered WAIT clears the overrun the same way before PacketLink
tries it again. A line reset (every connect) turns posting off until CTRL/STAT is written;
in between a write's ACK is read before the next packet goes, and a write's data phase
still follows its ACK whatever it is: DebugPort sends only ABORT (never answered WAIT,
IHI 0031E B4.3.2) and the CTRL/STAT write there.

USB round trips: FtdiSwdLink sends a whole batch (a block of memory read or written)
this way, reads included, so a round trip carries up to READ_BUDGET answer bytes (half
the FT232H's 1 KiB transmit FIFO): about 85 reads or 512 writes. Batches that poll a
flag (match reads) go a packet at a time, a round trip per read, writes still posted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from app.hal.errors import LinkError
from app.hal.ftdi_pins import Pin
from app.hal.ftdi_spi import MAX_CLOCK_HZ, Mpsse, MpsseLink, set_mpsse_clock
from app.hal.swd import (
    DP_RDBUFF,
    OK,
    WAIT,
    Access,
    PacketLink,
    SwdError,
    SwdPostedError,
    parity,
    request_byte,
)

WRITE_BYTES_NVE_LSB = 0x19
WRITE_BITS_NVE_LSB = 0x1B
READ_BYTES_PVE_LSB = 0x28
READ_BITS_PVE_LSB = 0x2A
SET_BITS_LOW = 0x80
SET_BITS_HIGH = 0x82
SEND_IMMEDIATE = 0x87

SWCLK, SWDIO_OUT, SWDIO_IN, CS = 0x01, 0x02, 0x04, 0x08
SWD_PINS = SWCLK | SWDIO_OUT | SWDIO_IN | CS
READ_BUDGET = 512  # answer bytes per USB write (the FT232H's transmit FIFO is 1 KiB)
LINE_RESET_ONES = 56  # "more than 50" clocks with SWDIO high
IDLE_AFTER_WRITE = bytes((WRITE_BITS_NVE_LSB, 7, 0x00))  # 8 idle clocks
ORUNDETECT = 1 << 0
ORUNERRCLR = 1 << 4
CTRL_STAT_WRITE = request_byte(ap=False, read=False, address=0x4)
ABORT_WRITE = request_byte(ap=False, read=False, address=0x0)


class SwdMpsseLink(MpsseLink, Protocol):
    """What the wire needs from its FTDI interface (ftdi.FtdiSite)."""

    def high_byte(self) -> tuple[int, int]:
        """(GPIO output values, direction) of ACBUS."""
        ...


@dataclass
class _Step:
    """Commands of one USB write; a packet's answer bytes and how to read them."""

    cmd: bytes
    answer: int = 0
    request: int | None = None
    posted: bool = False  # sent without waiting for its ACK: checked with the answers
    own: bool = False  # sent by the wire itself (ABORT of an overrun), not by the link
    reply: bytes = b""  # the answer bytes, once back


def _read_data(answer: bytes) -> int:
    """A read's data and parity (bit 32) from its 6 answer bytes: 4 bits (turnaround,
    ACK), 4 data bytes, 2 bits (parity, turnaround) in the top bits of the last."""
    return int.from_bytes(answer[1:5], "little") | (((answer[5] >> 6) & 1) << 32)


def _ack(step: _Step) -> int:
    """The ACK bits of a packet's answer: a write reads 5 bits (turnaround, ACK,
    turnaround), a read first reads 4 (turnaround, ACK); both land in the top bits."""
    shift = 3 if step.answer == 1 else 4
    return (step.reply[0] >> (shift + 1)) & 0b111


class FtdiSwdWire:
    """SwdWire on one MPSSE interface (see the module docstring for frames and posting)."""

    def __init__(
        self,
        link: SwdMpsseLink,
        *,
        clock_hz: int,
        nrst: Pin | None = None,
        wait_retries: int = 1000,
    ) -> None:
        self.link = link
        self.max_clock_hz = max(1, min(clock_hz, MAX_CLOCK_HZ))
        self.clock_hz = 0
        self.nrst = nrst
        self.wait_retries = wait_retries
        self.reset_asserted = False
        self.overrun = False  # CTRL/STAT.ORUNDETECT is known to be set: writes may be posted
        self.usb_writes = 0
        self.round_trips = 0
        self._queue: list[_Step] = []
        self._idle_owed = False

    # -- clock and pins -------------------------------------------------------------------

    def set_clock(self, hz: int) -> int:
        """SWCLK: the fastest MPSSE base/N not above ``hz`` (and the URL's clock)."""
        self.clock_hz = set_mpsse_clock(self.link, hz, self.max_clock_hz, self.clock_hz, "SWD")
        return self.clock_hz

    def _low(self, drive_swdio: bool, released: bool = False) -> bytes:
        """SET_BITS_LOW: SWCLK low, ADBUS1 an output (low) only while the host drives
        SWDIO, NRST (on ADBUS) low while asserted, the pin map's outputs kept."""
        gpio, direction = self.link.low_byte()
        value = (gpio & ~SWD_PINS & 0xFF) | CS
        direction = (direction & ~SWD_PINS & 0xFF) | CS
        if not released:
            direction |= SWCLK | (SWDIO_OUT if drive_swdio else 0)
        nrst = self.nrst
        if nrst is not None and nrst.bit < 8:
            value &= ~nrst.mask
            direction = direction | nrst.mask if self.reset_asserted else direction & ~nrst.mask
        return bytes((SET_BITS_LOW, value, direction))

    def _high(self) -> bytes:
        """SET_BITS_HIGH for NRST on ACBUS (open drain), the pin map's outputs kept."""
        gpio, direction = self.link.high_byte()
        assert self.nrst is not None
        mask = self.nrst.mask >> 8
        value = gpio & ~mask & 0xFF
        direction = direction | mask if self.reset_asserted else direction & ~mask & 0xFF
        return bytes((SET_BITS_HIGH, value, direction))

    def restore_pins(self) -> None:
        """Write the SWD lines and NRST again (pyftdi's GPIO writes re-drive the whole
        port with its own directions)."""
        cmd = self._low(True) + (self._high() if self.nrst and self.nrst.bit >= 8 else b"")
        with self.link.io("restoring the SWD lines"):
            self._write(cmd)

    def release(self) -> None:
        """SWCLK and SWDIO as inputs, NRST released: the board runs on its own."""
        self.flush()
        self.reset_asserted = False
        cmd = self._low(False, released=True)
        if self.nrst is not None and self.nrst.bit >= 8:
            cmd += self._high()
        with self.link.io("releasing the SWD lines"):
            self._write(cmd)

    # -- SwdWire --------------------------------------------------------------------------

    def line_reset(self) -> None:
        self.overrun = False  # maybe a new part: its CTRL/STAT is not known
        ones = LINE_RESET_ONES // 8
        self._queue.append(_Step(bytes((WRITE_BYTES_NVE_LSB, ones - 1, 0)) + b"\xff" * ones))
        # the two idle clocks that end it go out before the next packet; a select
        # sequence must follow the ones directly
        self._idle_owed = True

    def sequence(self, bits: int, count: int) -> None:
        self._idle_owed = False
        cmd = bytearray()
        whole, rest = divmod(count, 8)
        if whole:
            cmd += bytes((WRITE_BYTES_NVE_LSB, (whole - 1) & 0xFF, (whole - 1) >> 8))
            cmd += (bits & ((1 << (8 * whole)) - 1)).to_bytes(whole, "little")
        if rest:
            cmd += bytes((WRITE_BITS_NVE_LSB, rest - 1, (bits >> (8 * whole)) & 0xFF))
        self._queue.append(_Step(bytes(cmd)))

    def packet(self, request: int, data: int | None) -> tuple[int, int | None]:
        read = bool(request & 0b100)
        step = self._packet_step(request, data)
        if not read and self.overrun:
            step.posted = True
            self._enqueue(step)
            return OK, None
        self._enqueue(step)
        self._send()
        ack = _ack(step)
        if ack == WAIT and self.overrun:
            self._queue.append(self._clear_overrun())
        if read:
            return (ack, _read_data(step.reply)) if ack == OK else (ack, None)
        if ack == OK and request == CTRL_STAT_WRITE:
            self.overrun = True
        return ack, None

    def run(self, packets: Sequence[tuple[int, int | None]]) -> list[int | None]:
        """Packets (request, write data or None for a read) all sent without waiting
        for their ACKs (overrun detection must be on), in as few USB round trips as the
        FIFO budget allows; every ACK is checked as in packet(). The read data (parity
        in bit 32) or None for a write, in order."""
        if not self.overrun:
            raise SwdError("queued reads need overrun detection: connect first")
        steps = []
        for request, data in packets:
            step = self._packet_step(request, data)
            step.posted = True
            self._enqueue(step)
            steps.append(step)
        self.flush()
        return [_read_data(step.reply) if step.answer == 6 else None for step in steps]

    def flush(self) -> None:
        """Send what is queued; check the ACKs of the posted writes."""
        if self._queue:
            self._send()

    def set_reset(self, asserted: bool) -> None:
        """NRST low (asserted) or released; queued packets go first."""
        if self.nrst is None:
            return
        self.flush()
        self.reset_asserted = asserted
        cmd = self._low(True) if self.nrst.bit < 8 else self._high()
        with self.link.io("driving NRST"):
            self._write(cmd)

    def close(self) -> None:
        self._queue.clear()

    # -- frames ---------------------------------------------------------------------------

    def _enqueue(self, step: _Step) -> None:
        """Queue a posted step, sending what is queued first if its answers would not
        fit the budget."""
        if sum(queued.answer for queued in self._queue) + step.answer > READ_BUDGET:
            self._send()
        self._queue.append(step)

    def _packet_step(self, request: int, data: int | None) -> _Step:
        if request == CTRL_STAT_WRITE and data is not None:
            data |= ORUNDETECT
        cmd = bytearray()
        if self._idle_owed:
            cmd += bytes((WRITE_BITS_NVE_LSB, 1, 0x00))  # two idle clocks
            self._idle_owed = False
        cmd += bytes((WRITE_BITS_NVE_LSB, 7, request))
        cmd += self._low(False)  # the target's turn: ADBUS1 an input
        if request & 0b100:
            cmd += bytes((READ_BITS_PVE_LSB, 3))  # turnaround, ACK
            cmd += bytes((READ_BYTES_PVE_LSB, 3, 0))  # data
            cmd += bytes((READ_BITS_PVE_LSB, 1))  # parity, turnaround
            cmd += self._low(True)
            return _Step(bytes(cmd), 6, request)
        assert data is not None
        data &= 0xFFFFFFFF
        cmd += bytes((READ_BITS_PVE_LSB, 4))  # turnaround, ACK, turnaround
        cmd += self._low(True)
        cmd += bytes((WRITE_BYTES_NVE_LSB, 3, 0)) + data.to_bytes(4, "little")
        cmd += bytes((WRITE_BITS_NVE_LSB, 0, parity(data)))
        return _Step(bytes(cmd), 1, request)

    def _clear_overrun(self) -> _Step:
        """ABORT.ORUNERRCLR, sent before anything else (ABORT is never answered WAIT)."""
        step = self._packet_step(ABORT_WRITE, ORUNERRCLR)
        step.own = True
        return step

    # -- USB ------------------------------------------------------------------------------

    def _send(self) -> None:
        """Send the queue in one USB write and read its answers back into the steps;
        check the posted packets' ACKs, sending the refused one and what followed it
        again after a WAIT."""
        if not self.clock_hz:
            self.set_clock(self.max_clock_hz)
        for _ in range(self.wait_retries + 1):
            steps, self._queue = self._queue, []
            self._exchange(steps)
            refused = self._first_refused(steps)
            if refused is None:
                return
            index, ack = refused
            if steps[index].own:
                raise SwdError(
                    f"ABORT (clearing an overrun) answered {ack:03b}: is a target there?"
                )
            if not (ack == WAIT and self.overrun):
                behind = sum(1 for s in steps[index + 1 :] if s.request is not None and not s.own)
                raise SwdPostedError(f"queued packet answered {ack:03b}", ack, behind)
            # overrun detection: nothing after the refused packet took effect
            self._queue = [self._clear_overrun(), *steps[index:]]
        raise SwdPostedError(f"queued packet still WAIT after {self.wait_retries} retries", WAIT, 0)

    @staticmethod
    def _first_refused(steps: Sequence[_Step]) -> tuple[int, int] | None:
        for index, step in enumerate(steps):
            if step.posted or step.own:
                ack = _ack(step)
                if ack != OK:
                    return index, ack
        return None

    def _exchange(self, steps: Sequence[_Step]) -> None:
        size = sum(step.answer for step in steps)
        payload = self._low(True) + b"".join(step.cmd for step in steps) + IDLE_AFTER_WRITE
        with self.link.io("an SWD transfer"):
            ftdi = self._write(payload + (bytes((SEND_IMMEDIATE,)) if size else b""))
            data = self._read(ftdi, size, 46 * len(steps)) if size else b""
        pos = 0
        for step in steps:
            step.reply = data[pos : pos + step.answer]
            pos += step.answer

    def _write(self, payload: bytes) -> Mpsse:
        ftdi = self.link.ftdi()
        ftdi.write_data(payload)
        self.usb_writes += 1
        return ftdi

    def _read(self, ftdi: Mpsse, size: int, wire_bits: int) -> bytes:
        # pyftdi returns short data when the chip has not answered within a few
        # latency-timer periods; keep reading until the wire time plus a margin.
        self.round_trips += 1
        deadline = self.link.now() + wire_bits / max(1, self.clock_hz) + 1.0
        data = bytearray()
        while len(data) < size:
            data += ftdi.read_data_bytes(size - len(data), 4)
            if len(data) < size and self.link.now() > deadline:
                raise LinkError(f"FTDI answered {len(data)} of {size} bytes (USB transfer stalled)")
        return bytes(data)


class FtdiSwdLink(PacketLink):
    """PacketLink whose batches go out whole: once overrun detection is on, a batch
    without match reads is laid out packet by packet (AP reads posted, a run of them
    ended by RDBUFF, as PacketLink does it) and sent with FtdiSwdWire.run(), so reads
    cost answer bytes in the FIFO budget, not a USB round trip each. Batches with match
    reads (a poll decides the next packet) go packet by packet through PacketLink."""

    def __init__(self, wire: FtdiSwdWire, **kwargs: Any) -> None:
        super().__init__(wire, **kwargs)
        self.ftdi = wire

    def _transfer(self, accesses: Sequence[Access]) -> list[int]:
        if not self.ftdi.overrun or any(access.mask is not None for access in accesses):
            return super()._transfer(accesses)
        plan: list[tuple[int, Access]] = []  # (batch index, access) of each packet
        results: list[int] = []  # positions in plan whose answer is a value read
        posted: int | None = None  # the batch index of an AP read still in flight
        for index, access in enumerate(accesses):
            if access.read and access.ap:
                if posted is not None:
                    results.append(len(plan))
                plan.append((index, access))
                posted = index
                continue
            if posted is not None:
                results.append(len(plan))
                plan.append((posted, _RDBUFF))
                posted = None
            if access.read:
                results.append(len(plan))
            plan.append((index, access))
        if posted is not None:
            results.append(len(plan))
            plan.append((posted, _RDBUFF))
        self._sent = [index for index, _ in plan]
        self.packets += len(plan)
        answers = self.ftdi.run(
            [(request_byte(a.ap, a.read, a.address), None if a.read else a.value) for _, a in plan]
        )
        values = []
        for position in results:
            data = answers[position]
            assert data is not None
            value = data & 0xFFFFFFFF
            if parity(value) != (data >> 32) & 1:
                raise SwdError(f"parity error reading {accesses[plan[position][0]].name()}")
            values.append(value)
        return values


_RDBUFF = Access(False, True, DP_RDBUFF)
