"""Vectorised helpers shared by the text-format readers and writers.

A 16 MiB image is about a million Intel HEX records; decoding them one Python line at a
time is several times slower than SRecord's C++ (see tests/bench/bench_image.py). These
helpers let the readers split, hex-decode and checksum whole chunks of lines with numpy,
and fall back to a per-line diagnosis only when something is wrong.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

#: ASCII byte -> nibble value, 16 for anything that is not a hex digit.
HEX_VALUE = np.full(256, 16, dtype=np.uint8)
for _i, _c in enumerate(b"0123456789abcdef"):
    HEX_VALUE[_c] = _i
for _i, _c in enumerate(b"ABCDEF"):
    HEX_VALUE[_c] = 10 + _i
#: nibble -> ASCII upper-case hex digit.
HEX_DIGIT = np.frombuffer(b"0123456789ABCDEF", dtype=np.uint8)

_WHITESPACE = (9, 11, 12, 13, 32)
CHUNK_BYTES = 1 << 21


@dataclass
class LineChunk:
    """A run of whole lines: the text, and per line its start/end offset and number."""

    buf: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    first_line: int

    def line_text(self, i: int) -> bytes:
        return self.buf[self.starts[i] : self.ends[i]].tobytes()


def iter_line_chunks(stream: BinaryIO, chunk_bytes: int = CHUNK_BYTES) -> Iterator[LineChunk]:
    """Yield chunks of complete lines with surrounding whitespace trimmed.

    Empty lines are kept (their start == end) so line numbers stay exact.
    """
    leftover = b""
    line_no = 1
    while True:
        block = stream.read(chunk_bytes)
        final = not block
        text = leftover + block
        if not text:
            return
        if final:
            body, leftover = text, b""
        else:
            cut = text.rfind(b"\n")
            if cut < 0:
                leftover = text
                continue
            body, leftover = text[: cut + 1], text[cut + 1 :]
        buf = np.frombuffer(body, dtype=np.uint8)
        newlines = np.flatnonzero(buf == 10)
        if len(newlines) == 0 or newlines[-1] != len(buf) - 1:
            newlines = np.append(newlines, len(buf))
        starts = np.empty(len(newlines), dtype=np.int64)
        starts[0] = 0
        starts[1:] = newlines[:-1] + 1
        ends = newlines.astype(np.int64)
        _trim(buf, starts, ends)
        yield LineChunk(buf, starts, ends, line_no)
        line_no += len(starts)
        if final:
            return


def _trim(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> None:
    """Move ``ends`` back over trailing and ``starts`` past leading whitespace, in place."""
    is_space = np.zeros(256, dtype=bool)
    is_space[list(_WHITESPACE)] = True
    while True:
        nonempty = ends > starts
        idx = np.flatnonzero(nonempty)
        if len(idx) == 0:
            break
        trailing = is_space[buf[ends[idx] - 1]]
        if not trailing.any():
            break
        ends[idx[trailing]] -= 1
    while True:
        idx = np.flatnonzero(ends > starts)
        if len(idx) == 0:
            break
        leading = is_space[buf[starts[idx]]]
        if not leading.any():
            break
        starts[idx[leading]] += 1


def span_mask(size: int, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Boolean mask of length ``size`` selecting the disjoint, ordered spans [starts, ends)."""
    keep = ends > starts
    delta = np.zeros(size + 1, dtype=np.int8)
    # Within each assignment the indices are unique (spans are disjoint and non-empty).
    delta[starts[keep]] += 1
    delta[ends[keep]] -= 1
    return np.cumsum(delta[:-1], dtype=np.int8) > 0


def hex_pairs_to_bytes(chars: np.ndarray) -> tuple[np.ndarray, int]:
    """Decode an even-length array of ASCII hex digits.

    Returns (bytes, index of the first non-hex character or -1).
    """
    nib = HEX_VALUE[chars]
    bad = np.flatnonzero(nib > 15)
    if len(bad):
        return np.empty(0, dtype=np.uint8), int(bad[0])
    return (nib[0::2] << 4) | nib[1::2], -1


def bytes_to_hex(data: np.ndarray) -> np.ndarray:
    """Upper-case ASCII hex of a uint8 array, shape (..., 2 * n)."""
    out = np.empty((*data.shape[:-1], data.shape[-1] * 2), dtype=np.uint8)
    out[..., 0::2] = HEX_DIGIT[data >> 4]
    out[..., 1::2] = HEX_DIGIT[data & 0x0F]
    return out
