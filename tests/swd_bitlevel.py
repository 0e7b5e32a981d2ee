"""A bit-level Serial Wire Debug front for a packet-level target model: the SWCLK/SWDIO
side of a SW-DP, for emulated probes (tests/ftdi_fake.py, tests/openocd_buspirate.py)
that clock bits, not packets.

Written from the documents, not from app.hal.swd:

- Edges (Arm DSTREAM-ST System and Interface Design Reference, 2.3 "About Serial Wire
  Debug"): the host writes SWDIO on the falling edge of SWCLK and reads it on the rising
  edge; the target reads SWDIO on the rising edge and writes it on the rising edge. So
  the target samples a host bit at a rising edge, and a bit the target drives at a
  rising edge stays on the line until the next rising edge: a host reading "on the
  rising edge" (MPSSE +ve in) reads at edge n+1 what the target put out at edge n;
  one that reads just after the edge (Bus Pirate read bit) reads it at edge n.
- Framing (ADIv5; STM32F1 reference manual RM0008, 31.8.2 "SW-DP": request, ACK and
  data tables, turnaround rules): the 8-bit request (start 1, APnDP, RnW, A[3:2], even
  parity, stop 0, park 1, LSB first), one turnaround, a 3-bit ACK (OK 001, WAIT 010,
  FAULT 100, LSB first), then 32 data bits and their even parity. "The ACK response
  must be followed by a turnaround time only if it is a READ transaction or if a WAIT
  or FAULT acknowledge has been received. The DATA transfer must be followed by a
  turnaround time only if it is a READ transaction."
- Line reset (RM0008 31.8.3): more than 50 cycles with SWDIO high put the SW-DP in its
  reset state, and at least two low cycles after that in its idle state, where it looks
  for a start bit; the JTAG-to-SWD select sequence is 16 bits, 0xE79E LSB first, sent
  right after the ones.
- Overrun detection (CTRL/STAT bit 0 ORUNDETECT): a WAIT or FAULT acknowledge is then
  followed by a full data phase all the same (33 cycles, ignored by the target), so a
  host may queue packets without reading their ACKs first.

Rising edges of one packet, counted from the start bit's (0):

    0-7     request bits, sampled
    8-10    ACK[0..2] driven
    read OK:      11-42 data, 43 parity driven; 44 released; 45 turnaround
    write OK:     11 released; 12 turnaround; 13-44 data, 45 parity sampled
    WAIT/FAULT:   11 released; 12 turnaround; with ORUNDETECT 13-45 data phase ignored

after which the next edge samples a new start bit or an idle (low) cycle. A request the
target does not answer (wrong framing or parity, no target, not switched to SWD) leaves
the front ignoring the line until the next line reset, as a SW-DP's lockout does.

The target is any object with ``line_reset()``, ``sequence(bits, count)``,
``packet(request, data) -> (ack, data | None)`` (read data with its parity in bit 32)
and ``ack_for(request) -> ack`` (the acknowledge packet() will give, without acting:
a write's ACK is driven before its data has been clocked in). ``packet()`` is called at
edge 8 for a read (the data is needed from edge 11) and after the data phase for a
write. A write's ACK is decided at its request: a SW-DP buffers writes ("The SW-DP
implements a write buffer ... If the write buffer is full, the target returns WAIT",
RM0008 31.8.4), so a write that stalls the bus is answered OK and the next packet WAIT.
A model whose packet() answers WAIT only once it has seen the write data cannot be
clocked bit by bit; the front stops with an AssertionError naming the request.
"""

from __future__ import annotations

from typing import Protocol

ACK_OK, ACK_WAIT, ACK_FAULT = 0b001, 0b010, 0b100
SELECT_SWD = 0xE79E
LINE_RESET_ONES = 50
REQUEST_CTRL_STAT_WRITE = 0xA9  # DP write, A[3:2] = 0x4


class PacketTarget(Protocol):
    def line_reset(self) -> None: ...

    def sequence(self, bits: int, count: int) -> None: ...

    def packet(self, request: int, data: int | None) -> tuple[int, int | None]: ...

    def ack_for(self, request: int) -> int: ...


def even_parity(value: int) -> int:
    return bin(value).count("1") & 1


class SwdBitFront:
    """One SW-DP's pins. Call :meth:`rising_edge` once per SWCLK rising edge with the
    level the host drives (None: the host does not drive SWDIO); :attr:`drive` is what
    the target drives until the next rising edge (None: released); :meth:`line` is the
    level on the wire (the target's, else the host's, else the pull-up)."""

    def __init__(self, target: PacketTarget, *, pull_up: int = 1) -> None:
        self.target = target
        self.pull_up = pull_up
        self.drive: int | None = None
        self.edges = 0
        self.collisions = 0  # edges where host and target both drove SWDIO
        self.line_resets = 0
        self.parity_errors = 0  # write data with a wrong parity bit (the write is dropped)
        self.answered: list[tuple[int, int]] = []  # (request, ACK) of each answered packet
        self.overrun_detect = False
        self._ones = 0
        self._zeros = 0  # low cycles since a line reset
        self._select: list[int] | None = None  # bits after a line reset (the select sequence)
        self._state = "lockout"  # until the first line reset
        self._bits: list[int] = []
        self._request = 0
        self._out: list[int] = []  # bits to drive on the next edges
        self._skip = 0  # edges to ignore after releasing the line
        self._collect = 0  # write data bits still to sample
        self._write_ack = ACK_OK

    def line(self, host: int | None) -> int:
        if self.drive is not None:
            return self.drive
        return self.pull_up if host is None else host & 1

    def rising_edge(self, host: int | None) -> None:
        self.edges += 1
        if host is not None and self.drive is not None:
            self.collisions += 1
        level = self.line(host)
        if self.drive is None and self._watch_line(level):
            return
        if self._out:
            self.drive = self._out.pop(0)
            return
        if self.drive is not None:  # the last driven bit has had its cycle
            self.drive = None
            return
        if self._skip:
            self._skip -= 1
            return
        if self._collect:
            self._bits.append(level)
            self._collect -= 1
            if not self._collect:
                self._end_write()
            return
        self._host_bit(level)

    # -- line reset and the select sequence -----------------------------------------------

    def _watch_line(self, level: int) -> bool:
        """Count ones; a line reset restarts the port. True when this edge was one."""
        if self._select is not None:
            self._select.append(level)
            if len(self._select) == 16:
                bits = sum(bit << n for n, bit in enumerate(self._select))
                self._select = None
                if bits == SELECT_SWD:
                    self.target.sequence(bits, 16)
        if level:
            self._ones += 1
            if self._ones == LINE_RESET_ONES:
                self.line_resets += 1
                self.target.line_reset()
                self._restart()
                return True
            return False
        if self._ones >= LINE_RESET_ONES:
            self._select = [0]
        self._ones = 0
        return False

    def _restart(self) -> None:
        self._state = "reset"
        self._zeros = 0
        self._bits = []
        self._out = []
        self._skip = self._collect = 0
        self.drive = None

    # -- packets ----------------------------------------------------------------------------

    def _host_bit(self, level: int) -> None:
        if self._state == "lockout":
            return
        if self._state == "reset":
            self._zeros = self._zeros + 1 if level == 0 else 0
            if self._zeros == 2:
                self._state = "idle"
            return
        if self._state == "idle":
            if level:  # a start bit
                self._state = "request"
                self._bits = [1]
            return
        self._bits.append(level)
        if len(self._bits) < 8:
            return
        request = sum(bit << n for n, bit in enumerate(self._bits))
        self._bits = []
        self._state = "idle"
        self._answer(request)

    def _answer(self, request: int) -> None:
        read = bool(request & 0b100)
        if read:
            ack, data = self.target.packet(request, None)
        else:
            ack, data = self.target.ack_for(request), None
        if ack not in (ACK_OK, ACK_WAIT, ACK_FAULT):
            self._state = "lockout"  # no answer: the host sees the pull-up
            return
        self._out = [(ack >> n) & 1 for n in range(3)]
        if ack == ACK_OK and read:
            assert data is not None
            self._out += [(data >> n) & 1 for n in range(33)]
            self._skip = 1
            self.answered.append((request, ack))
        elif ack == ACK_OK:
            self._request, self._write_ack = request, ack
            self._skip, self._collect = 1, 33
        else:
            if not read:
                self.target.packet(request, 0)  # refused: acts as refused, data unused
            self._skip = 34 if self.overrun_detect else 1
            self.answered.append((request, ack))

    def _end_write(self) -> None:
        bits, self._bits = self._bits, []
        data = sum(bit << n for n, bit in enumerate(bits[:32]))
        if bits[32] != even_parity(data):
            self.parity_errors += 1
            return
        ack, _ = self.target.packet(self._request, data)
        if ack != self._write_ack:
            raise AssertionError(
                f"target model answered 0x{self._request:02X} with ACK {ack:03b}"
                f" after ack_for() said {self._write_ack:03b}"
            )
        self.answered.append((self._request, ack))
        if self._request == REQUEST_CTRL_STAT_WRITE:
            self.overrun_detect = bool(data & 1)
