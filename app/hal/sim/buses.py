"""Simulated SPI and I2C buses: they frame transactions onto a chip model and add the
site-level faults (empty socket, bad contact, link drop) and the transfer time."""

from __future__ import annotations

import random
from collections.abc import Sequence

from app.hal import pacing
from app.hal.bus import MicrowireOp, MicrowireStep, ReadyWait, SpiOp, SpiStep, WaitReady
from app.hal.busy_poll import BusyPoller, BusyWait
from app.hal.errors import BusTimeout, I2cNack, LinkError
from app.hal.sim.clock import SimClock
from app.hal.sim.dataflash_chip import DataFlashChip
from app.hal.sim.die_stack import DieStack
from app.hal.sim.i2c_eeprom_chip import I2cEepromChip
from app.hal.sim.microwire_chip import MicrowireChip
from app.hal.sim.spi_eeprom_chip import SpiEepromChip
from app.hal.sim.spi_nor_chip import SpiNorChip

#: the chip models that sit on a SPI bus
SpiChip = SpiNorChip | SpiEepromChip | DataFlashChip | DieStack

_POLL_INTERVAL_S = 2e-6  # status poll: 16 bits at tens of MHz
#: a flaky contact corrupts data reads (IDs and status reads are short and retried
#: so often that a real clip shows its faults in the long ones)
FLAKY_MIN_READ = 256


def wait_on_schedule(clock: SimClock, poller: BusyPoller, op: BusyWait, ready: float) -> None:
    """Advance virtual time to the first read on the learned schedule (app.hal.busy_poll)
    that finds a part ready at ``ready``; BusTimeout when that is past the deadline."""
    start = clock.now()
    if ready - start > op.timeout_s:
        clock.advance(op.timeout_s)
        raise BusTimeout(f"part still busy after {op.timeout_s * 1000:.0f} ms")
    at, polls = 0.0, 1
    while start + at < ready:
        at = max(poller.next_poll(op, at), at + _POLL_INTERVAL_S)
        polls += 1
    clock.advance_to(start + at + _POLL_INTERVAL_S)
    poller.learn(op, at, polls)


class LinkState:
    """Counts bus calls; with a link-drop fault the link dies after ``drop_after`` calls."""

    def __init__(self, drop_after: int | None = None) -> None:
        self.calls = 0
        self.drop_after = drop_after
        self.dead = False

    def tick(self) -> None:
        self.calls += 1
        if self.drop_after is not None and self.calls > self.drop_after:
            self.dead = True
        if self.dead:
            raise LinkError("link to the programmer lost (USB/serial transfer failed)")


class SimSpiBus:
    def __init__(
        self,
        chip: SpiChip | None,
        clock: SimClock,
        link: LinkState,
        *,
        max_clock_hz: int,
        miso_level: int = 0xFF,
        flaky: random.Random | None = None,
    ) -> None:
        self.chip = chip
        #: a flaky contact (a clip on a board): now and then a bit of a long read flips
        self.flaky = flaky
        self.clock = clock
        self.link = link
        self.max_clock_hz = max_clock_hz
        self.clock_hz = max_clock_hz
        self.powered = False
        self.bits_transferred = 0  # for benchmarks: what the wire carried
        self.miso_level = miso_level  # what reads return with no (or no contact to a) part
        self.contact = True
        self.poller = BusyPoller()  # reset when the site powers up for a cycle

    def set_clock(self, hz: int) -> int:
        self.clock_hz = max(1, min(hz, self.max_clock_hz))
        return self.clock_hz

    def transfer(self, ops: Sequence[SpiStep]) -> list[bytes]:
        with pacing.turn():  # a simulated site computes: one at a time (pacing)
            self.link.tick()
            results: list[bytes] = []
            bits = 0
            for op in ops:
                if isinstance(op, WaitReady):
                    results.append(self._wait(op))
                    bits += 16
                    continue
                bits += 8 * (len(op.write) + op.read_len)
                results.append(self._frame(op))
            self.bits_transferred += bits
            if self.clock.timing.realtime:
                self.clock.advance(bits / self.clock_hz)
            return results

    def _frame(self, op: SpiOp) -> bytes:
        if self.chip is None or not self.powered or not self.contact:
            return bytes([self.miso_level]) * op.read_len
        data = self.chip.transaction(op.write, op.read_len)
        if self.flaky is not None and op.read_len >= FLAKY_MIN_READ and self.flaky.random() < 0.5:
            bit = self.flaky.randrange(8 * op.read_len)
            flipped = bytearray(data)
            flipped[bit // 8] ^= 1 << (bit % 8)
            data = bytes(flipped)
        return data

    def _wait(self, op: WaitReady) -> bytes:
        """Status reads on the learned schedule (app.hal.busy_poll), in virtual time: the
        wait ends at the first scheduled read that finds the part ready."""
        if self.chip is None or not self.powered or not self.contact:
            status = self.miso_level
        else:
            wait_on_schedule(self.clock, self.poller, op, self.chip.ready_at())
            status = self.chip.transaction(bytes([op.opcode]), 1)[0]
        if status & op.mask != op.value:
            self.clock.advance(op.timeout_s)
            raise BusTimeout(
                f"status 0x{status:02X} never matched mask 0x{op.mask:02X} ="
                f" 0x{op.value:02X} within {op.timeout_s * 1000:.0f} ms"
            )
        return bytes([status])


class SimI2cBus:
    def __init__(
        self, chip: I2cEepromChip | None, clock: SimClock, link: LinkState, *, clock_hz: int
    ) -> None:
        self.chip = chip
        self.clock = clock
        self.link = link
        self.clock_hz = clock_hz
        self.powered = False
        self.contact = True

    def _chip(self, address: int) -> I2cEepromChip:
        if self.chip is None or not self.powered or not self.contact:
            raise I2cNack(f"no acknowledge from I2C address 0x{address:02X}")
        return self.chip

    def _spend(self, nbytes: int) -> None:
        if self.clock.timing.realtime:
            self.clock.advance(nbytes * 9 / self.clock_hz)

    def write(self, address: int, data: bytes) -> None:
        with pacing.turn():  # a simulated site computes: one at a time (pacing)
            self.link.tick()
            self._spend(1 + len(data))
            self._chip(address).write(address, data)

    def write_read(self, address: int, data: bytes, read_len: int) -> bytes:
        with pacing.turn():  # a simulated site computes: one at a time (pacing)
            self.link.tick()
            self._spend(2 + len(data) + read_len)
            chip = self._chip(address)
            if data:
                chip.write(address, data)
            return chip.read(address, read_len)

    def wait_ack(self, address: int, timeout_s: float, hint_s: float = 0.0) -> None:
        with pacing.turn():  # a simulated site computes: one at a time (pacing)
            self.link.tick()
            chip = self._chip(address)
            if chip.busy_until - self.clock.now() > timeout_s:
                self.clock.advance(timeout_s)
                raise BusTimeout(
                    f"no acknowledge from 0x{address:02X} within {timeout_s * 1000:.0f} ms"
                )
            self.clock.advance_to(chip.busy_until + _POLL_INTERVAL_S)
            self._spend(1)


class SimMicrowireBus:
    """The three-wire bus of a 93xx part, clocked bit by bit into a MicrowireChip.

    An open DO line (no part, or DO high impedance) reads ``do_level`` (1: the usual
    pull-up; 0 with the contact fault). A flaky contact flips a bit now and then in
    long reads, as on the SPI bus."""

    def __init__(
        self,
        chip: MicrowireChip | None,
        clock: SimClock,
        link: LinkState,
        *,
        max_clock_hz: int,
        do_level: int = 1,
        flaky: random.Random | None = None,
    ) -> None:
        self.chip = chip
        self.clock = clock
        self.link = link
        self.max_clock_hz = max_clock_hz
        self.clock_hz = max_clock_hz
        self.powered = False
        self.contact = True
        self.do_level = do_level
        self.flaky = flaky
        self.bits_transferred = 0
        self.poller = BusyPoller()

    def set_clock(self, hz: int) -> int:
        self.clock_hz = max(1, min(hz, self.max_clock_hz))
        return self.clock_hz

    def _chip(self) -> MicrowireChip | None:
        if self.chip is None or not self.powered or not self.contact:
            return None
        return self.chip

    def transfer(self, ops: Sequence[MicrowireStep]) -> list[int]:
        with pacing.turn():  # a simulated site computes: one at a time (pacing)
            self.link.tick()
            results: list[int] = []
            bits = 0
            for op in ops:
                if isinstance(op, ReadyWait):
                    results.append(self._wait(op))
                    bits += 2
                    continue
                bits += op.count + op.read_bits
                results.append(self._frame(op))
            self.bits_transferred += bits
            if self.clock.timing.realtime:
                self.clock.advance(bits / self.clock_hz)
            return results

    def _level(self, level: int | None) -> int:
        return self.do_level if level is None else level

    def _frame(self, op: MicrowireOp) -> int:
        chip = self._chip()
        if chip is None:
            return ((1 << op.read_bits) - 1) * self.do_level
        chip.select()
        for shift in range(op.count - 1, -1, -1):
            chip.pulse((op.bits >> shift) & 1)
        value = 0
        for _ in range(op.read_bits):
            value = (value << 1) | self._level(chip.pulse(0))
        chip.deselect()
        long_read = op.read_bits >= 8 * FLAKY_MIN_READ
        if self.flaky is not None and long_read and self.flaky.random() < 0.5:
            value ^= 1 << self.flaky.randrange(op.read_bits)
        return value

    def _wait(self, op: ReadyWait) -> int:
        """Ready/busy polls (CS low, CS high, sample DO) on the learned schedule, in
        virtual time, as SimSpiBus waits for a status register."""
        chip = self._chip()
        if chip is None:
            level = self.do_level
        else:
            wait_on_schedule(self.clock, self.poller, op, chip.ready_at())
            chip.select()
            level = self._level(chip.do_level())
            chip.deselect()
        if not level:
            self.clock.advance(op.timeout_s)
            raise BusTimeout(f"DO stayed low (busy) for {op.timeout_s * 1000:.0f} ms")
        return level
