"""Provisional profiles: a device entry built from an unknown part's own SFDP table.

When a SPI NOR part answers an ID the database does not know (or knows under several
names) and it has a valid SFDP table, an engineer can have Socketeer build an entry from
it: size, page size, erase types and times, address mode. The table cannot say
everything a datasheet does, so the entry states what was assumed (supply voltage,
package, clock limit, block-protect bits), names the SFDP bytes it came from by their
SHA-256, and is marked ``provisional``: it lives in the user overlay, and writing with it
(erase, program, protect; a job that uses it) is refused until an engineer approves it
(``socketeer devices approve``).

A table that contradicts itself or the part's JEDEC ID (a density the ID's capacity code
does not allow, an erase size that does not divide the part, more than 16 MiB with
3-byte addresses only) builds no profile: the problems are listed instead.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.algorithms.sfdp import (
    ALWAYS_FOUR_BYTE,
    ENTER_B7,
    ENTER_BANK_REGISTER,
    ENTER_WREN_B7,
    FOUR_BYTE_OPCODES,
    SfdpInfo,
)
from app.core import strict_json
from app.core.errors import InputError
from app.core.fileio import write_atomic

SIXTEEN_MIB = 16 * 1024 * 1024
FILE_SLUG = "provisional"
VENDOR = "Provisional (SFDP)"
CHIP_ERASE_OPCODE = 0xC7  # every SFDP-era part has it (and 60h)
#: assumptions, stated in the entry's notes; the engineer may change them in the file
ASSUMED_VOLTAGE_MV = (2700, 3600)
ASSUMED_PACKAGE = "SOIC-8-208mil"
ASSUMED_CLOCK_HZ = 20_000_000
ASSUMED_BP_MASK = 0x1C  # BP0-BP2, the bits every 25-series part has
#: JESD216 before revision 1.5 gives no times: generous bounds (datasheet-typical
#: maxima of 4K/32K/64K erases and page programs across vendors)
FALLBACK_ERASE_MS = {4096: 400.0, 32768: 1600.0, 65536: 2000.0}
FALLBACK_PAGE_MS = 5.0
#: the third JEDEC ID byte of most vendors: 2^N bytes up to 1Ah, then 20h-22h
_CAPACITY_CODES = {code: 1 << code for code in range(0x10, 0x1B)} | {
    0x20: 1 << 26,
    0x21: 1 << 27,
    0x22: 1 << 28,
}
_STANDARD_4B_ERASES = frozenset({0x20, 0x52, 0xD8})  # the ones with 21h/5Ch/DCh forms


class ProfileError(InputError):
    """The SFDP table cannot make a profile: every problem found, one per line."""

    def __init__(self, jedec: str, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"the SFDP table of the part answering {jedec} was not used:\n{lines}")


def profile_id(jedec: bytes) -> str:
    return f"{FILE_SLUG}.{jedec.hex()}"


def profile_problems(jedec: bytes, info: SfdpInfo) -> list[str]:
    """What makes the table unbelievable, for this part ID (empty: none found)."""
    problems = []
    expected = _CAPACITY_CODES.get(jedec[2])
    if expected is not None and expected != info.size_bytes:
        problems.append(
            f"SFDP density {_size(info.size_bytes)} disagrees with the JEDEC ID's capacity"
            f" code {jedec[2]:02X}h ({_size(expected)})"
        )
    for erase in info.erases:
        if info.size_bytes % erase.size_bytes:
            problems.append(
                f"erase type {erase.opcode:02X}h of {_size(erase.size_bytes)} does not"
                f" divide the density {_size(info.size_bytes)}"
            )
    smallest = info.erases[0].size_bytes
    if info.page_size_bytes > smallest or smallest % info.page_size_bytes:
        problems.append(
            f"page size {info.page_size_bytes} bytes does not divide the smallest erase"
            f" ({_size(smallest)})"
        )
    if info.size_bytes > SIXTEEN_MIB and info.three_byte_only:
        problems.append(
            f"{_size(info.size_bytes)} with 3-byte addresses only (DWORD 1): the part"
            " could not reach its upper part"
        )
    if info.size_bytes > SIXTEEN_MIB and _four_byte_mode(info) is None:
        problems.append(
            f"no way to enter 4-byte addressing that Socketeer drives (DWORD 16 bits 31:24"
            f" = {info.four_byte_entry:02X}h)"
        )
    for erase in info.erases:
        if erase.ms_typ is not None and erase.ms_max is not None and erase.ms_max < erase.ms_typ:
            problems.append(f"erase type {erase.opcode:02X}h: maximum time below typical")
    return problems


def _four_byte_mode(info: SfdpInfo) -> str | None:
    """How the profile reaches above 16 MiB: stateless opcodes where the part's erases
    all have standard 4-byte forms, else B7h, the bank register, or always-4-byte."""
    entry = info.four_byte_entry
    standard = all(e.opcode in _STANDARD_4B_ERASES for e in info.erases)
    if entry & ALWAYS_FOUR_BYTE:
        return "always"
    if entry & FOUR_BYTE_OPCODES and standard:
        return "opcodes"
    if entry & (ENTER_B7 | ENTER_WREN_B7):
        return "b7"
    if entry & ENTER_BANK_REGISTER:
        return "bank-register"
    return None


def build_profile(
    jedec: bytes,
    info: SfdpInfo,
    *,
    voltage_mv: tuple[int, int] | None = None,
    package: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The device entry (as in a device file) for the part answering ``jedec``;
    ProfileError when the table is not believable."""
    jedec_hex = jedec[:3].hex().upper()
    problems = profile_problems(jedec[:3], info)
    if problems:
        raise ProfileError(jedec_hex, problems)
    when = (now or datetime.now(UTC)).isoformat(timespec="seconds")
    assumed = []
    if voltage_mv is None:
        voltage_mv = ASSUMED_VOLTAGE_MV
        assumed.append(f"supply {voltage_mv[0] / 1000:g}-{voltage_mv[1] / 1000:g} V")
    if package is None:
        package = ASSUMED_PACKAGE
        assumed.append(f"package {package}")
    assumed += [
        f"clock at most {ASSUMED_CLOCK_HZ // 1_000_000} MHz",
        f"block-protect bits 0x{ASSUMED_BP_MASK:02X} (BP0-BP2)",
        f"chip erase {CHIP_ERASE_OPCODE:02X}h",
    ]
    erases, timed = _erase_entries(info)
    if not timed:
        assumed.append("erase and program times (the table predates JESD216A)")
    page_typ, page_max = info.page_program_ms or (FALLBACK_PAGE_MS, FALLBACK_PAGE_MS)
    digest = hashlib.sha256(info.table).hexdigest()
    entry: dict[str, Any] = {
        "id": profile_id(jedec[:3]),
        "vendor": VENDOR,
        "part": f"SFDP {jedec_hex}",
        "aliases": [jedec_hex],
        "family": "spi-nor",
        "algorithm": "spi_nor",
        "ids": {"jedec": jedec_hex},
        "size_bytes": info.size_bytes,
        "page_size_bytes": info.page_size_bytes,
        "erase": erases,
        "page_program_ms_typ": page_typ,
        "page_program_ms_max": page_max,
        "address_bytes": 4 if info.size_bytes > SIXTEEN_MIB else 3,
        "status": {"bp_mask": f"0x{ASSUMED_BP_MASK:02X}", "qe": None, "srp": None},
        "voltage_mv": list(voltage_mv),
        "max_clock_hz": ASSUMED_CLOCK_HZ,
        "erased_value": "0xFF",
        "sfdp": True,
        "unique_id": None,
        "packages": [package],
        "source": (
            f"SFDP table (BFPT revision {info.revision[0]}.{info.revision[1]}) read from a part"
            f" answering JEDEC ID {jedec_hex} on {when}; SHA-256 {digest[:16]}"
        ),
        "notes": "Built from the part's SFDP table, not a datasheet. Assumed: "
        + "; ".join(assumed)
        + ". Check them against the datasheet before approving.",
        "tested": dict.fromkeys(
            ("identify", "read", "erase", "program", "verify", "protect"), "untested"
        ),
        "provisional": {
            "sfdp_sha256": digest,
            "created": when,
            "approved_by": None,
            "approved_at": None,
        },
    }
    if info.size_bytes > SIXTEEN_MIB:
        entry["four_byte_mode"] = _four_byte_mode(info)
    return entry


def _erase_entries(info: SfdpInfo) -> tuple[list[dict[str, Any]], bool]:
    """The erase table (sector/block erases and the chip erase); whether the times came
    from the table."""
    timed = all(e.ms_typ is not None for e in info.erases)
    rows = []
    for erase in info.erases:
        fallback = FALLBACK_ERASE_MS.get(erase.size_bytes, 2000.0 * erase.size_bytes / 65536)
        typ = erase.ms_typ if erase.ms_typ is not None else fallback
        high = erase.ms_max if erase.ms_max is not None else fallback
        opcode, size = f"0x{erase.opcode:02X}", erase.size_bytes
        rows.append({"opcode": opcode, "size_bytes": size, "ms_typ": typ, "ms_max": high})
    if info.chip_erase_ms is not None:
        chip_typ, chip_max = info.chip_erase_ms
    else:
        largest = info.erases[-1]
        blocks = info.size_bytes // largest.size_bytes
        chip_max = blocks * (largest.ms_max or FALLBACK_ERASE_MS.get(65536, 2000.0))
        chip_typ = chip_max
    chip = f"0x{CHIP_ERASE_OPCODE:02X}"
    rows.append({"opcode": chip, "size_bytes": "chip", "ms_typ": chip_typ, "ms_max": chip_max})
    return rows, timed


def _size(n: int) -> str:
    for shift, unit in ((20, "MiB"), (10, "KiB")):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift} {unit}"
    return f"{n} bytes"


# -- the overlay file --------------------------------------------------------------


def profile_file(overlay: Path) -> Path:
    return overlay / "spi_nor" / f"{FILE_SLUG}.json"


def _read(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {"family": "spi-nor", "vendor": VENDOR, "devices": []}
    try:
        doc = strict_json.loads(path.read_bytes().decode("utf-8"))
    except strict_json.StrictJsonError as err:
        raise InputError(err.where(str(path))) from None
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: cannot read: {err}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("devices"), list):
        raise InputError(f"{path}: not a device file (no 'devices' list)")
    return doc


def _write(path: Path, doc: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, (json.dumps(doc, indent=2) + "\n").encode("utf-8"))


def save_profile(entry: Mapping[str, Any], overlay: Path) -> Path:
    """Put ``entry`` in the overlay's provisional file (replacing one of the same id:
    the part was read again); the file as written."""
    path = profile_file(overlay)
    doc = _read(path)
    doc["devices"] = [d for d in doc["devices"] if d.get("id") != entry["id"]] + [dict(entry)]
    _write(path, doc)
    return path


def approve_profile(
    device_id: str, overlay: Path, approved_by: str, now: datetime | None = None
) -> Path:
    """Record the engineer's approval in the overlay file; InputError when the profile
    is not there (approval is for provisional profiles only)."""
    path = profile_file(overlay)
    doc = _read(path)
    for entry in doc["devices"]:
        if entry.get("id") == device_id and isinstance(entry.get("provisional"), dict):
            when = (now or datetime.now(UTC)).isoformat(timespec="seconds")
            entry["provisional"]["approved_by"] = approved_by
            entry["provisional"]["approved_at"] = when
            _write(path, doc)
            return path
    raise InputError(f"{device_id}: no provisional profile of that id in {path}")
