"""Serial Wire Debug below the memory level: the ARM Debug Interface v5 (ADIv5) packet,
the transfer link a probe offers, and a link built on any packet wire.

Two levels, because probes work at two levels:

- ``SwdWire`` moves single packets: an 8-bit request (start 1, APnDP, RnW, A[3:2], even
  parity of those four, stop 0, park 1; LSB first), a turnaround, a 3-bit acknowledge
  (OK 001, WAIT 010, FAULT 100, LSB first) and 32 data bits with their even parity. The
  simulator, FTDI MPSSE bit-banging and OpenOCD's remote_bitbang work at this level.
- ``SwdLink`` runs a batch of DP/AP transfers and returns the values read, as a
  CMSIS-DAP probe's DAP_Transfer does: the link deals with posted AP reads (an AP read
  returns the previous AP read's value, so a run of reads ends with DP RDBUFF), retries
  WAIT, and polls a "match" read until the value matches. ``PacketLink`` is that on top
  of a ``SwdWire``; a CMSIS-DAP probe is one natively.

A wire may post writes: answer OK to a write before its ACK has come back, so several
writes travel in one USB transfer (FTDI MPSSE). It then checks those ACKs when it next
reads from the probe or in its ``flush()`` (which PacketLink calls at the end of every
batch), and raises ``SwdPostedError`` saying how many packets were sent after the one
that was not OK; PacketLink turns that into the error of that access.

Above both: app.hal.debug_port (connect, power-up, SELECT, MEM-AP memory access).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from app.hal.errors import HalError

OK, WAIT, FAULT = 0b001, 0b010, 0b100
JTAG_TO_SWD = 0xE79E  # 16 bits, LSB first
DP_IDCODE = DP_ABORT = 0x0
DP_CTRL_STAT = 0x4
DP_SELECT = 0x8
DP_RDBUFF = 0xC


class SwdError(HalError):
    """The debug port did not answer as ADIv5 says (no target, protocol error)."""


class SwdFault(SwdError):
    """The target answered FAULT. ``done``: the transfers of the batch that completed."""

    def __init__(self, message: str, done: int = 0) -> None:
        super().__init__(message)
        self.done = done


class SwdPostedError(SwdError):
    """A write the wire had posted was not acknowledged OK: ``ack`` is what it got,
    ``behind`` how many packets the wire sent after it."""

    def __init__(self, message: str, ack: int, behind: int) -> None:
        super().__init__(message)
        self.ack = ack
        self.behind = behind


class SwdMismatch(SwdError):
    """A match read never saw the value it waits for (a flash operation that does not
    end); ``value`` is the last value read."""

    def __init__(self, message: str, value: int) -> None:
        super().__init__(message)
        self.value = value


def parity(value: int) -> int:
    return bin(value).count("1") & 1


def request_byte(ap: bool, read: bool, address: int) -> int:
    """The 8-bit request, bit 0 first on the wire."""
    a2, a3 = (address >> 2) & 1, (address >> 3) & 1
    body = int(ap) | (int(read) << 1) | (a2 << 2) | (a3 << 3)
    return 0x01 | (body << 1) | (parity(body) << 5) | (0 << 6) | (1 << 7)


@dataclass(frozen=True, slots=True)
class Access:
    """One DP or AP register transfer (``address``: A[3:2] as 0x0/0x4/0x8/0xC).

    A read with ``mask`` set is a match read: it is repeated until
    ``value & mask == match`` (CMSIS-DAP's "value match"), so a probe can wait for a
    flag without a round trip to the host per poll.
    """

    ap: bool
    read: bool
    address: int
    value: int = 0
    mask: int | None = None
    match: int = 0

    def name(self) -> str:
        kind = "AP" if self.ap else "DP"
        return f"{kind} {'read' if self.read else 'write'} 0x{self.address:X}"


_RDBUFF = Access(False, True, DP_RDBUFF)


class SwdWire(Protocol):
    def line_reset(self) -> None:
        """>= 50 clocks with SWDIO high, then two idle (low) clocks."""
        ...

    def sequence(self, bits: int, count: int) -> None:
        """Clock ``count`` bits of ``bits`` out on SWDIO, LSB first."""
        ...

    def packet(self, request: int, data: int | None) -> tuple[int, int | None]:
        """One packet: (acknowledge, read data with its parity in bit 32) for a read,
        (acknowledge, None) for a write of ``data`` (its parity is added by the wire)."""
        ...


class SwdLink(Protocol):
    """A probe's SWD engine at the transfer level (see the module docstring)."""

    @property
    def name(self) -> str: ...

    def line_reset(self) -> None: ...

    def sequence(self, bits: int, count: int) -> None: ...

    def transfer(self, accesses: Sequence[Access]) -> list[int]:
        """Run ``accesses`` in order; the values of the reads, in order.

        Raises SwdFault (with how many completed) on FAULT, SwdError on no
        acknowledge, a parity error or a WAIT that does not end, SwdMismatch when a
        match read runs out of retries."""
        ...

    def set_reset(self, asserted: bool) -> None:
        """Drive the target's NRST line (low while asserted); a no-op without one."""
        ...

    def close(self) -> None: ...


class PacketLink:
    """An SwdLink over a packet wire: posted reads, WAIT retries and match reads done
    here, one packet at a time."""

    def __init__(
        self,
        wire: SwdWire,
        *,
        name: str = "SWD",
        wait_retries: int = 1000,
        match_timeout_s: float = 5.0,
    ) -> None:
        self.wire = wire
        self._name = name
        self.wait_retries = wait_retries
        self.match_timeout_s = match_timeout_s
        self.packets = 0  # packets sent, WAIT retries included (for benchmarks)
        self.waits = 0  # of which answered WAIT (the target's bus was busy)
        self._sent: list[int] = []  # the batch index of each packet sent (posted writes)
        self._index = 0

    @property
    def name(self) -> str:
        return self._name

    def line_reset(self) -> None:
        self.wire.line_reset()

    def sequence(self, bits: int, count: int) -> None:
        self.wire.sequence(bits, count)

    def set_reset(self, asserted: bool) -> None:
        setter = getattr(self.wire, "set_reset", None)
        if setter is not None:
            setter(asserted)

    def close(self) -> None:
        closer = getattr(self.wire, "close", None)
        if closer is not None:
            closer()

    def transfer(self, accesses: Sequence[Access]) -> list[int]:
        self._sent = []
        try:
            values = self._transfer(accesses)
            flush = getattr(self.wire, "flush", None)
            if flush is not None:
                flush()
            return values
        except SwdPostedError as err:
            index = self._sent[-1 - err.behind]
            name = accesses[index].name()
            if err.ack == FAULT:
                raise SwdFault(f"{name} answered FAULT", done=index) from None
            if err.ack == WAIT:
                raise SwdError(f"{name} still WAIT after retries") from None
            raise SwdError(
                f"no acknowledge ({err.ack:03b}) to {name}: is a target there?"
            ) from None

    def _transfer(self, accesses: Sequence[Access]) -> list[int]:
        values: list[int] = []
        posted = False  # an AP read is in flight: its value comes with the next AP read
        for index, access in enumerate(accesses):
            self._index = index
            try:
                if access.read and access.ap and access.mask is None:
                    value = self._packet(access)
                    if posted:
                        values.append(value)
                    posted = True
                    continue
                if posted:
                    values.append(self._packet(_RDBUFF))
                    posted = False
                if access.read:
                    values.append(self._read(access))
                else:
                    self._packet(access)
            except SwdFault as fault:
                raise SwdFault(str(fault), done=index) from None
        if posted:
            values.append(self._packet(_RDBUFF))
        return values

    def _read(self, access: Access) -> int:
        """A DP read, or a match read (DP or AP) repeated until it matches."""

        def once() -> int:
            value = self._packet(access)
            return self._packet(_RDBUFF) if access.ap else value

        value = once()
        if access.mask is None:
            return value
        deadline = time.monotonic() + self.match_timeout_s
        while value & access.mask != access.match:
            if time.monotonic() > deadline:
                raise SwdMismatch(
                    f"{access.name()} still reads 0x{value:08X} after"
                    f" {self.match_timeout_s:.1f} s (waiting for 0x{access.match:08X} under"
                    f" mask 0x{access.mask:08X})",
                    value,
                )
            value = once()
        return value

    def _packet(self, access: Access) -> int:
        request = request_byte(access.ap, access.read, access.address)
        for _ in range(self.wait_retries + 1):
            self.packets += 1
            self._sent.append(self._index)
            ack, data = self.wire.packet(request, None if access.read else access.value)
            if ack == OK:
                if not access.read:
                    return 0
                assert data is not None
                value = data & 0xFFFFFFFF
                if parity(value) != (data >> 32) & 1:
                    raise SwdError(f"parity error reading {access.name()}")
                return value
            if ack == WAIT:
                self.waits += 1
                continue
            if ack == FAULT:
                raise SwdFault(f"{access.name()} answered FAULT")
            raise SwdError(f"no acknowledge ({ack:03b}) to {access.name()}: is a target there?")
        raise SwdError(f"{access.name()} still WAIT after {self.wait_retries} retries")
