"""Motorola S-record (S0-S9) reader and writer."""

from __future__ import annotations

import io
from typing import BinaryIO

from app.core.errors import ImageFormatError, ImageRangeError
from app.core.formats.runs import RunCollector
from app.core.image import MemoryImage

#: record type -> bytes of address field
_ADDRESS_BYTES = {0: 2, 1: 2, 2: 3, 3: 4, 5: 2, 6: 3, 7: 4, 8: 3, 9: 2}
_DATA_TYPES = (1, 2, 3)
_COUNT_TYPES = (5, 6)
_START_TYPES = (7, 8, 9)
_HEX = frozenset(b"0123456789abcdefABCDEF")


def _parse_line(line: bytes) -> tuple[int, int, bytes]:
    """Return (type, address, data) of one record; raise ValueError saying what is wrong."""
    if line[:1] not in (b"S", b"s"):
        shown = line[:1].decode("latin-1")
        raise ValueError(f"expected 'S' at the start of an S-record, found {shown!r}")
    if len(line) < 2 or not 48 <= line[1] <= 57:
        raise ValueError("S-record type must be a digit 0-9")
    rtype = line[1] - 48
    if rtype == 4:
        raise ValueError("S4 records are reserved and not supported")
    for col, ch in enumerate(line[2:], start=3):
        if ch not in _HEX:
            raise ValueError(f"column {col}: {chr(ch)!r} is not a hex digit")
    digits = line[2:]
    if len(digits) < 2:
        raise ValueError("record is cut short: no byte count")
    if len(digits) % 2:
        raise ValueError("odd number of hex digits in the record")
    raw = bytes.fromhex(digits.decode("ascii"))
    count = raw[0]
    if len(raw) - 1 != count:
        if len(raw) - 1 < count:
            raise ValueError(
                f"record is cut short: its byte count promises {count} bytes,"
                f" the line holds {len(raw) - 1}"
            )
        raise ValueError(f"record is too long: byte count {count}, the line holds {len(raw) - 1}")
    alen = _ADDRESS_BYTES[rtype]
    if count < alen + 1:
        raise ValueError(f"S{rtype} record needs at least {alen + 1} bytes, its count is {count}")
    if sum(raw) & 0xFF != 0xFF:
        expected = (~sum(raw[:-1])) & 0xFF
        raise ValueError(f"record checksum is 0x{raw[-1]:02X}, expected 0x{expected:02X}")
    address = int.from_bytes(raw[1 : 1 + alen], "big")
    return rtype, address, raw[1 + alen : -1]


def read_srec(stream: BinaryIO | bytes, source: str = "<data>") -> MemoryImage:
    """Parse S-records. The S0 header is kept; S5/S6 counts are checked."""
    if isinstance(stream, bytes | bytearray):
        stream = io.BytesIO(stream)
    runs = RunCollector()
    header: bytes | None = None
    start_address: int | None = None
    data_records = 0
    counted = False  # an S5/S6 record confirmed the number of data records
    end_line: int | None = None
    for line_no, raw_line in enumerate(stream, start=1):
        line = raw_line.strip()
        if not line:
            continue
        if end_line is not None:
            raise ImageFormatError(
                f"data after the termination record on line {end_line}", path=source, line=line_no
            )
        try:
            rtype, address, data = _parse_line(line)
        except ValueError as err:
            raise ImageFormatError(str(err), path=source, line=line_no) from None
        if rtype == 0:
            header = data
        elif rtype in _DATA_TYPES:
            data_records += 1
            runs.add_bytes(address, data, line_no)
        elif rtype in _COUNT_TYPES:
            if data or address != data_records:
                raise ImageFormatError(
                    f"S{rtype} record counts {address} data records, the file has {data_records}",
                    path=source,
                    line=line_no,
                )
            counted = True
        else:
            start_address = address
            end_line = line_no
    image = runs.to_image(source)
    image.header = header
    image.start_address = start_address
    if end_line is None and not counted and data_records:
        image.warnings.append(
            f"{source}: neither a count (S5/S6) nor a termination (S7/S8/S9) record:"
            " the file may be truncated"
        )
    return image


def srec_address_bytes(image: MemoryImage) -> int:
    """2, 3 or 4: the smallest S1/S2/S3 address field that holds every address."""
    top = 0 if image.is_empty else image.max_address - 1
    if image.start_address is not None:
        top = max(top, image.start_address)
    if top <= 0xFFFF:
        return 2
    if top <= 0xFF_FFFF:
        return 3
    if top <= 0xFFFF_FFFF:
        return 4
    raise ImageRangeError(f"address 0x{top:X} is beyond the 4 GiB an S-record can address")


def _record(rtype: int, address: int, data: bytes) -> bytes:
    alen = _ADDRESS_BYTES[rtype]
    body = bytes([alen + len(data) + 1]) + address.to_bytes(alen, "big") + data
    return b"S%d" % rtype + (body + bytes([(~sum(body)) & 0xFF])).hex().upper().encode() + b"\n"


def write_srec(
    image: MemoryImage,
    stream: BinaryIO,
    *,
    record_bytes: int = 32,
    address_bytes: int | None = None,
) -> None:
    """Write S19/S28/S37 (chosen by the highest address unless ``address_bytes`` forces it)."""
    alen = address_bytes or srec_address_bytes(image)
    if alen not in (2, 3, 4):
        raise ImageRangeError("S-record address size is 2, 3 or 4 bytes")
    if alen < srec_address_bytes(image):
        raise ImageRangeError(f"addresses do not fit a {alen}-byte S-record address field")
    max_data = 255 - alen - 1
    if not 1 <= record_bytes <= max_data:
        raise ImageRangeError(
            f"S-records with {alen}-byte addresses hold 1 to {max_data} data bytes"
        )
    data_type = {2: 1, 3: 2, 4: 3}[alen]
    if image.header is not None:
        stream.write(_record(0, 0, image.header[:252]))
    records = 0
    for seg in image.segments:
        view = memoryview(seg.data)
        lines = []
        for off in range(0, len(view), record_bytes):
            lines.append(_record(data_type, seg.start + off, bytes(view[off : off + record_bytes])))
        records += len(lines)
        stream.write(b"".join(lines))
    if records <= 0xFFFF:
        stream.write(_record(5, records, b""))
    elif records <= 0xFF_FFFF:
        stream.write(_record(6, records, b""))
    if image.start_address is not None:
        stream.write(_record({2: 9, 3: 8, 4: 7}[alen], image.start_address, b""))
