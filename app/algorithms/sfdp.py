"""Read a JESD216 SFDP table: what a SPI NOR part says about itself (size, page size,
erase types and times, address mode), for parts the device DB does not know.

Only the Basic Flash Parameter Table (BFPT, parameter ID FF00h) is used. A table can
be absent (no "SFDP" signature: None), or present but unusable: a header that points
outside the SFDP space, a BFPT shorter than JESD216's 9 DWORDs, or DWORDs that read
FFFFFFFFh where the revision promises values (a table cut short in the part, or a part
whose SFDP area was never programmed). Those raise SfdpError saying which DWORD.

Field layout (JESD216B, BFPT): DWORD 1 bits 18:17 address bytes, bits 15:8 the 4 KiB
erase opcode; DWORD 2 density (bit 31: 2^N bits, else N+1 bits); DWORDs 8-9 erase types
(size exponent, opcode); DWORD 10 erase typical times (5-bit count + 2-bit unit of 1 ms,
16 ms, 128 ms, 1 s) and the typical-to-maximum multiplier 2*(N+1); DWORD 11 page size
2^N, page program typical time (unit 8 or 64 us), chip erase typical time (unit 16 ms,
256 ms, 4 s, 64 s) and the program multiplier; DWORD 16 bits 31:24 the ways to enter
4-byte addressing.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from app.hal.bus import SpiBus, SpiOp

SFDP_READ = 0x5A  # address, then one dummy byte
SFDP_SPACE = 0x1000  # the tables must sit in the first 4 KiB
BFPT_ID = 0xFF00
MIN_BFPT_DWORDS = 9
JESD216A_DWORDS = 16  # revision 1.5 and later define DWORDs 10-16
ALL_ONES = 0xFFFFFFFF

#: DWORD 16 bits 31:24: how the part enters 4-byte addressing
ENTER_B7 = 0x01  # B7h
ENTER_WREN_B7 = 0x02  # 06h, then B7h
ENTER_EXTENDED_REGISTER = 0x04  # an extended address register (C5h/C8h)
ENTER_BANK_REGISTER = 0x08  # bank register bit 7 (17h/16h)
ENTER_CONFIG_REGISTER = 0x10  # a nonvolatile configuration register
FOUR_BYTE_OPCODES = 0x20  # dedicated 4-byte instructions
ALWAYS_FOUR_BYTE = 0x40

_ERASE_UNITS_MS = (1, 16, 128, 1000)
_CHIP_ERASE_UNITS_MS = (16, 256, 4000, 64000)


class SfdpError(ValueError):
    """The part has an SFDP signature but the table cannot be used; says why and where."""


@dataclass(frozen=True, slots=True)
class SfdpErase:
    opcode: int
    size_bytes: int
    ms_typ: float | None  # None before JESD216A (revision 1.5)
    ms_max: float | None


@dataclass(frozen=True, slots=True)
class SfdpInfo:
    """The Basic Flash Parameter Table fields Socketeer uses."""

    revision: tuple[int, int]  # the BFPT's (major, minor)
    size_bytes: int
    page_size_bytes: int
    erases: tuple[SfdpErase, ...]  # smallest first
    address_bytes: int  # 3, or 4 when the part can or must use 4-byte addresses
    three_byte_only: bool  # DWORD 1 says 3-byte addresses only
    page_program_ms: tuple[float, float] | None  # (typical, maximum), JESD216A on
    chip_erase_ms: tuple[float, float] | None
    four_byte_entry: int  # DWORD 16 bits 31:24; 0 when not given
    table: bytes  # the SFDP bytes read, header to the end of the BFPT

    @property
    def erase_types(self) -> tuple[tuple[int, int], ...]:
        """(opcode, size_bytes) of each erase type, smallest first."""
        return tuple((e.opcode, e.size_bytes) for e in self.erases)

    def to_json(self) -> dict[str, object]:
        return {
            "revision": f"{self.revision[0]}.{self.revision[1]}",
            "size_bytes": self.size_bytes,
            "page_size_bytes": self.page_size_bytes,
            "address_bytes": self.address_bytes,
            "erase_sizes": [e.size_bytes for e in self.erases],
        }


def read_sfdp(bus: SpiBus) -> SfdpInfo | None:
    """The part's SFDP table over ``bus``: None if it has none, SfdpError if unusable."""
    header = bus.transfer([SpiOp(bytes([SFDP_READ, 0, 0, 0, 0]), 16)])[0]
    if header[:4] != b"SFDP":
        return None
    end = _bfpt_end(header)
    return parse_sfdp(bus.transfer([SpiOp(bytes([SFDP_READ, 0, 0, 0, 0]), end)])[0])


def _bfpt_end(header: bytes) -> int:
    """Where the first parameter table (the BFPT) ends, from the first 16 bytes."""
    if header[7] != 0xFF:
        raise SfdpError(f"SFDP header byte 7 (access protocol) is 0x{header[7]:02X}, not FFh")
    parameter_id = header[8] | header[15] << 8
    if parameter_id != BFPT_ID:
        raise SfdpError(
            f"the first parameter header has ID 0x{parameter_id:04X}, not the BFPT's FF00h"
        )
    length, pointer = header[11], int.from_bytes(header[12:15], "little")
    if length < MIN_BFPT_DWORDS:
        raise SfdpError(
            f"the BFPT is {length} DWORDs long; JESD216 needs at least {MIN_BFPT_DWORDS}"
        )
    end = pointer + 4 * length
    if pointer < 16 or end > SFDP_SPACE:
        raise SfdpError(
            f"the BFPT pointer 0x{pointer:X} ({length} DWORDs) lies outside the SFDP space"
            f" [0x10, 0x{SFDP_SPACE:X})"
        )
    return end


def parse_sfdp(data: bytes) -> SfdpInfo | None:
    """The BFPT of an SFDP dump (starting at SFDP address 0): None without a signature."""
    if data[:4] != b"SFDP":
        return None
    if len(data) < 16:
        raise SfdpError(f"the SFDP header is {len(data)} bytes; it needs 16")
    end = _bfpt_end(data[:16])
    if len(data) < end:
        raise SfdpError(f"the BFPT ends at 0x{end:X} but only 0x{len(data):X} bytes were read")
    length, pointer = data[11], int.from_bytes(data[12:15], "little")
    revision = (data[10], data[9])
    dw = struct.unpack_from(f"<{length}I", data, pointer)
    promised = JESD216A_DWORDS if revision >= (1, 5) else MIN_BFPT_DWORDS
    if length < promised:
        raise SfdpError(
            f"BFPT revision {revision[0]}.{revision[1]} defines {promised} DWORDs but the"
            f" header gives {length}"
        )
    # DWORDs that must hold values: 1, 2, 8 (erase type 1), 10 and 11 from revision 1.5
    for index in (1, 2, 8, 10, 11):
        if index <= promised and dw[index - 1] == ALL_ONES:
            raise SfdpError(
                f"BFPT DWORD {index} (at SFDP address 0x{pointer + 4 * (index - 1):X}) reads"
                " FFFFFFFFh: the table is cut short or was never programmed"
            )
    return _decode(dw, revision, bytes(data[:end]))


def _decode(dw: tuple[int, ...], revision: tuple[int, int], table: bytes) -> SfdpInfo:
    density = dw[1]
    if density & 0x80000000:
        exponent = density & 0x7FFFFFFF
        if exponent > 40:
            raise SfdpError(f"BFPT DWORD 2: density 2^{exponent} bits is not a real part")
        size_bits = 1 << exponent
    else:
        size_bits = density + 1
    if size_bits % 8:
        raise SfdpError(f"BFPT DWORD 2: density {size_bits} bits is not whole bytes")
    timed = len(dw) >= JESD216A_DWORDS and revision >= (1, 5)
    erases = _erase_types(dw, timed)
    address_mode = (dw[0] >> 17) & 0x3
    if address_mode == 0b11:
        raise SfdpError("BFPT DWORD 1: address bytes field 11b is reserved")
    page_size = 1 << ((dw[10] >> 4) & 0xF) if timed else 256
    program_factor = 2 * ((dw[10] & 0xF) + 1) if timed else 0
    page_ms = _count_unit(dw[10] >> 8, 5, (0.008, 0.064)) if timed else None
    chip_ms = _count_unit(dw[10] >> 24, 5, _CHIP_ERASE_UNITS_MS) if timed else None
    erase_factor = 2 * ((dw[9] & 0xF) + 1) if timed else 0
    return SfdpInfo(
        revision=revision,
        size_bytes=size_bits // 8,
        page_size_bytes=page_size,
        erases=erases,
        address_bytes=3 if address_mode == 0 else 4,
        three_byte_only=address_mode == 0,
        page_program_ms=(page_ms, page_ms * program_factor) if page_ms else None,
        chip_erase_ms=(chip_ms, chip_ms * erase_factor) if chip_ms else None,
        four_byte_entry=(dw[15] >> 24) & 0xFF if timed else 0,
        table=table,
    )


def _count_unit(field: int, count_bits: int, units: tuple[float, ...]) -> float:
    """A JESD216 time: (count + 1) x unit; the unit index sits above the count."""
    count = field & ((1 << count_bits) - 1)
    unit = (field >> count_bits) & (len(units) - 1)
    return (count + 1) * units[unit]


def _erase_types(dw: tuple[int, ...], timed: bool) -> tuple[SfdpErase, ...]:
    factor = 2 * ((dw[9] & 0xF) + 1) if timed else 0
    erases = []
    for index, (word, shift) in enumerate(((dw[7], 0), (dw[7], 16), (dw[8], 0), (dw[8], 16))):
        exponent, opcode = (word >> shift) & 0xFF, (word >> (shift + 8)) & 0xFF
        if exponent == 0:
            continue  # erase type not present
        if exponent > 31:
            raise SfdpError(
                f"BFPT DWORD {8 + index // 2}: erase type {index + 1} size 2^{exponent}"
                " bytes is not a real sector size"
            )
        typ = _count_unit(dw[9] >> (4 + 7 * index), 5, _ERASE_UNITS_MS) if timed else None
        erases.append(
            SfdpErase(opcode, 1 << exponent, typ, typ * factor if typ is not None else None)
        )
    if not erases:
        raise SfdpError("BFPT DWORDs 8-9 list no erase type")
    return tuple(sorted(erases, key=lambda e: e.size_bytes))
