"""Serial Wire Debug: the ARM Debug Interface v5 (ADIv5) debug port and MEM-AP, over any
wire that can send SWD packets (a probe's bit engine, FTDI MPSSE, the simulator).

The wire (``SwdWire``) moves packets: an 8-bit request (start 1, APnDP, RnW, A[3:2],
even parity of those four, stop 0, park 1; LSB first), a turnaround, a 3-bit
acknowledge (OK 001, WAIT 010, FAULT 100, LSB first) and 32 data bits with their even
parity. Everything above the packet is here:

- connect: line reset (>= 50 clocks with SWDIO high), the JTAG-to-SWD switch sequence
  0xE79E, line reset, then DP IDCODE (0x0, read);
- power-up: CTRL/STAT (0x4) CSYSPWRUPREQ | CDBGPWRUPREQ, until both ACK bits read 1;
- SELECT (0x8) written only when the AP or bank changes;
- AP reads are posted: a read returns the previous AP read's value, so a run of reads
  ends with DP RDBUFF (0xC);
- WAIT is retried (up to ``wait_retries``); a FAULT clears the sticky errors through
  ABORT (0x0, write) and raises SwdFault naming the access and CTRL/STAT.

MEM-AP: CSW (0x00) 32-bit accesses with single auto-increment, TAR (0x04), DRW (0x0C);
blocks are split where TAR's auto-increment may stop (every 1 KiB, the minimum ADIv5
allows).
"""

from __future__ import annotations

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
CSYSPWRUPACK, CSYSPWRUPREQ = 1 << 31, 1 << 30
CDBGPWRUPACK, CDBGPWRUPREQ = 1 << 29, 1 << 28
STICKYERR, STICKYCMP, STICKYORUN, WDATAERR = 1 << 5, 1 << 4, 1 << 1, 1 << 7
ABORT_CLEAR_ALL = 0b11110  # STKCMPCLR | STKERRCLR | WDERRCLR | ORUNERRCLR
AP_CSW, AP_TAR, AP_DRW, AP_IDR = 0x00, 0x04, 0x0C, 0xFC
CSW_WORD_INCREMENT = 0x2 | (0b01 << 4)  # Size 32-bit, AddrInc single
TAR_WRAP = 1024  # bytes after which TAR auto-increment may stop (ADIv5 minimum)
POWER_UP_POLLS = 100


class SwdError(HalError):
    """The debug port did not answer as ADIv5 says (no target, protocol error)."""


class SwdFault(SwdError):
    """The target answered FAULT; the sticky errors were cleared."""


def parity(value: int) -> int:
    return bin(value).count("1") & 1


def request_byte(ap: bool, read: bool, address: int) -> int:
    """The 8-bit request, bit 0 first on the wire."""
    a2, a3 = (address >> 2) & 1, (address >> 3) & 1
    body = int(ap) | (int(read) << 1) | (a2 << 2) | (a3 << 3)
    return 0x01 | (body << 1) | (parity(body) << 5) | (0 << 6) | (1 << 7)


class SwdWire(Protocol):
    def line_reset(self) -> None:
        """>= 50 clocks with SWDIO high, then two idle (low) clocks."""
        ...

    def sequence(self, bits: int, count: int) -> None:
        """Clock ``count`` bits of ``bits`` out on SWDIO, LSB first."""
        ...

    def packet(self, request: int, data: int | None) -> tuple[int, int | None]:
        """One packet: (acknowledge, read data with its parity in bit 32) for a read,
        (acknowledge, None) for a write of ``data`` (its parity is added here)."""
        ...


@dataclass(frozen=True)
class Access:
    ap: bool
    read: bool
    address: int
    value: int = 0


class DebugPort:
    """One target's SW-DP and its MEM-AP ``ap`` (0 on most Cortex-M parts)."""

    def __init__(self, wire: SwdWire, *, ap: int = 0, wait_retries: int = 100) -> None:
        self.wire = wire
        self.ap = ap
        self.wait_retries = wait_retries
        self._select: int | None = None
        self.idcode = 0

    # -- the port -----------------------------------------------------------------------

    def connect(self) -> int:
        """Switch the port to SWD, read IDCODE, power the debug domain up; the IDCODE."""
        self.wire.line_reset()
        self.wire.sequence(JTAG_TO_SWD, 16)
        self.wire.line_reset()
        self._select = None
        self.idcode = self._access(Access(False, True, DP_IDCODE))
        if self.idcode in (0, 0xFFFFFFFF):
            raise SwdError(f"no SW-DP answered (IDCODE 0x{self.idcode:08X})")
        self._access(Access(False, False, DP_ABORT, ABORT_CLEAR_ALL))
        self._access(Access(False, False, DP_CTRL_STAT, CSYSPWRUPREQ | CDBGPWRUPREQ))
        for _ in range(POWER_UP_POLLS):
            status = self._access(Access(False, True, DP_CTRL_STAT))
            if status & (CSYSPWRUPACK | CDBGPWRUPACK) == CSYSPWRUPACK | CDBGPWRUPACK:
                return self.idcode
        raise SwdError(f"the debug domain did not power up (CTRL/STAT 0x{status:08X})")

    def _access(self, access: Access) -> int:
        request = request_byte(access.ap, access.read, access.address)
        for _ in range(self.wait_retries + 1):
            ack, data = self.wire.packet(request, None if access.read else access.value)
            if ack == OK:
                if not access.read:
                    return 0
                assert data is not None
                value = data & 0xFFFFFFFF
                if parity(value) != (data >> 32) & 1:
                    raise SwdError(f"parity error reading {self._name(access)}")
                return value
            if ack == WAIT:
                continue
            if ack == FAULT:
                status = self._recover()
                raise SwdFault(f"{self._name(access)} answered FAULT (CTRL/STAT 0x{status:08X})")
            raise SwdError(
                f"no acknowledge ({ack:03b}) to {self._name(access)}: is a target there?"
            )
        raise SwdError(f"{self._name(access)} still WAIT after {self.wait_retries} retries")

    def _recover(self) -> int:
        """Read CTRL/STAT, then clear its sticky errors (ABORT), as ADIv5 says."""
        status = self._access(Access(False, True, DP_CTRL_STAT))
        self._access(Access(False, False, DP_ABORT, ABORT_CLEAR_ALL))
        return status

    @staticmethod
    def _name(access: Access) -> str:
        kind = "AP" if access.ap else "DP"
        return f"{kind} {'read' if access.read else 'write'} 0x{access.address:X}"

    # -- access ports -------------------------------------------------------------------

    def _bank(self, register: int) -> None:
        select = (self.ap << 24) | (register & 0xF0)
        if select != self._select:
            self._access(Access(False, False, DP_SELECT, select))
            self._select = select

    def ap_write(self, register: int, value: int) -> None:
        self._bank(register)
        self._access(Access(True, False, register & 0x0C, value))

    def ap_reads(self, register: int, count: int) -> list[int]:
        """``count`` reads of one AP register (posted: the last comes from RDBUFF)."""
        self._bank(register)
        values: list[int] = []
        self._access(Access(True, True, register & 0x0C))  # posts the first
        for _ in range(count - 1):
            values.append(self._access(Access(True, True, register & 0x0C)))
        values.append(self._access(Access(False, True, DP_RDBUFF)))
        return values

    def ap_read(self, register: int) -> int:
        return self.ap_reads(register, 1)[0]

    # -- memory (MEM-AP) ----------------------------------------------------------------

    def read_words(self, address: int, count: int) -> list[int]:
        """``count`` 32-bit words from ``address`` (word-aligned)."""
        if address % 4:
            raise SwdError(f"address 0x{address:08X} is not word-aligned")
        words: list[int] = []
        self.ap_write(AP_CSW, CSW_WORD_INCREMENT)
        for start, n in _runs(address, count):
            self.ap_write(AP_TAR, start)
            words += self.ap_reads(AP_DRW, n)
        return words

    def write_words(self, address: int, words: Sequence[int]) -> None:
        if address % 4:
            raise SwdError(f"address 0x{address:08X} is not word-aligned")
        self.ap_write(AP_CSW, CSW_WORD_INCREMENT)
        done = 0
        for start, n in _runs(address, len(words)):
            self.ap_write(AP_TAR, start)
            for word in words[done : done + n]:
                self.ap_write(AP_DRW, word)
            done += n
        self._access(Access(False, True, DP_RDBUFF))  # the last write has landed


def _runs(address: int, count: int) -> list[tuple[int, int]]:
    """(start, words) pieces that never cross a TAR auto-increment boundary."""
    runs = []
    while count > 0:
        room = (TAR_WRAP - address % TAR_WRAP) // 4
        n = min(room, count)
        runs.append((address, n))
        address, count = address + 4 * n, count - n
    return runs
