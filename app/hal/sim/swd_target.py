"""A simulated Cortex-M debug port at the SWD packet level, written from the ARM Debug
Interface v5 specification (not from app.hal.swd): SW-DP registers, one MEM-AP (AHB-AP)
over a memory map, posted AP reads, sticky errors, WAIT and line-state faults.

- The port speaks SWD only after a line reset, the JTAG-to-SWD sequence (0xE79E, LSB
  first) and another line reset; until then, and for a request whose start, stop, park
  or parity bit is wrong, it does not drive the line (the host reads 0b111).
- DP: IDCODE (read 0x0), ABORT (write 0x0: bit 1 STKCMPCLR, 2 STKERRCLR, 3 WDERRCLR,
  4 ORUNERRCLR), CTRL/STAT (0x4: each power-up request bit 28/30 is acknowledged in
  bit 29/31; STICKYERR is bit 5), SELECT (write 0x8: APSEL 31:24, APBANKSEL 7:4),
  RDBUFF (read 0xC: the last AP read's value).
- AP 0: CSW (0x00), TAR (0x04), DRW (0x0C), BD0-BD3 (0x10-0x1C), IDR (0xFC). An AP read
  returns the value of the previous AP read (posted). DRW transfers move TAR on by the
  access size with CSW AddrInc single, wrapping inside ``tar_wrap`` bytes: ADIv5 (IHI
  0031C, 7.2.2) guarantees the increment in TAR[9:0] only, so 1 KiB by default (a
  Cortex-M0+ AP wraps there: LibSWD issue #15); Cortex-M3/M4 AHB-APs carry it across
  TAR[11:0], 4 KiB (app.hal.sim.cortex_m_core). The banked data registers reach the
  word at (TAR & ~0xF) + 4n for BDn and leave TAR alone (ADIv5 7.2.2 "Banked Data
  registers"; CoreSight DAP-Lite TRM DDI 0314H 2.8.7: "TAR[31:4] + DAPADDR[3:2]", "auto
  address incrementing is not performed on DAP accesses to BD0-BD3"): OpenOCD reads and
  writes single words (the debug registers, component IDs) through them. Packed
  transfers (AddrInc 0b10) are not modelled: CSW bit 5 reads 0, so a host that probes
  for them (OpenOCD writes 0b10 and reads CSW back) finds none and uses single
  increments. A transfer to an unmapped address sets STICKYERR; while STICKYERR is set
  every AP access answers FAULT. AP access before the debug power-up acknowledge
  answers FAULT too.
- Writes are buffered (RM0008 31.8.4: "The SW-DP implements a write buffer (for both DP
  or AP writes), that enables it to accept a write operation even when other
  transactions are still outstanding. If the write buffer is full, the target returns
  WAIT"): a write's acknowledge is given before its data is on the wire, so it cannot
  depend on whether the bus takes the data. The write is answered OK and performed once
  its data is in; if the bus stalls it (flash programming), the AP holds it and every
  later request answers WAIT until the bus takes it (the model tries again at each
  request: it has no clock between packets, so the held write lands up to a packet
  later than on a real part), but the three that may never be answered WAIT (IDCODE
  and CTRL/STAT reads, ABORT writes: ADIv5 B4.3.2). A CTRL/STAT read then cancels the
  held write and sets WDATAERR (bit 7; Arm knowledge article KA16363 "Serial Wire
  Debug sequence fails to produce WAIT responses for wait-states then generates
  WDATAERR", Cortex-M3/M4 SWJ-DP), as an ABORT with DAPABORT (bit 0) does without the
  flag; ABORT bit 3 (WDERRCLR) clears it. A read whose bus access
  stalls answers WAIT itself (a simplification: the AP would accept it and WAIT the
  next request; a host sees the same values either way).
- Overrun detection (CTRL/STAT bit 0 ORUNDETECT): a WAIT or FAULT then sets STICKYORUN
  (bit 1), and while it is set every packet but a read of IDCODE or CTRL/STAT or a write
  to ABORT answers FAULT, so nothing a host sent after the refused packet takes effect;
  ABORT bit 4 (ORUNERRCLR) clears it. ABORT writes are never answered WAIT (ADIv5, IHI
  0031E B4.3.2: "A WAIT response must not be issued to ... writes to the ABORT register").
- ``ack_for(request)`` says which acknowledge ``packet()`` will give, acting on nothing
  but the held write (the bus may have taken it since): a bit-level front
  (tests/swd_bitlevel.py) must drive a write's ACK before the write data has been
  clocked in.

Subclasses put a real memory map behind the AP (``_bus_read``/``_bus_write``, which may
raise ``BusFault`` or ``BusStall`` from app.hal.sim.mcu_memory), more access ports
(``_other_ap``) and their own AP IDR/BASE (app.hal.sim.mcu_target does all three).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from app.hal.sim.mcu_memory import BusFault, BusStall

_OK, _WAIT, _FAULT, _NONE = 0b001, 0b010, 0b100, 0b111
_SWITCH = 0xE79E
_IDCODE_M3 = 0x1BA01477  # ARM SW-DP (ADIv5), as Cortex-M3/M4 parts report it
_AHB_AP_IDR = 0x24770011
_ORUNDETECT, _STICKYORUN, _STICKYCMP, _STICKYERR = 1 << 0, 1 << 1, 1 << 4, 1 << 5
_WDATAERR = 1 << 7
_STICKY = _STICKYERR | _STICKYORUN | _STICKYCMP | _WDATAERR
_IDCODE_READ, _CTRL_STAT_READ, _ABORT_WRITE = 0xA5, 0x8D, 0x81
_ALWAYS_ACCEPTED = (_IDCODE_READ, _CTRL_STAT_READ, _ABORT_WRITE)
_DAPABORT = 1 << 0
_ADDRINC_PACKED = 1 << 5  # CSW AddrInc 0b10: packed transfers, not modelled
_DEVICE_EN = 1 << 6  # CSW DeviceEn (read-only): the AP can reach its bus


def _even(value: int) -> int:
    return bin(value).count("1") & 1


@dataclass
class SimSwdTarget:
    """``regions``: base address -> bytes of memory there (RAM, flash as plain memory)."""

    regions: dict[int, bytearray] = field(default_factory=dict)
    idcode: int = _IDCODE_M3
    present: bool = True
    wait_next: int = 0  # answer WAIT to this many packets first (a busy bus)
    packets: int = 0  # every packet the target answered (for tests)
    ap_reads: int = 0
    ap_idr: int = _AHB_AP_IDR
    ap_base: int = 0xFFFFFFFF  # BASE (0xF8): no debug entry (ADIv5 legacy format)
    tar_wrap: int = 0x400  # TAR auto-increment boundary (bytes)

    def __post_init__(self) -> None:
        self._swd = False
        self._reset_seen = False
        self._ctrl = 0
        self._select = 0
        self._posted = 0
        self._csw = 0
        self._tar = 0
        self._held: tuple[int, int, int] | None = None  # a stalled write: address, value, size

    # -- the line -------------------------------------------------------------------------

    def line_reset(self) -> None:
        self._reset_seen = True

    def sequence(self, bits: int, count: int) -> None:
        if self._reset_seen and count == 16 and bits & 0xFFFF == _SWITCH:
            self._swd = True
        self._reset_seen = False

    def ack_for(self, request: int) -> int:
        """The acknowledge ``packet(request, ...)`` gives in the present state; the only
        thing it may do is let the bus take a held write. A model that changes
        packet()'s acknowledges overrides this or ``_must_wait`` too."""
        body = (request >> 1) & 0xF
        framed = request & 1 and not (request >> 6) & 1 and (request >> 7) & 1
        if not (self.present and self._swd and framed and (request >> 5) & 1 == _even(body)):
            return _NONE
        if request in _ALWAYS_ACCEPTED:
            return _OK
        if self._ctrl & _STICKYORUN:
            return _FAULT
        if self.wait_next > 0 or self._must_wait(request):
            return _WAIT
        return _FAULT if body & 1 and self._ap_refused() else _OK

    def _must_wait(self, request: int) -> bool:
        """The port cannot take ``request`` yet: the AP still holds a write."""
        return self._still_held()

    def _still_held(self) -> bool:
        """The AP holds a write the bus stalled, and the bus still does not take it
        (tried again now)."""
        if self._held is None:
            return False
        address, value, size = self._held
        try:
            self._bus_write(address, value, size)
        except BusStall:
            return True
        except BusFault:
            self._ctrl |= _STICKYERR
        self._held = None
        return False

    def _waited(self, request: int) -> None:
        """``request`` was answered WAIT (for a model's own reasons to count down)."""

    def _ap_refused(self) -> bool:
        """A sticky error is set or the debug domain is not powered up (no CDBGPWRUPACK)."""
        return bool(self._ctrl & (_STICKYERR | _WDATAERR) or not self._ctrl & (1 << 29))

    def packet(self, request: int, data: int | None) -> tuple[int, int | None]:
        ack = self.ack_for(request)
        if ack == _NONE:
            return _NONE, None
        self.packets += 1
        if ack != _OK:
            if ack == _WAIT:
                if self.wait_next > 0:
                    self.wait_next -= 1
                else:
                    self._waited(request)
            elif not self._ctrl & _STICKYORUN:  # an AP access refused
                self._ctrl |= _STICKYERR
            if self._ctrl & _ORUNDETECT:
                self._ctrl |= _STICKYORUN
            return ack, None
        body = (request >> 1) & 0xF
        ap, read, address = bool(body & 1), bool(body & 2), ((body >> 2) & 3) << 2
        if ap:
            return self._ap(read, address, data)
        return self._dp(read, address, data)

    @staticmethod
    def _answer(value: int) -> tuple[int, int]:
        value &= 0xFFFFFFFF
        return _OK, value | (_even(value) << 32)

    # -- DP -------------------------------------------------------------------------------

    def _dp(self, read: bool, address: int, data: int | None) -> tuple[int, int | None]:
        if read:
            if address == 0x0:
                return self._answer(self.idcode)
            if address == 0x4:
                if self._still_held():  # a read that may not wait cancels the write
                    self._held = None
                    self._ctrl |= _WDATAERR
                return self._answer(self._ctrl)
            if address == 0xC:
                return self._answer(self._posted)
            return self._answer(0)
        assert data is not None
        if address == 0x0:  # ABORT: clear the sticky flags asked for
            if data & _DAPABORT and self._still_held():
                self._held = None
            cleared = {
                1 << 1: _STICKYCMP,
                1 << 2: _STICKYERR,
                1 << 3: _WDATAERR,
                1 << 4: _STICKYORUN,
            }
            for bit, flag in cleared.items():
                if data & bit:
                    self._ctrl &= ~flag
        elif address == 0x4:
            requests = data & ((1 << 28) | (1 << 30))
            sticky = self._ctrl & _STICKY
            self._ctrl = sticky | requests | (requests << 1) | (data & _ORUNDETECT)
        elif address == 0x8:
            self._select = data
        return _OK, None

    # -- AP 0 (MEM-AP) ----------------------------------------------------------------------

    def _ap(self, read: bool, address: int, data: int | None) -> tuple[int, int | None]:
        register = (self._select & 0xF0) | address
        apsel = self._select >> 24
        if read:
            try:
                if apsel:
                    value = self._other_ap_read(apsel, register)
                elif register == 0x0C:
                    value = self._transfer_read(self._tar)
                    self._advance()
                elif 0x10 <= register <= 0x1C:
                    value = self._transfer_read(self._banked(register))
                else:
                    value = self._ap_value(register)
            except BusStall:
                return _WAIT, None
            self.ap_reads += 1
            previous = self._posted
            self._posted = value
            return self._answer(previous)
        assert data is not None
        if apsel:
            self._other_ap_write(apsel, register, data)
        elif register == 0x00:
            self._csw = data & ~_ADDRINC_PACKED
        elif register == 0x04:
            self._tar = data
        elif register == 0x0C:
            self._transfer_write(self._tar, data)
            self._advance()
        elif 0x10 <= register <= 0x1C:
            self._transfer_write(self._banked(register), data)
        return _OK, None

    def _banked(self, register: int) -> int:
        """The address BDn (AP 0x10 + 4n) reaches: TAR[31:4] with n in bits 3:2."""
        return (self._tar & ~0xF) | (register & 0xC)

    def _other_ap_read(self, apsel: int, register: int) -> int:
        """A register of an AP other than 0: none here, reads 0 (posted like any AP read)."""
        return 0

    def _other_ap_write(self, apsel: int, register: int, data: int) -> None:
        """Writes to APs other than 0 are ignored here."""

    def _ap_value(self, register: int) -> int:
        if register == 0x00:
            return (self._csw & ~_DEVICE_EN) | (_DEVICE_EN if self._device_enabled() else 0)
        if register == 0x04:
            return self._tar
        if register == 0xF8:
            return self.ap_base
        if register == 0xFC:
            return self.ap_idr
        return 0

    def _device_enabled(self) -> bool:
        return True

    def _transfer_read(self, address: int) -> int:
        """A DRW/BDn read at ``address`` in CSW's size, its bytes in their lanes; a bus
        error sets STICKYERR (the read itself was acknowledged: it is posted); a stall
        raises BusStall (the read answers WAIT)."""
        size = self._size()
        try:
            return self._bus_read(address & ~(size - 1), size) << (8 * (address & 3 & -size))
        except BusFault:
            self._ctrl |= _STICKYERR
            return 0

    def _transfer_write(self, address: int, data: int) -> None:
        """A DRW/BDn write, already acknowledged: a bus error sets STICKYERR, a stall
        leaves the write held (the next requests WAIT until the bus takes it)."""
        size = self._size()
        lane = 8 * (address & 3 & -size)
        held = (address & ~(size - 1), (data >> lane) & ((1 << 8 * size) - 1), size)
        try:
            self._bus_write(*held)
        except BusFault:
            self._ctrl |= _STICKYERR
        except BusStall:
            self._held = held

    def _bus_read(self, address: int, size: int) -> int:
        """``size`` bytes at ``address`` (aligned), as a number; BusFault/BusStall."""
        word = self._load(address & ~3)
        if word is None:
            raise BusFault(f"nothing mapped at 0x{address:08X}")
        return (word >> (8 * (address & 3))) & ((1 << (8 * size)) - 1)

    def _bus_write(self, address: int, value: int, size: int) -> None:
        if size == 4:
            stored = self._store(address, value)
        else:
            word = self._load(address & ~3)
            if word is None:
                raise BusFault(f"nothing mapped at 0x{address:08X}")
            shift = 8 * (address & 3)
            mask = ((1 << (8 * size)) - 1) << shift
            stored = self._store(address & ~3, (word & ~mask) | ((value << shift) & mask))
        if not stored:
            raise BusFault(f"nothing mapped at 0x{address:08X}")

    def _size(self) -> int:
        """Bytes per access: CSW Size (bits 2:0) 0 byte, 1 half-word, 2 word."""
        return {0: 1, 1: 2}.get(self._csw & 7, 4)

    def _advance(self) -> None:
        """AddrInc single (CSW bits 5:4 = 01) moves TAR on by the access size, within
        the ``tar_wrap`` auto-increment boundary."""
        if (self._csw >> 4) & 3 == 1:
            low = self.tar_wrap - 1
            self._tar = (self._tar & ~low) | ((self._tar + self._size()) & low)

    def _where(self, address: int) -> tuple[bytearray, int] | None:
        for base, memory in self.regions.items():
            if base <= address and address + 4 <= base + len(memory):
                return memory, address - base
        return None

    def _load(self, address: int) -> int | None:
        found = self._where(address)
        if found is None:
            return None
        memory, offset = found
        return int.from_bytes(memory[offset : offset + 4], "little")

    def _store(self, address: int, value: int) -> bool:
        found = self._where(address)
        if found is None:
            return False
        memory, offset = found
        memory[offset : offset + 4] = (value & 0xFFFFFFFF).to_bytes(4, "little")
        return True
