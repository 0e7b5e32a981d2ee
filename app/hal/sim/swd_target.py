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
- AP 0: CSW (0x00), TAR (0x04), DRW (0x0C), IDR (0xFC). An AP read returns the value of
  the previous AP read (posted). DRW transfers move TAR on by 4 with CSW AddrInc single,
  wrapping inside 1 KiB. Packed transfers (AddrInc 0b10) are not modelled: CSW bit 5
  reads 0, so a host that probes for them (OpenOCD writes 0b10 and reads CSW back)
  finds none and uses single increments. A transfer to an unmapped address sets
  STICKYERR; while STICKYERR is set every AP access answers FAULT. AP access before the
  debug power-up acknowledge answers FAULT too.
- Overrun detection (CTRL/STAT bit 0 ORUNDETECT): a WAIT or FAULT then sets STICKYORUN
  (bit 1), and while it is set every packet but a read of IDCODE or CTRL/STAT or a write
  to ABORT answers FAULT, so nothing a host sent after the refused packet takes effect;
  ABORT bit 4 (ORUNERRCLR) clears it. ABORT writes are never answered WAIT (ADIv5, IHI
  0031E B4.3.2: "A WAIT response must not be issued to ... writes to the ABORT register").
- ``ack_for(request)`` says which acknowledge ``packet()`` will give, without acting: a
  bit-level front (tests/swd_bitlevel.py) must drive a write's ACK before the write data
  has been clocked in.

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
_ALWAYS_ACCEPTED = (0xA5, 0x8D, 0x81)  # IDCODE read, CTRL/STAT read, ABORT write
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

    def __post_init__(self) -> None:
        self._swd = False
        self._reset_seen = False
        self._ctrl = 0
        self._select = 0
        self._posted = 0
        self._csw = 0
        self._tar = 0

    # -- the line -------------------------------------------------------------------------

    def line_reset(self) -> None:
        self._reset_seen = True

    def sequence(self, bits: int, count: int) -> None:
        if self._reset_seen and count == 16 and bits & 0xFFFF == _SWITCH:
            self._swd = True
        self._reset_seen = False

    def ack_for(self, request: int) -> int:
        """The acknowledge ``packet(request, ...)`` gives in the present state (no side
        effects). A model that changes packet()'s acknowledges overrides this too."""
        body = (request >> 1) & 0xF
        framed = request & 1 and not (request >> 6) & 1 and (request >> 7) & 1
        if not (self.present and self._swd and framed and (request >> 5) & 1 == _even(body)):
            return _NONE
        if request in _ALWAYS_ACCEPTED:
            return _OK
        if self._ctrl & _STICKYORUN:
            return _FAULT
        if self.wait_next > 0:
            return _WAIT
        return _FAULT if body & 1 and self._ap_refused() else _OK

    def _ap_refused(self) -> bool:
        """A sticky error is set or the debug domain is not powered up (no CDBGPWRUPACK)."""
        return bool(self._ctrl & _STICKYERR or not self._ctrl & (1 << 29))

    def packet(self, request: int, data: int | None) -> tuple[int, int | None]:
        ack = self.ack_for(request)
        if ack == _NONE:
            return _NONE, None
        self.packets += 1
        if ack != _OK:
            if ack == _WAIT:
                self.wait_next -= 1
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
                return self._answer(self._ctrl)
            if address == 0xC:
                return self._answer(self._posted)
            return self._answer(0)
        assert data is not None
        if address == 0x0:  # ABORT: clear the sticky flags asked for
            cleared = {1 << 1: _STICKYCMP, 1 << 2: _STICKYERR, 1 << 4: _STICKYORUN}
            for bit, flag in cleared.items():
                if data & bit:
                    self._ctrl &= ~flag
        elif address == 0x4:
            requests = data & ((1 << 28) | (1 << 30))
            sticky = self._ctrl & (_STICKYERR | _STICKYORUN | _STICKYCMP)
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
                    value = self._drw_read()
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
            try:
                self._drw_write(data)
            except BusStall:
                return _WAIT, None
        return _OK, None

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

    def _drw_read(self) -> int:
        """The DRW read at TAR in CSW's size, its bytes in their lanes; a bus error sets
        STICKYERR (the read itself was acknowledged: it is posted)."""
        size, address = self._size(), self._tar
        try:
            value = self._bus_read(address & ~(size - 1), size) << (8 * (address & 3 & -size))
        except BusFault:
            self._ctrl |= _STICKYERR
            value = 0
        self._advance()
        return value

    def _drw_write(self, data: int) -> None:
        size, address = self._size(), self._tar
        lane = 8 * (address & 3 & -size)
        try:
            self._bus_write(address & ~(size - 1), (data >> lane) & ((1 << 8 * size) - 1), size)
        except BusFault:
            self._ctrl |= _STICKYERR
        self._advance()

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
        the 1 KiB TAR auto-increment boundary."""
        if (self._csw >> 4) & 3 == 1:
            step = self._size()
            self._tar = (self._tar & ~0x3FF) | ((self._tar + step) & 0x3FF)

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
