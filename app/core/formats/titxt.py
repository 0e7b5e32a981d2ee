"""TI-TXT (MSP430 tool chain text format): '@ADDR' lines, hex byte lines, 'q' to end."""

from __future__ import annotations

import io
from typing import BinaryIO

from app.core.errors import ImageFormatError, ImageRangeError
from app.core.formats.runs import RunCollector
from app.core.image import MemoryImage

_HEX = frozenset(b"0123456789abcdefABCDEF")


def read_titxt(stream: BinaryIO | bytes, source: str = "<data>") -> MemoryImage:
    if isinstance(stream, bytes | bytearray):
        stream = io.BytesIO(stream)
    runs = RunCollector()
    address: int | None = None
    end_line: int | None = None
    for line_no, raw_line in enumerate(stream, start=1):
        line = raw_line.strip()
        if not line:
            continue
        if end_line is not None:
            raise ImageFormatError(
                f"data after the 'q' end marker on line {end_line}", path=source, line=line_no
            )
        if line in (b"q", b"Q"):
            end_line = line_no
            continue
        if line[:1] == b"@":
            digits = line[1:]
            if not digits or not set(digits) <= _HEX or len(digits) > 8:
                raise ImageFormatError(
                    f"bad address line {line.decode('latin-1')[:20]!r}: expected '@' and up to"
                    " 8 hex digits",
                    path=source,
                    line=line_no,
                )
            address = int(digits, 16)
            continue
        if address is None:
            shown = line[:1].decode("latin-1")
            raise ImageFormatError(
                f"expected '@address' before data in a TI-TXT file, found {shown!r}",
                path=source,
                line=line_no,
            )
        data = bytearray()
        for col_token in line.split():
            if len(col_token) != 2 or not set(col_token) <= _HEX:
                raise ImageFormatError(
                    f"{col_token.decode('latin-1')[:12]!r} is not a two-digit hex byte",
                    path=source,
                    line=line_no,
                )
            data.append(int(col_token, 16))
        runs.add_bytes(address, bytes(data), line_no)
        address += len(data)
    if end_line is None:
        raise ImageFormatError("no 'q' end marker; the file may be truncated", path=source)
    return runs.to_image(source)


def write_titxt(image: MemoryImage, stream: BinaryIO, *, record_bytes: int = 16) -> None:
    if record_bytes < 1:
        raise ImageRangeError("TI-TXT lines hold at least one byte")
    for seg in image.segments:
        stream.write(b"@%04X\n" % seg.start)
        view = memoryview(seg.data)
        lines = [
            bytes(view[off : off + record_bytes]).hex(" ").upper().encode() + b"\n"
            for off in range(0, len(view), record_bytes)
        ]
        stream.write(b"".join(lines))
    stream.write(b"q\n")
