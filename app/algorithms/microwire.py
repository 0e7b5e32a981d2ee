"""93xx Microwire EEPROMs (93C46/56/66/76/86 and their AA/LC/C, A/B/C variants).

Every instruction is one chip-select frame, CS active high: a start bit (1), a 2-bit
opcode and the address field (its length fixed by size and organisation, don't-care bits
included), then data for WRITE/WRAL:

- READ 10 + address: the part answers a dummy 0, then the word, most significant bit
  first; with CS held high it goes on with the next words (sequential read);
- WRITE 01 + address + word, ERASE 11 + address: self-timed, with auto-erase; the
  cycle starts when CS falls; CS raised again, DO reads 0 while busy and 1 when ready;
- under opcode 00, the two address bits after it: EWEN 11, EWDS 00, ERAL 10, WRAL 01.

The part powers up write-disabled; EWEN enables erase/write until EWDS or power-off,
so a cycle sends EWEN before its writes and EWDS at its end (:meth:`finish`).

x16 words are stored in images most significant byte first, the order in which the
bits travel on the wire (D15..D8 is the word's first byte). The part has no ID: the
READ's dummy 0 tells a part from an open line (pulled high); a part strapped to the
other organisation (its ORG pin) takes a different number of address bits, so its
dummy bit comes one clock early or late and the check fails with a hint.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from app.algorithms import register
from app.algorithms.base import (
    ChipAlgorithm,
    ChipError,
    ChipIdentity,
    EraseBlock,
    Geometry,
    Protection,
    Tick,
)
from app.devicedb.facts import MicrowireFacts
from app.hal.bus import MicrowireBus, MicrowireOp, MicrowireStep, ReadyWait
from app.hal.errors import BusTimeout

if TYPE_CHECKING:
    from app.devicedb.models import Device

READ, WRITE, ERASE, SPECIAL = 0b10, 0b01, 0b11, 0b00
EWEN, EWDS, ERAL = 0b11, 0b00, 0b10  # the two address bits after opcode 00
ERAL_OPCODE = 0x100 | (SPECIAL << 2) | ERAL  # names the chip erase in Geometry
READ_CHUNK_WORDS = 128
WORDS_PER_BATCH = 16
WRITE_KIND = "word write"


@register
class Microwire(ChipAlgorithm):
    name = "microwire"
    bus: MicrowireBus

    def __init__(self, bus: MicrowireBus, device: Device) -> None:
        super().__init__(bus, device)
        self.facts = device.facts_as(MicrowireFacts)
        self.word = self.facts.word_bytes
        self._geometry = Geometry(
            size=device.size_bytes,
            page_size=self.word,
            regions=(),
            chip_erase=EraseBlock(ERAL_OPCODE, device.size_bytes, self.facts.erase_all),
            erased_value=device.erased_value,
            program=self.facts.write_cycle,
            fill_pages=False,
        )

    @property
    def geometry(self) -> Geometry:
        return self._geometry

    # -- instructions ---------------------------------------------------------------

    def _frame(self, opcode: int, address: int, data: int | None = None) -> MicrowireOp:
        """Start bit, opcode, address field (and the data word)."""
        n = self.facts.address_bits
        bits = (0b1 << (2 + n)) | (opcode << n) | (address % (1 << n))
        count = 3 + n
        if data is not None:
            bits = (bits << self.facts.word_bits) | data
            count += self.facts.word_bits
        return MicrowireOp(bits, count)

    def _special(self, which: int) -> MicrowireOp:
        return self._frame(SPECIAL, which << (self.facts.address_bits - 2))

    def _wait(self, kind: str, cycle_ms_typ: float, cycle_ms_max: float) -> ReadyWait:
        return ReadyWait(cycle_ms_max * 1.2 / 1000.0 + 0.02, cycle_ms_typ / 1000.0, kind)

    def _read_words(self, first: int, count: int) -> list[int]:
        """``count`` words from word address ``first`` in one sequential READ."""
        w = self.facts.word_bits
        op = self._frame(READ, first)
        answer = self.bus.transfer([MicrowireOp(op.bits, op.count, 1 + w * count)])[0]
        mask = (1 << w) - 1
        return [(answer >> (w * (count - 1 - i))) & mask for i in range(count)]

    # -- identification -------------------------------------------------------------

    def identify(self) -> ChipIdentity:
        """No ID instruction: READ of word 0 must begin with the dummy 0."""
        w = self.facts.word_bits
        op = self._frame(READ, 0)
        answer = self.bus.transfer([MicrowireOp(op.bits, op.count, 1 + w)])[0]
        if not answer >> w:
            return ChipIdentity("microwire", b"", True)
        hint = (
            f"; or the ORG pin selects the other organisation (this entry is x{w})"
            if self.facts.org_pin
            else ""
        )
        raw = answer.to_bytes((1 + w + 7) // 8, "big")
        return ChipIdentity("microwire", raw, False, f"no dummy 0 before the data{hint}")

    def prepare(self) -> None:
        if self.device.max_clock_hz:
            self.bus.set_clock(self.device.max_clock_hz)

    # -- operations -----------------------------------------------------------------

    def read(self, start: int, length: int, tick: Tick) -> bytes:
        word = self.word
        first, end = start // word, -(-(start + length) // word)
        out = bytearray()
        for at in range(first, end, READ_CHUNK_WORDS):
            n = min(READ_CHUNK_WORDS, end - at)
            for value in self._read_words(at, n):
                out += value.to_bytes(word, "big")
            tick(min(len(out), length + start - first * word))
        skip = start - first * word
        return bytes(out[skip : skip + length])

    def erase_blocks(self, blocks: Sequence[tuple[EraseBlock, int]], tick: Tick) -> None:
        if blocks:
            raise ChipError("Microwire EEPROMs erase whole (ERAL) or word by word on write")

    def erase_chip(self) -> None:
        """EWEN, ERAL (every cell to 1), wait for ready."""
        cycle = self.facts.erase_all
        try:
            self.bus.transfer(
                [
                    self._special(EWEN),
                    self._special(ERAL),
                    self._wait("erase all", cycle.ms_typ, cycle.ms_max),
                ]
            )
        except BusTimeout as err:
            raise ChipError(
                f"ERAL did not finish: {err} (datasheet maximum {cycle.ms_max:g} ms)"
            ) from None

    def program(self, writes: Sequence[tuple[int, bytes]], tick: Tick) -> None:
        words = self._words(writes)
        cycle = self.facts.write_cycle
        wait = self._wait(WRITE_KIND, cycle.ms_typ, cycle.ms_max)
        done = 0
        self.bus.transfer([self._special(EWEN)])
        for first in range(0, len(words), WORDS_PER_BATCH):
            batch = words[first : first + WORDS_PER_BATCH]
            ops: list[MicrowireStep] = []
            for address, value in batch:
                ops += [self._frame(WRITE, address, value), wait]
            try:
                self.bus.transfer(ops)
            except BusTimeout as err:
                at = batch[0][0] * self.word
                raise ChipError(
                    f"write cycle in 0x{at:X}..0x{(batch[-1][0] + 1) * self.word:X} did not"
                    f" finish: {err} (datasheet maximum {cycle.ms_max:g} ms)",
                    at,
                ) from None
            done += len(batch) * self.word
            tick(done)

    def _words(self, writes: Sequence[tuple[int, bytes]]) -> list[tuple[int, int]]:
        """(word address, value) for every word the writes touch; a word only partly
        in the image keeps its other byte as the part holds it (read first)."""
        word = self.word
        merged: dict[int, bytearray] = {}
        covered: dict[int, set[int]] = {}
        for address, data in writes:
            for pos, byte in enumerate(data):
                index, lane = divmod(address + pos, word)
                merged.setdefault(index, bytearray(word))[lane] = byte
                covered.setdefault(index, set()).add(lane)
        for index, lanes in covered.items():
            if len(lanes) < word:
                current = self._read_words(index, 1)[0].to_bytes(word, "big")
                for lane in set(range(word)) - lanes:
                    merged[index][lane] = current[lane]
        return [(index, int.from_bytes(merged[index], "big")) for index in sorted(merged)]

    # -- protection -----------------------------------------------------------------

    def protection(self) -> Protection:
        return Protection(False, "no write protection bits (EWEN/EWDS gate writes while powered)")

    def unprotect(self) -> None:
        """Nothing to clear: the part has no non-volatile protection."""

    def protect(self) -> None:
        raise ChipError(
            "Microwire EEPROMs have no write protection to set: the part is left"
            " write-disabled (EWDS) after every cycle"
        )

    def finish(self, passed: bool) -> None:
        """Leave the part write-disabled (EWDS)."""
        self.bus.transfer([self._special(EWDS)])
