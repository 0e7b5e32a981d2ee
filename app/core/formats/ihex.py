"""Intel HEX (record types 00-05) reader and writer.

The reader decodes chunks of lines with numpy (see _lines.py) and only looks at a single
line in Python when the vectorised checks flag it, to say exactly what is wrong there.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np

from app.core.errors import ImageFormatError, ImageRangeError
from app.core.formats._lines import (
    LineChunk,
    bytes_to_hex,
    hex_pairs_to_bytes,
    iter_line_chunks,
    span_mask,
)
from app.core.formats.runs import RunCollector
from app.core.image import MemoryImage

DATA, EOF, EXT_SEGMENT, START_SEGMENT, EXT_LINEAR, START_LINEAR = range(6)
_PAYLOAD_LEN = {EOF: 0, EXT_SEGMENT: 2, START_SEGMENT: 4, EXT_LINEAR: 2, START_LINEAR: 4}
_TYPE_NAMES = {
    DATA: "data",
    EOF: "end-of-file",
    EXT_SEGMENT: "extended segment address",
    START_SEGMENT: "start segment address",
    EXT_LINEAR: "extended linear address",
    START_LINEAR: "start linear address",
}


def diagnose_record(line: bytes) -> str | None:
    """Say what is wrong with one Intel HEX line, or None if it is a valid record."""
    if not line:
        return None
    if line[:1] != b":":
        shown = line[:1].decode("latin-1")
        return f"expected ':' at the start of an Intel HEX record, found {shown!r}"
    digits = line[1:]
    for col, ch in enumerate(digits, start=2):
        if HEX_CHARS.find(bytes([ch]).upper()) < 0:
            return f"column {col}: {chr(ch)!r} is not a hex digit"
    if len(digits) < 2:
        return "record is cut short: no byte count"
    count = int(digits[:2], 16)
    if len(digits) % 2:
        return "odd number of hex digits in the record"
    have = len(digits) // 2 - 5
    if have != count:
        if have < count:
            return (
                f"record is cut short: its byte count promises {count} data bytes,"
                f" the line holds {max(have, 0)}"
            )
        return f"record is too long: byte count {count}, the line holds {have} data bytes"
    raw = bytes.fromhex(digits.decode("ascii"))
    if sum(raw) & 0xFF:
        expected = (-sum(raw[:-1])) & 0xFF
        return f"record checksum is 0x{raw[-1]:02X}, expected 0x{expected:02X}"
    rtype = raw[3]
    if rtype not in _TYPE_NAMES:
        return f"unknown record type 0x{rtype:02X} (Intel HEX knows 00-05)"
    if rtype != DATA and count != _PAYLOAD_LEN[rtype]:
        return (
            f"{_TYPE_NAMES[rtype]} record must hold {_PAYLOAD_LEN[rtype]} bytes, it holds {count}"
        )
    return None


HEX_CHARS = b"0123456789ABCDEF"


@dataclass
class _State:
    base: int = 0
    segment_mode: bool = False
    eof_line: int | None = None
    start_address: int | None = None
    runs: RunCollector = field(default_factory=RunCollector)


def read_ihex(stream: BinaryIO | bytes, source: str = "<data>") -> MemoryImage:
    """Parse Intel HEX from a binary stream (or bytes). Raises ImageFormatError."""
    if isinstance(stream, bytes | bytearray):
        stream = io.BytesIO(stream)
    state = _State()
    for chunk in iter_line_chunks(stream):
        _read_chunk(chunk, state, source)
    if state.eof_line is None:
        raise ImageFormatError(
            "no end-of-file record (:00000001FF); the file may be truncated", path=source
        )
    image = state.runs.to_image(source)
    image.start_address = state.start_address
    return image


def _fail(source: str, chunk: LineChunk, i: int, fallback: str) -> ImageFormatError:
    reason = diagnose_record(chunk.line_text(i)) or fallback
    return ImageFormatError(reason, path=source, line=chunk.first_line + i)


def _read_chunk(chunk: LineChunk, state: _State, source: str) -> None:
    buf = chunk.buf
    nonempty = np.flatnonzero(chunk.ends > chunk.starts)
    if len(nonempty) == 0:
        return
    if state.eof_line is not None:
        raise ImageFormatError(
            f"data after the end-of-file record on line {state.eof_line}",
            path=source,
            line=chunk.first_line + int(nonempty[0]),
        )
    starts = chunk.starts[nonempty]
    ends = chunk.ends[nonempty]
    lengths = ends - starts
    bad_shape = (buf[starts] != ord(":")) | (lengths < 11) | ((lengths - 1) % 2 == 1)
    if bad_shape.any():
        i = int(nonempty[np.argmax(bad_shape)])
        raise _fail(source, chunk, i, "malformed record")
    hex_mask = span_mask(len(buf), starts + 1, ends)
    raw, bad_at = hex_pairs_to_bytes(buf[hex_mask])
    hex_len = lengths - 1
    if bad_at >= 0:
        j = int(np.searchsorted(np.cumsum(hex_len), bad_at, side="right"))
        raise _fail(source, chunk, int(nonempty[j]), "not a hex digit")
    rec_len = hex_len // 2
    rec_start = np.zeros(len(rec_len), dtype=np.int64)
    np.cumsum(rec_len[:-1], out=rec_start[1:])
    count = raw[rec_start].astype(np.int64)
    rtype = raw[rec_start + 3]
    sums = np.add.reduceat(raw, rec_start, dtype=np.uint32) & 0xFF
    bad = (count + 5 != rec_len) | (sums != 0) | (rtype > START_LINEAR)
    special = np.flatnonzero(rtype != DATA)
    if len(special):
        want = np.array([_PAYLOAD_LEN.get(int(t), -1) for t in rtype[special]])
        bad[special] |= count[special] != want
    if bad.any():
        i = int(nonempty[np.argmax(bad)])
        raise _fail(source, chunk, i, "malformed record")
    addr16 = (raw[rec_start + 1].astype(np.int64) << 8) | raw[rec_start + 2]
    payload_start = rec_start + 4
    # Split the data records at each special record, which may change the base address.
    edges = [0, *(int(s) for s in special), len(rec_start)]
    for k in range(len(edges) - 1):
        lo = edges[k] + (1 if k > 0 else 0)
        hi = edges[k + 1]
        if hi > lo:
            _add_data(
                state,
                raw,
                addr16[lo:hi],
                count[lo:hi],
                payload_start[lo:hi],
                chunk.first_line + nonempty[lo:hi],
                source,
            )
        if k < len(special):
            s = int(special[k])
            _apply_special(
                state,
                raw,
                int(rtype[s]),
                int(payload_start[s]),
                chunk.first_line + int(nonempty[s]),
                source,
            )
            if state.eof_line is not None and s + 1 < len(rec_start):
                raise ImageFormatError(
                    f"data after the end-of-file record on line {state.eof_line}",
                    path=source,
                    line=chunk.first_line + int(nonempty[s + 1]),
                )


def _apply_special(
    state: _State, raw: np.ndarray, rtype: int, at: int, line: int, source: str
) -> None:
    value = int.from_bytes(raw[at : at + _PAYLOAD_LEN[rtype]].tobytes(), "big")
    if rtype == EOF:
        state.eof_line = line
    elif rtype == EXT_SEGMENT:
        state.base = value << 4
        state.segment_mode = True
    elif rtype == EXT_LINEAR:
        state.base = value << 16
        state.segment_mode = False
    elif rtype == START_SEGMENT:
        state.start_address = ((value >> 16) << 4) + (value & 0xFFFF)
    else:
        state.start_address = value


def _add_data(
    state: _State,
    raw: np.ndarray,
    addr16: np.ndarray,
    count: np.ndarray,
    payload_start: np.ndarray,
    lines: np.ndarray,
    source: str,
) -> None:
    keep = count > 0
    if not keep.all():
        addr16, count, payload_start, lines = (
            addr16[keep],
            count[keep],
            payload_start[keep],
            lines[keep],
        )
    if len(count) == 0:
        return
    # Only the span these records occupy (a chunk holds many 64 KiB banks; a mask over
    # the whole chunk for each bank made loading quadratic in the banks per chunk).
    lo = int(payload_start.min())
    hi = int((payload_start + count).max())
    payload = raw[lo:hi][span_mask(hi - lo, payload_start - lo, payload_start + count - lo)]
    addresses = state.base + addr16
    if state.segment_mode and (addr16 + count > 0x10000).any():
        _add_wrapping(state, payload, addr16, count, lines)
        return
    state.runs.add_records(addresses, count, payload, lines)


def _add_wrapping(
    state: _State, payload: np.ndarray, addr16: np.ndarray, count: np.ndarray, lines: np.ndarray
) -> None:
    """Segment addressing wraps the offset at 64 KiB inside a record (rare; slow path)."""
    offset = 0
    for a, n, line in zip(addr16.tolist(), count.tolist(), lines.tolist(), strict=True):
        first = min(n, 0x10000 - a)
        for addr, part in (
            (state.base + a, payload[offset : offset + first]),
            (state.base, payload[offset + first : offset + n]),
        ):
            if len(part):
                state.runs.add_records(
                    np.array([addr]), np.array([len(part)]), part, np.array([line])
                )
        offset += n


def write_ihex(image: MemoryImage, stream: BinaryIO, *, record_bytes: int = 16) -> None:
    """Write ``image`` as Intel HEX with ``record_bytes`` data bytes per record.

    Uses extended linear address (04) records above 64 KiB and a start linear address
    (05) record when the image has a start address.
    """
    if not 1 <= record_bytes <= 255:
        raise ImageRangeError("Intel HEX records hold 1 to 255 data bytes")
    need_linear = not image.is_empty and image.max_address > 0x10000
    if not image.is_empty and image.max_address > 0x1_0000_0000:
        raise ImageRangeError("Intel HEX addresses stop at 4 GiB")
    upper = 0
    for seg in image.segments:
        pos = seg.start
        view = np.frombuffer(seg.data, dtype=np.uint8)
        while pos < seg.end:
            bank = pos >> 16
            if need_linear and bank != upper:
                stream.write(_record(EXT_LINEAR, 0, bank.to_bytes(2, "big")))
                upper = bank
            stop = min(seg.end, (bank + 1) << 16)
            _write_bank(
                stream, view[pos - seg.start : stop - seg.start], pos & 0xFFFF, record_bytes
            )
            pos = stop
    if image.start_address is not None:
        if image.start_address > 0xFFFF_FFFF:
            raise ImageRangeError("start address does not fit Intel HEX")
        stream.write(_record(START_LINEAR, 0, image.start_address.to_bytes(4, "big")))
    stream.write(b":00000001FF\n")


def _record(rtype: int, addr: int, data: bytes) -> bytes:
    body = bytes([len(data), addr >> 8, addr & 0xFF, rtype]) + data
    return b":" + (body + bytes([(-sum(body)) & 0xFF])).hex().upper().encode() + b"\n"


def _write_bank(stream: BinaryIO, data: np.ndarray, addr: int, per: int) -> None:
    """Write records for ``data`` starting at 16-bit ``addr``, all within one 64 KiB bank."""
    full = len(data) // per
    if full:
        recs = np.empty((full, per + 5), dtype=np.uint8)
        offsets = addr + np.arange(full, dtype=np.int64) * per
        recs[:, 0] = per
        recs[:, 1] = offsets >> 8
        recs[:, 2] = offsets & 0xFF
        recs[:, 3] = DATA
        recs[:, 4:-1] = data[: full * per].reshape(full, per)
        recs[:, -1] = (-recs[:, :-1].sum(axis=1, dtype=np.int64)) & 0xFF
        lines = np.empty((full, 2 * (per + 5) + 2), dtype=np.uint8)
        lines[:, 0] = ord(":")
        lines[:, 1:-1] = bytes_to_hex(recs)
        lines[:, -1] = ord("\n")
        stream.write(lines.tobytes())
    rest = data[full * per :]
    if len(rest):
        stream.write(_record(DATA, addr + full * per, rest.tobytes()))
