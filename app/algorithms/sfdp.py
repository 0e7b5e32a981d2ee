"""Read a JESD216 SFDP table: identifies a SPI NOR part the device DB does not know."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from app.hal.bus import SpiBus, SpiOp

SFDP_READ = b"\x5a\x00\x00\x00\x00"  # 5Ah, address 0, one dummy byte
SFDP_SPACE = 0x1000  # the table must sit in the first 4 KiB


@dataclass(frozen=True, slots=True)
class SfdpInfo:
    """The Basic Flash Parameter Table fields Socketeer uses."""

    size_bytes: int
    page_size_bytes: int
    erase_types: tuple[tuple[int, int], ...]  # (opcode, size_bytes), smallest first
    address_bytes: int

    def to_json(self) -> dict[str, int | list[int]]:
        return {
            "size_bytes": self.size_bytes,
            "page_size_bytes": self.page_size_bytes,
            "address_bytes": self.address_bytes,
            "erase_sizes": [size for _, size in self.erase_types],
        }


def read_sfdp(bus: SpiBus) -> SfdpInfo | None:
    """The part's SFDP table over ``bus`` (a SpiBus); None if it has none."""
    header = bus.transfer([SpiOp(SFDP_READ, 16)])[0]
    if header[:4] != b"SFDP":
        return None
    length = header[11]
    pointer = int.from_bytes(header[12:15], "little")
    end = pointer + 4 * length
    if length < 9 or end > SFDP_SPACE:
        return None
    return parse_sfdp(bus.transfer([SpiOp(SFDP_READ, end)])[0])


def parse_sfdp(data: bytes) -> SfdpInfo | None:
    """Inverse of build_sfdp for the fields Socketeer uses; None if no valid signature."""
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
    return SfdpInfo(
        size_bytes=size_bits // 8,
        page_size_bytes=page_size,
        erase_types=tuple(sorted(erase_types, key=lambda e: e[1])),
        address_bytes=3 if addr_mode == 0 else 4,
    )
