"""A target's debug port (ADIv5 SW-DP) and its MEM-AP, over an SwdLink: what the
Cortex-M algorithm reads and writes memory through (app.hal.bus.DebugAccess).

- connect: optionally NRST held low first (connect under reset), line reset, the
  JTAG-to-SWD switch 0xE79E, line reset, DP IDCODE, ABORT of any sticky error, then the
  power-up handshake (CTRL/STAT CSYSPWRUPREQ | CDBGPWRUPREQ until both ACKs read 1);
- SELECT (DP 0x8) is written only when the AP or register bank changes;
- memory: CSW (AP 0x00) sets the access size and single auto-increment, TAR (0x04) the
  address, DRW (0x0C) moves data; runs are split where TAR's auto-increment may stop
  (every 1 KiB, the least ADIv5 allows), and every block goes to the link as one batch,
  so a probe that queues transfers (CMSIS-DAP) makes as few round trips as it can;
- a FAULT clears the sticky errors (CTRL/STAT read, ABORT) and is raised naming the
  access and CTRL/STAT.
"""

from __future__ import annotations

from collections.abc import Sequence

from app.hal.swd import (
    DP_ABORT,
    DP_CTRL_STAT,
    DP_IDCODE,
    DP_RDBUFF,
    DP_SELECT,
    JTAG_TO_SWD,
    Access,
    SwdError,
    SwdFault,
    SwdLink,
)

CSYSPWRUPACK, CSYSPWRUPREQ = 1 << 31, 1 << 30
CDBGPWRUPACK, CDBGPWRUPREQ = 1 << 29, 1 << 28
ABORT_CLEAR_ALL = 0b11110  # STKCMPCLR | STKERRCLR | WDERRCLR | ORUNERRCLR
STICKYERR = 1 << 5
AP_CSW, AP_TAR, AP_DRW, AP_IDR = 0x00, 0x04, 0x0C, 0xFC
#: CSW: HPROT privileged data access, DbgSwEnable; Size in [2:0], AddrInc in [5:4]
CSW_BASE = 0x2300_0000
CSW_SIZE = {1: 0b000, 2: 0b001, 4: 0b010}
CSW_INCREMENT = 0b01 << 4
TAR_WRAP = 1024  # bytes after which TAR auto-increment may stop (ADIv5 minimum)
POWER_UP_POLLS = 100


class DebugPort:
    """One target's SW-DP and its memory through MEM-AP ``ap`` (0 on most Cortex-M)."""

    def __init__(self, link: SwdLink, *, ap: int = 0) -> None:
        self.link = link
        self.ap = ap
        self._select: int | None = None
        self._csw: int | None = None
        self.idcode = 0

    @property
    def name(self) -> str:
        return self.link.name

    # -- the port -----------------------------------------------------------------------

    def connect(self, *, under_reset: bool = False) -> int:
        """Switch the port to SWD, read IDCODE, power the debug domain up; the IDCODE.
        ``under_reset``: NRST is asserted first and left asserted (release it with
        set_reset(False) once the core is set to halt at its reset vector)."""
        if under_reset:
            self.link.set_reset(True)
        self.link.line_reset()
        self.link.sequence(JTAG_TO_SWD, 16)
        self.link.line_reset()
        self._select = self._csw = None
        (self.idcode,) = self._run([Access(False, True, DP_IDCODE)])
        if self.idcode in (0, 0xFFFFFFFF):
            raise SwdError(f"no SW-DP answered (IDCODE 0x{self.idcode:08X})")
        self._run(
            [
                Access(False, False, DP_ABORT, ABORT_CLEAR_ALL),
                Access(False, False, DP_CTRL_STAT, CSYSPWRUPREQ | CDBGPWRUPREQ),
            ]
        )
        acks = CSYSPWRUPACK | CDBGPWRUPACK
        status = 0
        for _ in range(POWER_UP_POLLS):
            (status,) = self._run([Access(False, True, DP_CTRL_STAT)])
            if status & acks == acks:
                return self.idcode
        raise SwdError(f"the debug domain did not power up (CTRL/STAT 0x{status:08X})")

    def set_reset(self, asserted: bool) -> None:
        self.link.set_reset(asserted)

    def close(self) -> None:
        self.link.close()

    def _run(self, accesses: Sequence[Access], what: str = "") -> list[int]:
        """Run one batch. ``what`` (a memory access: "read of 4 words at 0x...") adds a
        check at its end: RDBUFF lets the last write land, then CTRL/STAT must show no
        STICKYERR -- a bus error on a batch's last access faults nothing after it, so
        only this finds it (ADIv5 B2.2.x: errors are sticky, reported by the next AP
        access or CTRL/STAT)."""
        batch = list(accesses)
        # a batch that ends in a write reads RDBUFF so that write lands first; one that
        # ends in a read has its posted value fetched from RDBUFF by the link already
        landing = bool(what) and bool(batch) and not batch[-1].read
        if landing:
            batch.append(Access(False, True, DP_RDBUFF))
        if what:
            batch.append(Access(False, True, DP_CTRL_STAT))
        try:
            values = self.link.transfer(batch)
        except SwdFault as fault:
            failed = batch[min(fault.done, len(batch) - 1)]
            status = self._recover()
            context = f" during the {what}" if what else ""
            raise SwdFault(
                f"{failed.name()} answered FAULT{context} (CTRL/STAT 0x{status:08X})",
                fault.done,
            ) from None
        if not what:
            return values
        status = values.pop()
        if landing:
            values.pop()  # RDBUFF
        if status & STICKYERR:
            self._recover()
            raise SwdFault(f"bus error during the {what} (CTRL/STAT 0x{status:08X})", 0)
        return values

    def _recover(self) -> int:
        """Read CTRL/STAT, then clear its sticky errors (ABORT), as ADIv5 says."""
        self._select = self._csw = None  # the failed batch may have left either anywhere
        (status,) = self.link.transfer([Access(False, True, DP_CTRL_STAT)])
        self.link.transfer([Access(False, False, DP_ABORT, ABORT_CLEAR_ALL)])
        return status

    # -- access ports -------------------------------------------------------------------

    def _bank(self, ap: int, register: int, batch: list[Access]) -> None:
        select = (ap << 24) | (register & 0xF0)
        if select != self._select:
            batch.append(Access(False, False, DP_SELECT, select))
            self._select = select

    def ap_write(self, ap: int, register: int, value: int) -> None:
        batch: list[Access] = []
        self._bank(ap, register, batch)
        batch.append(Access(True, False, register & 0x0C, value))
        self._run(batch)
        if ap == self.ap and register == AP_CSW:
            self._csw = value

    def ap_read(self, ap: int, register: int) -> int:
        batch: list[Access] = []
        self._bank(ap, register, batch)
        batch.append(Access(True, True, register & 0x0C))
        return self._run(batch)[-1]

    # -- memory (MEM-AP) ----------------------------------------------------------------

    def _size(self, size: int, batch: list[Access], increment: bool = True) -> None:
        csw = CSW_BASE | CSW_SIZE[size] | (CSW_INCREMENT if increment else 0)
        self._bank(self.ap, AP_CSW, batch)
        if csw != self._csw:
            batch.append(Access(True, False, AP_CSW, csw))
            self._csw = csw

    def read_words(self, address: int, count: int) -> list[int]:
        """``count`` 32-bit words from ``address`` (word-aligned), one batch."""
        _aligned(address, 4)
        batch: list[Access] = []
        self._size(4, batch)
        for start, n in _runs(address, count * 4):
            batch.append(Access(True, False, AP_TAR, start))
            batch += [Access(True, True, AP_DRW)] * (n // 4)
        return self._run(batch, f"read of {count} words at 0x{address:08X}")

    def write_words(self, address: int, words: Sequence[int]) -> None:
        _aligned(address, 4)
        batch: list[Access] = []
        self._size(4, batch)
        done = 0
        for start, n in _runs(address, len(words) * 4):
            batch.append(Access(True, False, AP_TAR, start))
            batch += [Access(True, False, AP_DRW, w) for w in words[done : done + n // 4]]
            done += n // 4
        self._run(batch, f"write of {len(words)} words at 0x{address:08X}")

    def write_polled(
        self, units: Sequence[tuple[int, int]], size: int, status: int, busy: int, ready: int = 0
    ) -> list[int]:
        """Write each (address, value) as one ``size``-byte access and, after each, read
        the word at ``status`` again until its ``busy`` bits read ``ready`` (a flash
        controller's BSY clear, or a READY bit set); the status seen after each unit.
        One batch, so a probe with value-match reads (CMSIS-DAP) polls on its own. TAR
        does not auto-increment here, so a repeated status read reads the same
        register (read at ``size``: a half-word status read holds bits 15:0)."""
        if size != 4 and busy >> (8 * size):
            raise ValueError(f"busy mask 0x{busy:X} does not fit a {size}-byte status read")
        _aligned(status, 4)
        batch: list[Access] = []
        self._size(size, batch, increment=False)  # the status re-reads stay on it
        for address, value in units:
            _aligned(address, size)
            lane = 8 * (address & 3)
            batch += [
                Access(True, False, AP_TAR, address),
                Access(True, False, AP_DRW, (value << lane) & 0xFFFFFFFF),
                Access(True, False, AP_TAR, status),
                Access(True, True, AP_DRW, mask=busy, match=ready),
            ]
        mask = (1 << (8 * size)) - 1
        first = units[0][0] if units else status
        values = self._run(batch, f"polled write of {len(units)} units at 0x{first:08X}")
        return [value & mask for value in values]

    def write_read_back(self, units: Sequence[Sequence[tuple[int, int]]], size: int) -> list[int]:
        """Program flash without polling: for each unit (one or more (address, value)
        accesses of ``size`` bytes, e.g. a double-word's two words), write its accesses
        and read its last address back. The read waits on the bus while the flash
        programs (every manual here: a read of the flash while it is written stalls
        the bus, seen on SWD as WAIT), so it returns once the unit is done, with the
        value the cell now holds: the caller compares it. One batch for all units."""
        batch: list[Access] = []
        self._size(size, batch, increment=False)
        mask = (1 << (8 * size)) - 1
        for unit in units:
            for address, value in unit:
                _aligned(address, size)
                batch += [
                    Access(True, False, AP_TAR, address),
                    Access(True, False, AP_DRW, (value << (8 * (address & 3))) & 0xFFFFFFFF),
                ]
            batch.append(Access(True, True, AP_DRW))  # TAR still holds the last address
        first = units[0][0][0] if units else 0
        values = self._run(batch, f"programming of {len(units)} units at 0x{first:08X}")
        lanes = [8 * (unit[-1][0] & 3) for unit in units]
        return [(value >> lane) & mask for value, lane in zip(values, lanes, strict=True)]


def _aligned(address: int, size: int) -> None:
    if address % size:
        raise SwdError(f"address 0x{address:08X} is not aligned to {size} bytes")


def _runs(address: int, length: int) -> list[tuple[int, int]]:
    """(start, bytes) pieces that never cross a TAR auto-increment boundary."""
    runs = []
    while length > 0:
        n = min(TAR_WRAP - address % TAR_WRAP, length)
        runs.append((address, n))
        address, length = address + n, length - n
    return runs
