"""The write sequences of SPI NOR parts that have no page program.

- byte program: 02h with one data byte, after WREN, one busy wait per byte (older SST,
  Atmel and PMC parts);
- SST auto-address-increment word program (AAI, ADh), per SST25VF016B and its family:
  WREN, then ``AD A23-A0 D0 D1`` for the first word (even address), then ``AD D0 D1``
  for each next word, the busy bit polled after every word, WRDI to leave the mode.
  WREN is not sent again inside the sequence. A run that starts at an odd address or
  ends one byte past a word is completed with byte programs.

Bytes that are already erased (0xFF) are left out of byte programming; AAI writes whole
words, so a run is cut where a long stretch of erased bytes lies between data (each cut
costs one WREN and one address).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from app.hal.bus import SpiOp, WaitReady

WREN = SpiOp(b"\x06")
WRDI = SpiOp(b"\x04")
BYTE_PROGRAM = 0x02
AAI_WORD = 0xAD
#: erased bytes worth a new AAI sequence instead of writing them (a new start costs
#: WREN, the opcode and 3 address bytes)
AAI_GAP = 16

Step = SpiOp | WaitReady
Command = Callable[[int, int], bytes]  # (opcode, address) -> opcode + address bytes


def runs(writes: Sequence[tuple[int, bytes]]) -> Iterator[tuple[int, bytes]]:
    """``writes`` (sorted, non-overlapping) merged where they touch."""
    start, data = -1, bytearray()
    for address, chunk in writes:
        if data and address == start + len(data):
            data += chunk
            continue
        if data:
            yield start, bytes(data)
        start, data = address, bytearray(chunk)
    if data:
        yield start, bytes(data)


def byte_program_ops(
    address: int, data: bytes, cmd: Command, wait: WaitReady, erased: int = 0xFF
) -> list[Step]:
    """WREN + 02h + one byte + busy wait, for every byte that is not already erased."""
    ops: list[Step] = []
    for offset, value in enumerate(data):
        if value != erased:
            ops += [WREN, SpiOp(cmd(BYTE_PROGRAM, address + offset) + bytes([value])), wait]
    return ops


def aai_pieces(address: int, data: bytes, erased: int = 0xFF) -> Iterator[tuple[int, bytes]]:
    """A run cut at stretches of at least AAI_GAP erased bytes (nothing to write there)."""
    blank = bytes([erased]) * AAI_GAP
    pos = 0
    while pos < len(data):
        gap = data.find(blank, pos)
        end = len(data) if gap < 0 else gap
        if end > pos:
            yield address + pos, data[pos:end]
        if gap < 0:
            return
        pos = gap
        while pos < len(data) and data[pos] == erased:
            pos += 1


def aai_word_ops(
    address: int,
    data: bytes,
    cmd: Command,
    word_wait: WaitReady,
    byte_wait: WaitReady,
) -> list[Step]:
    """The AAI word sequence for one run, with byte programs for an odd first or last
    byte."""
    ops: list[Step] = []
    if address % 2:
        ops += [WREN, SpiOp(cmd(BYTE_PROGRAM, address) + data[:1]), byte_wait]
        address, data = address + 1, data[1:]
    words, tail = len(data) // 2, len(data) % 2
    if words:
        ops += [WREN, SpiOp(cmd(AAI_WORD, address) + data[:2]), word_wait]
        for index in range(1, words):
            ops += [SpiOp(bytes([AAI_WORD]) + data[2 * index : 2 * index + 2]), word_wait]
        ops.append(WRDI)
    if tail:
        last = address + len(data) - 1
        ops += [WREN, SpiOp(cmd(BYTE_PROGRAM, last) + data[-1:]), byte_wait]
    return ops


def batches(ops: Sequence[Step], waits_per_batch: int) -> Iterator[list[Step]]:
    """``ops`` cut after every ``waits_per_batch``-th busy wait (one bus transfer each)."""
    batch: list[Step] = []
    waits = 0
    for op in ops:
        batch.append(op)
        if isinstance(op, WaitReady):
            waits += 1
            if waits == waits_per_batch:
                yield batch
                batch, waits = [], 0
    if batch:
        yield batch
