"""Bit-level model of a 93xx Microwire EEPROM, driven by its device DB entry.

Written from the datasheets (Microchip 93AA/LC/C46A/B/C DS20001749K and its 56/66/76/86
siblings, ST M93Cx6 DS1077, onsemi CAT93C46, ROHM BR93G), not from the algorithm:

- CS high selects the part; CS low resets its instruction logic (tCSL 250 ns).
- DI is sampled on each rising edge of the clock; zeros before the first 1 (the start
  bit) are ignored. After the start bit come a 2-bit opcode and the address field:
  x8 7/9/9/11/11 bits and x16 6/8/8/10/10 bits for 93x46/56/66/76/86 (the 56 and 76
  carry one don't-care bit). Opcode 00 is decided by the two address bits that follow:
  11 EWEN, 00 EWDS, 10 ERAL, 01 WRAL (+ data).
- READ 10: after the last address bit DO drives a dummy 0, then the word MSB first,
  then the following words for as long as clocks come (sequential read, no dummy
  bit between words; the address wraps at the end of the array).
- WRITE 01 (+ data) and ERASE 11, ERAL and WRAL: only while erase/write is enabled
  (EWEN; the part powers up disabled, EWDS disables). The self-timed cycle starts when
  CS falls after the complete instruction; during it other instructions are ignored.
  WRITE erases the word first (auto-erase); ERASE and ERAL set every bit to 1.
- Ready/busy: once a cycle has started, raising CS makes DO show 0 while busy and 1
  when ready, until the next start bit is clocked in.

DO is otherwise high impedance (``None`` here; the bus decides what an open line
reads). ``pulse`` returns DO as it stood before the rising edge, i.e. what a master
sampling just before each edge sees: the first bit after a READ's address is the dummy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.devicedb.facts import MicrowireFacts
from app.hal.sim.clock import SimClock
from app.hal.sim.spi_nor_chip import ChipFaults

if TYPE_CHECKING:
    from app.devicedb.models import Device

# instruction opcodes (datasheet instruction set tables)
_READ, _WRITE, _ERASE, _MORE = 0b10, 0b01, 0b11, 0b00
_EWEN, _EWDS, _ERAL, _WRAL = 0b11, 0b00, 0b10, 0b01
# address field length per (size in bytes, word bits): the datasheets' tables
_ADDRESS_BITS = {
    (128, 8): 7,
    (128, 16): 6,
    (256, 8): 9,
    (256, 16): 8,
    (512, 8): 9,
    (512, 16): 8,
    (1024, 8): 11,
    (1024, 16): 10,
    (2048, 8): 11,
    (2048, 16): 10,
}


class MicrowireChip:
    def __init__(
        self,
        device: Device,
        clock: SimClock,
        *,
        faults: ChipFaults | None = None,
        word_bits: int | None = None,
    ) -> None:
        facts = device.facts_as(MicrowireFacts)
        self.clock = clock
        self.size = device.size_bytes
        #: the organisation the ORG pin (or the part) sets: may differ from the entry
        self.word_bits = word_bits or facts.word_bits
        self.address_bits = _ADDRESS_BITS[(self.size, self.word_bits)]
        self.words = self.size * 8 // self.word_bits
        self.write_cycle = facts.write_cycle
        self.erase_all = facts.erase_all
        self.erased = device.erased_value
        self.memory = bytearray([self.erased]) * self.size
        self.faults = faults or ChipFaults()
        self.enabled = False  # erase/write enable latch (EWEN)
        self.busy_until = 0.0
        self.cycles = 0  # self-timed cycles started (for tests)
        self.selected = False
        self._status_shown = False  # a cycle started: DO shows ready/busy while CS high
        self._cycle_started = False
        self._reset_frame()

    # -- power and state ------------------------------------------------------------

    def power_cycle(self) -> None:
        self.enabled = False
        self._cycle_started = False
        self._status_shown = False
        if not self.faults.busy_forever:
            self.busy_until = 0.0

    def busy(self) -> bool:
        return self.clock.now() < self.busy_until

    def ready_at(self) -> float:
        return self.busy_until

    def _reset_frame(self) -> None:
        self._state = "idle"
        self._shift = 0
        self._count = 0
        self._pending: tuple[str, int, int] | None = None  # (instruction, address, data)
        self._read_at = 0
        self._out: list[int] = []
        self._do: int | None = None

    # -- the pins ---------------------------------------------------------------------

    def select(self) -> None:
        """CS rising edge."""
        self.selected = True
        self._reset_frame()
        if self._cycle_started:
            self._status_shown = True

    def deselect(self) -> None:
        """CS falling edge: a complete write instruction starts its cycle."""
        if self.selected and self._pending is not None and not self.busy():
            self._execute(*self._pending)
        self.selected = False
        self._status_shown = False
        self._reset_frame()

    def do_level(self) -> int | None:
        """DO now: the ready/busy status, read data, or None (high impedance)."""
        if self._status_shown:
            return 0 if self.busy() else 1
        return self._do

    def pulse(self, di: int) -> int | None:
        """One SK cycle with DI at ``di``; returns DO as sampled before the edge."""
        before = self.do_level()
        if not self.selected:
            return before
        if self._state == "idle":
            if di:
                self._status_shown = False
                self._state = "command"
                self._count = 0
                self._shift = 0
        elif self._state == "command":
            self._shift = (self._shift << 1) | (di & 1)
            self._count += 1
            if self._count == 2 + self.address_bits:
                self._decode()
        elif self._state == "data":
            self._shift = (self._shift << 1) | (di & 1)
            self._count += 1
            if self._count == self.word_bits:
                name, address, _ = self._pending or ("", 0, 0)
                self._pending = (name, address, self._shift)
                self._state = "done"
        elif self._state == "read":
            self._next_read_bit()
        return before

    # -- instructions ---------------------------------------------------------------

    def _decode(self) -> None:
        n = self.address_bits
        opcode, address = self._shift >> n, self._shift & ((1 << n) - 1)
        self._state = "done"
        if self.busy():
            return  # ignored during the self-timed cycle
        word = address % self.words
        if opcode == _READ:
            self._state = "read"
            self._read_at = word
            self._out = []
            self._do = 0  # the dummy bit
        elif opcode == _WRITE:
            self._pending = ("write", word, 0)
            self._begin_data()
        elif opcode == _ERASE:
            self._pending = ("erase", word, 0)
        else:
            special = address >> (n - 2)
            if special == _EWEN:
                self.enabled = True
            elif special == _EWDS:
                self.enabled = False
            elif special == _ERAL:
                self._pending = ("eral", 0, 0)
            else:
                self._pending = ("wral", 0, 0)
                self._begin_data()

    def _begin_data(self) -> None:
        self._state = "data"
        self._count = 0
        self._shift = 0

    def _next_read_bit(self) -> None:
        if not self._out:
            self._out = self._word_bits(self._read_at)
            self._read_at = (self._read_at + 1) % self.words
        self._do = self._out.pop(0)

    def _word_bits(self, index: int) -> list[int]:
        nbytes = self.word_bits // 8
        at = index * nbytes
        data = bytearray(self.memory[at : at + nbytes])
        fa = self.faults.verify_address
        if fa is not None and at <= fa < at + nbytes and self.memory[fa] != self.erased:
            data[fa - at] ^= 0x10  # a weak cell once programmed
        value = int.from_bytes(data, "big")
        return [(value >> bit) & 1 for bit in range(self.word_bits - 1, -1, -1)]

    def _execute(self, name: str, word: int, data: int) -> None:
        if self._state not in ("done", "read") or not self.enabled:
            return  # an incomplete instruction, or erase/write disabled: nothing starts
        nbytes = self.word_bits // 8
        if name == "write":
            self._store(word, data.to_bytes(nbytes, "big"))
        elif name == "erase":
            self._store(word, bytes([self.erased]) * nbytes)
        elif name == "eral":
            self.memory[:] = bytes([self.erased]) * self.size
            fa = self.faults.erase_fail_address
            if fa is not None:
                self.memory[fa] = 0x00
        elif name == "wral":
            value = data.to_bytes(nbytes, "big")
            for index in range(self.words):
                self._store(index, value)
        timing = self.erase_all if name == "eral" else self.write_cycle
        self._start_cycle(timing.ms_typ, timing.ms_max)

    def _store(self, word: int, value: bytes) -> None:
        at = word * len(value)
        for offset, byte in enumerate(value):
            if at + offset == self.faults.stuck_address:
                byte = self._stuck(byte)
            self.memory[at + offset] = byte

    def _stuck(self, new: int) -> int:
        """The stuck bit is the lowest one first written as 0; it stays 1 from then on."""
        if not self.faults.stuck_mask:
            zeros = ~new & 0xFF
            self.faults.stuck_mask = zeros & -zeros
        return new | self.faults.stuck_mask

    def _start_cycle(self, ms_typ: float, ms_max: float) -> None:
        self.cycles += 1
        self._cycle_started = True
        if self.faults.busy_forever:
            self.busy_until = float("inf")
            return
        self.busy_until = self.clock.now() + self.clock.timing.duration(ms_typ, ms_max)
