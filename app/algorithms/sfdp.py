"""Read a JESD216 SFDP table: identifies a SPI NOR part the device DB does not know."""

from __future__ import annotations

import struct
from collections.abc import Mapping


def parse_sfdp(read: Mapping[int, int] | bytes) -> dict[str, object] | None:
    """Inverse of build_sfdp for the fields Socketeer uses; None if no valid signature."""
    data = bytes(read) if not isinstance(read, bytes) else read
    if data[:4] != b"SFDP" or len(data) < 16:
        return None
    length = data[11]
    pointer = int.from_bytes(data[12:15], "little")
    if data[8] != 0x00 or length < 9 or len(data) < pointer + 4 * length:
        return None
    dw = struct.unpack_from(f"<{length}I", data, pointer)
    density = dw[1]
    size_bits = 1 << (density & 0x7FFFFFFF) if density & 0x80000000 else density + 1
    erase_types = []
    for word in (dw[7], dw[8]):
        for shift in (0, 16):
            n, opcode = (word >> shift) & 0xFF, (word >> (shift + 8)) & 0xFF
            if n:
                erase_types.append((opcode, 1 << n))
    page_size = 1 << ((dw[10] >> 4) & 0xF) if length >= 11 else 256
    addr_mode = (dw[0] >> 17) & 0x3
    return {
        "size_bytes": size_bits // 8,
        "page_size_bytes": page_size,
        "erase_types": sorted(erase_types, key=lambda e: e[1]),
        "address_bytes": 3 if addr_mode == 0 else 4,
    }
