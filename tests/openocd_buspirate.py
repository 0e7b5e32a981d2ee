"""A Bus Pirate in binary raw-wire mode on a pseudo-terminal, clocking SWD bits into a
bit-level target front (tests/swd_bitlevel.py): the probe behind which the real OpenOCD
(`adapter driver buspirate`, `transport select swd`) drives the simulated target.

Why the Bus Pirate: Debian's OpenOCD 0.12.0 offers SWD over no adapter that software
can stand in for except this one. Its remote_bitbang driver is JTAG only there
(`.transports = jtag_only` in src/jtag/drivers/remote_bitbang.c at v0.12.0; SWD came
with commit 0f70c6c32 after that release), and the other SWD drivers need USB devices
or GPIO chips; the Bus Pirate is a serial port, which a pty is.

The protocol, from OpenOCD 0.12.0's src/jtag/drivers/buspirate.c (what it sends and
expects) and the Bus Pirate firmware's Firmware/binwire.c and bitbang.c
(github:DangerousPrototypes/Bus_Pirate):

- terminal mode: 20 bytes 0x00 enter binary bitbang mode, answered "BBIO1"; there 0x00
  answers "BBIO1" again and 0x05 enters raw-wire mode, answered "RAW1";
- raw-wire: 0x00 back to bitbang ("BBIO1"); 0x01 "RAW1"; 0x06 read a byte; 0x07 read a
  bit; 0x08 peek the input; 0x09 one clock tick; 0x0A/0x0B clock low/high; 0x0C/0x0D
  data low/high; 0x1n write n+1 bytes (answers 0x01, then 0x01 per byte in 2-wire
  mode); 0x2n n+1 clock ticks; 0x3n n+1 bits of the next byte, MSB first; 0x4X
  peripherals (bit 1 AUX: OpenOCD's SRST, high = released: buspirate_swd_set_feature
  clears it to assert SRST); 0x6X speed; 0x8X config
  (bit 1 LSB first); the others answer 0x01, unknown commands 0x00;
- a written bit sets the data pin (driven) then pulses the clock (high, low); a read
  bit or byte lets the data pin go (input), raises the clock, samples, lowers it: it
  reads what the target drives after that rising edge.

The target behind the front is any object with the SimSwdTarget packet interface (see
tests/swd_bitlevel.py): the bare MEM-AP or a whole simulated MCU (tests/test_openocd_swd.py).
"""

from __future__ import annotations

import os
import pty
import select
import threading
import tty
from collections.abc import Callable

from swd_bitlevel import SwdBitFront


class BusPirateSwd:
    """The serial protocol above, over a front; ``feed()`` takes the bytes the host
    wrote and returns the answer bytes. ``nrst``, if given, is the target's reset line
    wired to AUX: called with True when AUX goes low (SRST asserted), False when it
    goes high."""

    def __init__(self, front: SwdBitFront, nrst: Callable[[bool], None] | None = None) -> None:
        self.front = front
        self.nrst = nrst
        self.mode = "terminal"
        self.zeros = 0
        self.lsb_first = False
        self.data: int | None = 0  # what the data pin drives (None: an input)
        self.clock = 0
        self.aux = 1  # AUX, OpenOCD's SRST: an input at power-up, NRST pulled up (released)
        self._pending = bytearray()

    def feed(self, chunk: bytes) -> bytes:
        self._pending += chunk
        out = bytearray()
        while self._pending:
            used = self._command(bytes(self._pending), out)
            if used == 0:
                break  # a command waits for its argument bytes
            del self._pending[:used]
        return bytes(out)

    # -- the modes ------------------------------------------------------------------------

    def _command(self, data: bytes, out: bytearray) -> int:
        op = data[0]
        if self.mode == "terminal":
            self.zeros = self.zeros + 1 if op == 0 else 0
            if self.zeros == 20:
                self.mode = "bbio"
                out += b"BBIO1"
            return 1
        if self.mode == "bbio":
            if op == 0x00:
                out += b"BBIO1"
            elif op == 0x05:
                self.mode = "raw"
                out += b"RAW1"
            else:
                out.append(0)
            return 1
        return self._raw(data, out)

    def _raw(self, data: bytes, out: bytearray) -> int:
        op, high = data[0], data[0] >> 4
        if op == 0x00:
            self.mode = "bbio"
            out += b"BBIO1"
        elif op == 0x01:
            out += b"RAW1"
        elif op == 0x06:
            out.append(self._read_byte())
        elif op == 0x07:
            out.append(self._read_bit())
        elif op == 0x08:
            out.append(self.front.line(self.data))
        elif op == 0x09:
            self._tick()
            out.append(1)
        elif op in (0x0A, 0x0B):
            self.clock = op & 1
            out.append(1)
        elif op in (0x0C, 0x0D):
            self.data = op & 1
            out.append(1)
        elif high == 0x1:
            count = (op & 0x0F) + 1
            if len(data) < 1 + count:
                return 0
            out.append(1)
            for byte in data[1 : 1 + count]:
                self._write_byte(byte)
                out.append(1)
            return 1 + count
        elif high == 0x2:
            for _ in range((op & 0x0F) + 1):
                self._tick()
            out.append(1)
        elif high == 0x3:
            if len(data) < 2:
                return 0
            for n in range((op & 0x07) + 1):
                self._write_bit((data[1] >> (7 - n)) & 1)
            out += b"\x01\x01"
            return 2
        elif high == 0x4:
            aux = (op >> 1) & 1
            if self.nrst is not None and aux != self.aux:
                self.nrst(not aux)
            self.aux = aux
            out.append(1)
        elif high == 0x6:
            out.append(1)
        elif high == 0x8:
            self.lsb_first = bool(op & 0x02)
            out.append(1)
        else:
            out.append(0)
        return 1

    # -- the pins -------------------------------------------------------------------------

    def _tick(self) -> None:
        self.front.rising_edge(self.data)

    def _write_bit(self, bit: int) -> None:
        self.data = bit
        self._tick()

    def _read_bit(self) -> int:
        self.data = None
        self._tick()
        return self.front.line(None)

    def _write_byte(self, byte: int) -> None:
        order = range(8) if self.lsb_first else range(7, -1, -1)
        for n in order:
            self._write_bit((byte >> n) & 1)

    def _read_byte(self) -> int:
        value = 0
        for n in range(8):
            bit = self._read_bit()
            value |= bit << (n if self.lsb_first else 7 - n)
        return value


class PtyBusPirate:
    """A BusPirateSwd on a pty, served by a thread: ``path`` is the serial port to give
    OpenOCD (`buspirate port PATH`). Use as a context manager."""

    def __init__(self, front: SwdBitFront, nrst: Callable[[bool], None] | None = None) -> None:
        self.pirate = BusPirateSwd(front, nrst)
        self._master, self._slave = pty.openpty()
        tty.setraw(self._slave)  # no echo or line editing before OpenOCD sets its own
        self.path = os.ttyname(self._slave)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="buspirate", daemon=True)
        self.error: BaseException | None = None

    def __enter__(self) -> PtyBusPirate:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        os.close(self._master)
        os.close(self._slave)

    def _serve(self) -> None:
        try:
            while not self._stop.is_set():
                ready, _, _ = select.select([self._master], [], [], 0.05)
                if not ready:
                    continue
                try:
                    chunk = os.read(self._master, 4096)
                except OSError:  # the other side closed
                    continue
                answer = self.pirate.feed(chunk)
                if answer:
                    os.write(self._master, answer)
        except BaseException as err:  # surfaced by the test
            self.error = err
