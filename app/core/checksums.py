"""Checksums as device programmers show them.

- crc32: CRC-32/ISO-HDLC (zlib, IEEE 802.3).
- crc16: CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final xor),
  the "CRC-CCITT" most programmers and bootloaders print.
- sum8/sum16/sum32: the byte sum truncated to 8, 16 or 32 bits.
- sha256.

Either over the data only (the image's bytes in address order, gaps skipped) or over a
filled range (gaps count as the fill byte). Excluded ranges (a serial-number area, say)
are left out of the calculation entirely.
"""

from __future__ import annotations

import binascii
import hashlib
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from app.core.errors import UsageError
from app.core.image import MemoryImage

ALGORITHMS = ("crc32", "crc16", "sum8", "sum16", "sum32", "sha256")
_PIECE = 1 << 20


class _Accumulator(Protocol):
    def update(self, data: bytes | memoryview | bytearray) -> None: ...

    def value(self) -> str: ...


class _Crc32:
    def __init__(self) -> None:
        self._crc = 0

    def update(self, data: bytes | memoryview | bytearray) -> None:
        self._crc = zlib.crc32(data, self._crc)

    def value(self) -> str:
        return f"0x{self._crc:08X}"


class _Crc16:
    def __init__(self) -> None:
        self._crc = 0xFFFF

    def update(self, data: bytes | memoryview | bytearray) -> None:
        self._crc = binascii.crc_hqx(data, self._crc)

    def value(self) -> str:
        return f"0x{self._crc:04X}"


class _Sum:
    def __init__(self, bits: int) -> None:
        self._bits = bits
        self._total = 0

    def update(self, data: bytes | memoryview | bytearray) -> None:
        import numpy as np  # the byte sums only: CRCs and hashes start without it

        self._total += int(np.frombuffer(data, dtype=np.uint8).sum(dtype=np.uint64))

    def value(self) -> str:
        return f"0x{self._total & ((1 << self._bits) - 1):0{self._bits // 4}X}"


class _Sha256:
    def __init__(self) -> None:
        self._hash = hashlib.sha256()

    def update(self, data: bytes | memoryview | bytearray) -> None:
        self._hash.update(data)

    def value(self) -> str:
        return self._hash.hexdigest()


def _accumulator(algo: str) -> _Accumulator:
    if algo == "crc32":
        return _Crc32()
    if algo == "crc16":
        return _Crc16()
    if algo in ("sum8", "sum16", "sum32"):
        return _Sum(int(algo[3:]))
    if algo == "sha256":
        return _Sha256()
    raise UsageError(f"unknown checksum algorithm {algo!r} (known: {', '.join(ALGORITHMS)})")


@dataclass(frozen=True)
class ChecksumSpec:
    """What to checksum. ``fill`` None means data only; ``start``/``end`` bound the range."""

    algo: str = "crc32"
    fill: int | None = None
    start: int | None = None
    end: int | None = None
    exclude: tuple[tuple[int, int], ...] = ()


def _subtract(
    start: int, end: int, exclude: Iterable[tuple[int, int]]
) -> Iterator[tuple[int, int]]:
    """The parts of [start, end) not covered by any excluded range."""
    pos = start
    for ex_start, ex_end in sorted(exclude):
        if ex_end <= pos or ex_start >= end:
            continue
        if ex_start > pos:
            yield pos, ex_start
        pos = max(pos, ex_end)
    if pos < end:
        yield pos, end


def iter_checksum_bytes(
    image: MemoryImage, spec: ChecksumSpec
) -> Iterator[bytes | bytearray | memoryview]:
    """The bytes a checksum covers, in address order, in pieces of at most 1 MiB."""
    if image.is_empty and (spec.start is None or spec.end is None):
        return
    lo = image.min_address if spec.start is None else spec.start
    hi = image.max_address if spec.end is None else spec.end
    if hi < lo:
        raise UsageError(f"checksum range end 0x{hi:X} is below its start 0x{lo:X}")
    if spec.fill is None:
        for seg in image.segments_in(lo, hi):
            s, e = max(seg.start, lo), min(seg.end, hi)
            view = memoryview(seg.data)
            for part_lo, part_hi in _subtract(s, e, spec.exclude):
                for p in range(part_lo, part_hi, _PIECE):
                    yield view[p - seg.start : min(p + _PIECE, part_hi) - seg.start]
        return
    for part_lo, part_hi in _subtract(lo, hi, spec.exclude):
        for p in range(part_lo, part_hi, _PIECE):
            yield image.filled(spec.fill, p, min(p + _PIECE, part_hi))


def checksum(image: MemoryImage, spec: ChecksumSpec) -> str:
    """The checksum as programmers print it: 0x-prefixed upper-case hex, or SHA-256 hex."""
    acc = _accumulator(spec.algo)
    for piece in iter_checksum_bytes(image, spec):
        acc.update(piece)
    return acc.value()


def checksum_bytes(data: bytes | bytearray | memoryview, algo: str) -> str:
    acc = _accumulator(algo)
    acc.update(data)
    return acc.value()
