"""Build a JESD216 SFDP table (header + Basic Flash Parameter Table) from DB facts.

Layout per JESD216B: SFDP header at 0x00 ("SFDP", rev 1.6, one parameter header),
parameter header 0 at 0x08 pointing to a 16-DWORD BFPT at 0x80.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

BFPT_OFFSET = 0x80
BFPT_DWORDS = 16


def _log2(n: int) -> int:
    return n.bit_length() - 1


def build_sfdp(
    size_bytes: int,
    page_size_bytes: int,
    erase_types: Sequence[tuple[int, int]],
    address_bytes: int,
) -> bytes:
    """``erase_types``: (opcode, size_bytes) of sector/block erases, smallest first (max 4)."""
    dwords = [0xFFFFFFFF] * BFPT_DWORDS
    has_4k = [op for op, size in erase_types if size == 4096]
    dw1 = 0xFFFFFFFF
    dw1 &= ~0x3
    dw1 |= 0x1 if has_4k else 0x3  # 01: 4 KiB erase supported
    dw1 = (dw1 & ~(0xFF << 8)) | ((has_4k[0] if has_4k else 0xFF) << 8)
    addr_mode = 0b00 if address_bytes == 3 else 0b01
    dw1 = (dw1 & ~(0x3 << 17)) | (addr_mode << 17)
    dwords[0] = dw1
    bits = size_bytes * 8
    dwords[1] = (bits - 1) if bits <= 1 << 31 else (0x80000000 | _log2(bits))
    erase = list(erase_types)[:4] + [(0, 0)] * (4 - min(4, len(erase_types)))
    packed = [(_log2(size) if size else 0, op) for op, size in erase]
    dwords[7] = packed[0][0] | packed[0][1] << 8 | packed[1][0] << 16 | packed[1][1] << 24
    dwords[8] = packed[2][0] | packed[2][1] << 8 | packed[3][0] << 16 | packed[3][1] << 24
    dwords[10] = (dwords[10] & ~0xF0) | (_log2(page_size_bytes) << 4)
    header = b"SFDP" + bytes([0x06, 0x01, 0x00, 0xFF])
    param = bytes([0x00, 0x06, 0x01, BFPT_DWORDS]) + BFPT_OFFSET.to_bytes(3, "little") + b"\xff"
    table = header + param
    table += b"\xff" * (BFPT_OFFSET - len(table))
    table += struct.pack(f"<{BFPT_DWORDS}I", *dwords)
    return table
