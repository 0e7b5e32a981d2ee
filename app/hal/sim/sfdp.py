"""Build a JESD216 SFDP table (header + Basic Flash Parameter Table) for a simulated part.

Written from JESD216B, independently of the reader in app.algorithms: SFDP header at 00h
("SFDP", revision 1.6, one parameter header), the BFPT's parameter header at 08h pointing
to a 16-DWORD BFPT at 80h. Times are encoded as the standard does, count x unit with the
smallest unit that holds the time (rounded up), so a reader sees the part's times to
within the encoding's step. ``damage`` makes the tables the tests need from parts in
the field: ``truncated`` (DWORDs from 10 on read FFh, the header still says 16) and
``lying`` (the density says twice the real array).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence

BFPT_OFFSET = 0x80
BFPT_DWORDS = 16
DAMAGE_KINDS = ("truncated", "lying")

_ERASE_UNITS_MS = (1.0, 16.0, 128.0, 1000.0)
_CHIP_UNITS_MS = (16.0, 256.0, 4000.0, 64000.0)
_PAGE_UNITS_MS = (0.008, 0.064)


def _log2(n: int) -> int:
    return n.bit_length() - 1


def _time_field(ms: float, units: Sequence[float], count_bits: int = 5) -> int:
    """(unit index << count_bits) | (count - 1): the smallest unit whose count fits."""
    limit = 1 << count_bits
    for index, unit in enumerate(units):
        count = max(1, math.ceil(ms / unit - 1e-9))
        if count <= limit:
            return index << count_bits | (count - 1)
    return (len(units) - 1) << count_bits | (limit - 1)


def _multiplier(typ_max: Sequence[tuple[float, float]]) -> int:
    """The 4-bit N of "maximum = 2 x (N + 1) x typical" that covers every pair."""
    worst = max((mx / typ for typ, mx in typ_max if typ > 0), default=2.0)
    return min(15, max(0, math.ceil(worst / 2 - 1e-9) - 1))


def build_sfdp(
    size_bytes: int,
    page_size_bytes: int,
    erase_types: Sequence[tuple[int, int, float, float]],
    address_bytes: int,
    *,
    page_program_ms: tuple[float, float] = (0.7, 3.0),
    chip_erase_ms: tuple[float, float] = (0.0, 0.0),
    four_byte_entry: int = 0,
    damage: str | None = None,
) -> bytes:
    """``erase_types``: (opcode, size_bytes, ms_typ, ms_max) of the sector/block erases,
    smallest first (at most 4 are listed). ``four_byte_entry``: DWORD 16 bits 31:24."""
    dwords = [0xFFFFFFFF] * BFPT_DWORDS
    erase = list(erase_types)[:4]
    four_k = [op for op, size, _, _ in erase if size == 4096]
    dw1 = 0xFFFFFFFF & ~0x3
    dw1 |= 0x1 if four_k else 0x3  # 01: 4 KiB erase supported
    dw1 = (dw1 & ~(0xFF << 8)) | ((four_k[0] if four_k else 0xFF) << 8)
    # 00: 3-byte only; 01: 3- or 4-byte; 10: 4-byte only
    modes = {3: 0b00, 4: 0b01}
    dw1 = (dw1 & ~(0x3 << 17)) | (modes.get(address_bytes, 0b10) << 17)
    dwords[0] = dw1
    bits = size_bytes * 8 * (2 if damage == "lying" else 1)
    dwords[1] = (bits - 1) if bits <= 1 << 31 else (0x80000000 | _log2(bits))
    packed = [(_log2(size), op) for op, size, _, _ in erase] + [(0, 0)] * (4 - len(erase))
    dwords[7] = packed[0][0] | packed[0][1] << 8 | packed[1][0] << 16 | packed[1][1] << 24
    dwords[8] = packed[2][0] | packed[2][1] << 8 | packed[3][0] << 16 | packed[3][1] << 24
    erase_times = [(typ, mx) for _, _, typ, mx in erase]
    chip_typ, chip_max = chip_erase_ms
    dw10 = _multiplier([*erase_times, *([chip_erase_ms] if chip_typ else [])])
    for index, (typ, _) in enumerate(erase_times):
        dw10 |= _time_field(typ, _ERASE_UNITS_MS) << (4 + 7 * index)
    dwords[9] = dw10
    page_typ = page_program_ms[0]
    dw11 = _multiplier([page_program_ms]) | _log2(page_size_bytes) << 4
    dw11 |= _time_field(page_typ, _PAGE_UNITS_MS) << 8
    dw11 |= 0x1F << 14 | 0x1F << 19  # byte program times: not used, longest
    dw11 |= _time_field(chip_typ or chip_max, _CHIP_UNITS_MS) << 24
    dwords[10] = dw11
    dwords[15] = (dwords[15] & 0x00FFFFFF) | four_byte_entry << 24
    if damage == "truncated":
        dwords[9:] = [0xFFFFFFFF] * (BFPT_DWORDS - 9)
    header = b"SFDP" + bytes([0x06, 0x01, 0x00, 0xFF])
    param = bytes([0x00, 0x06, 0x01, BFPT_DWORDS]) + BFPT_OFFSET.to_bytes(3, "little") + b"\xff"
    table = header + param
    table += b"\xff" * (BFPT_OFFSET - len(table))
    table += struct.pack(f"<{BFPT_DWORDS}I", *dwords)
    return table
