"""SPI over an FTDI MPSSE interface, batched: many /CS-framed transactions per USB write.

pyftdi's ``SpiPort.exchange()/write()`` sends one USB write per call (in turbo mode
the /CS epilog rides in the same buffer) and has no public way to queue several
transactions. The MPSSE itself is a command stream, though, so this bus builds the
stream for a whole batch with the same commands pyftdi's
``SpiController._exchange_half_duplex`` emits for SPI mode 0 (``SET_BITS_LOW`` /CS
prolog, ``WRITE_BYTES_NVE_MSB``, ``READ_BYTES_NVE_MSB``, /CS epilog, ``SEND_IMMEDIATE``)
and sends it with the controller's ``Ftdi.write_data()``, then collects every read
with ``Ftdi.read_data_bytes()``. WREN + PAGE PROGRAM + the first status poll are one
USB write and one USB read.

WaitReady, on the learned schedule of app.hal.busy_poll: for a short expected time
(page program) the wait happens on the programmer: ``CLK_BYTES_NO_DATA`` clocks SCK with
/CS high (H-series chips) up to status reads at 85, 90, 95 and 100% of the part's learned
time, all in the same buffer, so one of them usually finds the part ready, and the first
that does says how long the part really took. Longer waits (erase) flush the batch, sleep
to the schedule's first read on the host, then poll. A part still busy is polled from the
host until a read after ``timeout_s`` decides.

Limits: reads that come before further commands in one buffer are capped
(READ_BUDGET) so the chip's TX FIFO (1 KiB on an FT232H) can never fill while the
host is still writing; a batch continues in a new USB write after that. The /CS
line is ADBUS3 (cs_count=1); SPI mode 0 only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Protocol

from app.hal.bus import SpiStep, WaitReady
from app.hal.busy_poll import BusyPoller
from app.hal.errors import BusTimeout, LinkError

# MPSSE opcodes (the values pyftdi.ftdi.Ftdi names)
WRITE_BYTES_NVE_MSB = 0x11
READ_BYTES_NVE_MSB = 0x24
SET_BITS_LOW = 0x80
CLK_BYTES_NO_DATA = 0x8F
SEND_IMMEDIATE = 0x87

SCK, MOSI, MISO, CS = 0x01, 0x02, 0x04, 0x08
SPI_DIRECTION = SCK | MOSI | CS
MAX_CHUNK = 0x10000  # one MPSSE data command moves at most 65536 bytes
READ_BUDGET = 512  # bytes read before more commands in the same USB write
DEVICE_WAIT_MAX_S = 0.005  # longer waits are slept on the host
#: on-device status reads of a short wait, as fractions of its learned time
DEVICE_READS = (0.85, 0.9, 0.95, 1.0)
MAX_CLOCK_HZ = 30_000_000


class Mpsse(Protocol):
    """The methods of pyftdi's ``Ftdi`` this bus calls (pyftdi ships no type hints)."""

    def set_frequency(self, frequency: float) -> float: ...

    def write_data(self, data: bytes) -> int: ...

    def read_data_bytes(self, size: int, attempt: int = 1) -> bytes | bytearray: ...


class MpsseLink(Protocol):
    """What the bus needs from its FTDI interface (ftdi.FtdiSite)."""

    h_series: bool
    frequency_max: float
    #: the clock last set on the MPSSE (0: unknown); the SPI and Microwire buses of one
    #: interface share it, so each skips the USB round trip only when it is already set
    mpsse_hz: int
    sleep: Callable[[float], None]
    now: Callable[[], float]

    def io(self, what: str) -> AbstractContextManager[None]:
        """Lock the interface; map USB errors to LinkError (and mark the link lost)."""
        ...

    def ftdi(self) -> Mpsse: ...

    def low_byte(self) -> tuple[int, int]:
        """(GPIO output values, direction) of ADBUS outside the SPI pins."""
        ...

    def spi_driven(self) -> None:
        """The bus is about to drive the SPI lines (they may have been released)."""
        ...


def set_mpsse_clock(link: MpsseLink, hz: int, cap: int, current: int, bus: str) -> int:
    """Set the interface's clock to the fastest base/N not above ``hz`` (and ``cap``);
    returns the clock in use. Every cycle asks again, so an unchanged clock costs no
    USB round trip (``current`` is what this bus last got)."""
    want = max(1, min(int(hz), cap))
    base = float(link.frequency_max)
    target = base / max(1, math.ceil(base / want - 1e-9))
    if current and link.mpsse_hz == int(target):
        return current
    with link.io(f"setting the {bus} clock"):
        actual = link.ftdi().set_frequency(target)
    link.mpsse_hz = int(target)
    return int(min(float(actual or target), target))


class CommandBuffer:
    """One USB write's worth of MPSSE commands for /CS-framed SPI mode-0 transactions."""

    def __init__(self, gpio_low: int, direction: int, cs_hold: int) -> None:
        self.cmd = bytearray()
        self.reads: list[tuple[int, int]] = []  # (result slot, length)
        self.read_bytes = 0
        self.wire_bits = 0
        self._direction = direction & 0xFF
        gpio_low &= ~0x0F & 0xFF
        self._clock = (CS | MISO) | gpio_low  # pyftdi's cs_clock: /CS high, SCK+MOSI low
        self._select = MISO | gpio_low  # /CS low
        self._idle = CS | gpio_low  # pyftdi's idle restore after the epilog
        self._hold = max(1, cs_hold)

    def __bool__(self) -> bool:
        return bool(self.cmd)

    def _pins(self, value: int) -> None:
        self.cmd += bytes((SET_BITS_LOW, value, self._direction))

    def frame(self, write: bytes, read_len: int, slot: int) -> None:
        self._pins(self._clock)
        self._pins(self._select)
        for pos in range(0, len(write), MAX_CHUNK):
            chunk = write[pos : pos + MAX_CHUNK]
            n = len(chunk) - 1
            self.cmd += bytes((WRITE_BYTES_NVE_MSB, n & 0xFF, n >> 8)) + chunk
        for pos in range(0, read_len, MAX_CHUNK):
            n = min(MAX_CHUNK, read_len - pos) - 1
            self.cmd += bytes((READ_BYTES_NVE_MSB, n & 0xFF, n >> 8))
        self._pins(self._select)
        for _ in range(self._hold):
            self._pins(self._clock)
        self._pins(self._idle)
        if read_len:
            self.reads.append((slot, read_len))
            self.read_bytes += read_len
        self.wire_bits += 8 * (len(write) + read_len)

    def idle_clocks(self, nbytes: int) -> None:
        """Clock SCK for ``8 * nbytes`` cycles with /CS high: a programmer-side delay."""
        while nbytes > 0:
            n = min(MAX_CHUNK, nbytes)
            self.cmd += bytes((CLK_BYTES_NO_DATA, (n - 1) & 0xFF, (n - 1) >> 8))
            self.wire_bits += 8 * n
            nbytes -= n

    def payload(self) -> bytes:
        return bytes(self.cmd) + (bytes((SEND_IMMEDIATE,)) if self.reads else b"")


class FtdiSpiBus:
    """SpiBus on one MPSSE interface (see the module docstring for the batching)."""

    def __init__(self, link: MpsseLink, *, max_clock_hz: int) -> None:
        self.link = link
        self.max_clock_hz = max(1, min(max_clock_hz, MAX_CLOCK_HZ))
        self.clock_hz = 0
        self.usb_writes = 0  # for benchmarks and tests
        self.poller = BusyPoller()  # reset when the site powers up for a cycle

    # -- clock ----------------------------------------------------------------------

    def set_clock(self, hz: int) -> int:
        """Ask for ``hz``; the MPSSE divides its base clock, so the result is base/N."""
        self.clock_hz = set_mpsse_clock(self.link, hz, self.max_clock_hz, self.clock_hz, "SPI")
        return self.clock_hz

    # -- transfers ------------------------------------------------------------------

    def transfer(self, ops: Sequence[SpiStep]) -> list[bytes]:
        if not self.clock_hz:
            self.set_clock(self.max_clock_hz)
        results: list[bytes] = [b""] * len(ops)
        with self.link.io("an SPI transfer"):
            buf = self._new_buffer()
            for slot, op in enumerate(ops):
                if isinstance(op, WaitReady):
                    buf = self._wait(op, slot, buf, results)
                    continue
                buf.frame(op.write, op.read_len, slot)
                if buf.read_bytes > READ_BUDGET and slot + 1 < len(ops):
                    self._flush(buf, results)
                    buf = self._new_buffer()
            if buf:
                self._flush(buf, results)
        return results

    def _new_buffer(self) -> CommandBuffer:
        gpio, direction = self.link.low_byte()
        hold = 1 + int(1e6 / max(1, self.clock_hz))
        return CommandBuffer(gpio, direction | SPI_DIRECTION, hold)

    def _flush(self, buf: CommandBuffer, results: list[bytes]) -> None:
        ftdi = self.link.ftdi()
        self.link.spi_driven()
        ftdi.write_data(buf.payload())
        self.usb_writes += 1
        if not buf.reads:
            return
        data = self._read(ftdi, buf.read_bytes, buf.wire_bits)
        pos = 0
        for slot, length in buf.reads:
            results[slot] = bytes(data[pos : pos + length])
            pos += length

    def _read(self, ftdi: Mpsse, size: int, wire_bits: int) -> bytes:
        # pyftdi returns short data when the chip has not answered within a few
        # latency-timer periods; keep reading until the wire time plus a margin.
        deadline = self.link.now() + wire_bits / max(1, self.clock_hz) + 1.0
        data = bytearray()
        while len(data) < size:
            data += ftdi.read_data_bytes(size - len(data), 4)
            if len(data) < size and self.link.now() > deadline:
                raise LinkError(f"FTDI answered {len(data)} of {size} bytes (USB transfer stalled)")
        return bytes(data)

    def _wait(
        self, op: WaitReady, slot: int, buf: CommandBuffer, results: list[bytes]
    ) -> CommandBuffer:
        """Run ``buf`` with the first status reads of ``op`` in it; poll on if busy.

        A short wait (page program) happens on the programmer: SCK clocked with /CS high
        up to each of ``DEVICE_READS`` (fractions of the learned time), a status read at
        each, all in the same USB write as the command. The first read that finds the
        part ready says how long it took (the schedule learns it, and reads earlier next
        time); a part slower than all of them is polled on from the host. A long wait
        (erase) flushes the batch and sleeps to the schedule's first read.
        """
        expected = self.poller.expected(op)
        on_device = self.link.h_series and 0 < expected <= DEVICE_WAIT_MAX_S
        if on_device:
            first = len(results)
            times = [fraction * expected for fraction in DEVICE_READS]
            done = 0.0
            for n, at in enumerate(times):
                buf.idle_clocks(math.ceil((at - done) * self.clock_hz / 8))
                buf.frame(bytes([op.opcode]), 1, first + n)
                done = at
            results.extend([b""] * len(times))
            self._flush(buf, results)
            answers = [r[0] for r in results[first:]]
            del results[first:]
            for n, status in enumerate(answers):
                if status & op.mask == op.value:
                    self.poller.learn(op, times[n], n + 1)
                    results[slot] = bytes([status])
                    return self._new_buffer()
            elapsed, polls = times[-1], len(times)
            started = self.link.now() - elapsed
        else:
            buf.frame(bytes([op.opcode]), 1, slot)
            self._flush(buf, results)
            started = self.link.now()  # the deadline runs from the programmer's answer
            elapsed, polls = 0.0, 1
            answers = [results[slot][0]]
        status = answers[-1]
        while status & op.mask != op.value:
            if elapsed > op.timeout_s:  # a read sent after the deadline found it busy
                raise BusTimeout(
                    f"part still busy after {op.timeout_s * 1000:.0f} ms"
                    f" (status 0x{status:02X}, waiting for mask 0x{op.mask:02X}"
                    f" = 0x{op.value:02X})"
                )
            # A host that was merely slow (a loaded PC) must not fail a good part: past
            # the deadline the status is read once more, and that read decides.
            elapsed = self.link.now() - started
            self.link.sleep(max(0.0, self.poller.next_poll(op, elapsed) - elapsed))
            elapsed = self.link.now() - started
            poll = self._new_buffer()
            poll.frame(bytes([op.opcode]), 1, slot)
            self._flush(poll, results)
            polls += 1
            status = results[slot][0]
        self.poller.learn(op, elapsed, polls)
        results[slot] = bytes([status])
        return self._new_buffer()
