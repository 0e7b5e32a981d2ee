"""How much of flashrom's SPI chip list the device database covers (issue 15).

`flashrom -L` (Debian's package) prints a fixed-width table: vendor (29 columns), device
(37), test state, size in KiB, bus type; a long vendor or device name continues on the
next lines in its own column. A flashrom name can stand for several parts:
"EN25Q32(A/B)" is EN25Q32, EN25Q32A and EN25Q32B; "W25Q80.V" has one wildcard letter;
"MX25L1005(C)/MX25L1006E" lists two names. A flashrom entry counts as covered when
`devices search` finds, by part name or alias, a device that one of those names matches,
or a device that states the flashrom name itself (``flashrom_names``: flashrom's own
spellings such as "W25Q256JV_Q" or "S25FL128S......0", whose dots are then literal).

Run: .venv/bin/python tests/flashrom_coverage.py [--missing]   (prints the figure)
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

VENDOR_COLUMNS = 29
DEVICE_COLUMNS = 37


@dataclass(frozen=True)
class FlashromChip:
    vendor: str
    name: str  # as flashrom prints it, continuation lines joined
    size_kib: int


def flashrom_binary() -> str | None:
    return shutil.which("flashrom") or shutil.which("flashrom", path="/usr/sbin:/sbin")


def spi_chips(listing: str) -> list[FlashromChip]:
    """The SPI entries of a `flashrom -L` listing."""
    chips: list[tuple[str, str, int]] = []
    in_table = False
    for line in listing.splitlines():
        if line.startswith("Vendor") and "Device" in line:
            in_table = True
            continue
        if not line.strip():
            if chips:
                break  # the chip table ends at the first empty line after its rows
            continue
        if not in_table or line.startswith("("):
            continue
        vendor = line[:VENDOR_COLUMNS].strip()
        device = line[VENDOR_COLUMNS : VENDOR_COLUMNS + DEVICE_COLUMNS].strip()
        rest = line[VENDOR_COLUMNS + DEVICE_COLUMNS :].split()
        if rest and rest[-1] in ("SPI", "Parallel", "LPC", "FWH", "LPC,FWH", "Parallel,SPI"):
            size = next((int(x) for x in reversed(rest[:-1]) if x.isdigit()), 0)
            chips.append((vendor, device, size) if rest[-1] == "SPI" else ("", "", -1))
        elif chips and chips[-1][2] >= 0:  # a continuation line of the last SPI entry
            last_vendor, last_device, size = chips[-1]
            joined_vendor = f"{last_vendor} {vendor}".strip() if vendor else last_vendor
            chips[-1] = (joined_vendor, last_device + device, size)
    return [FlashromChip(v, d, s) for v, d, s in chips if s >= 0 and d]


def _alternatives(name: str) -> list[str]:
    """The names a "/" lists, outside parentheses; a short tail replaces the previous
    name's last letters ("MX25U3235E/F" is MX25U3235E and MX25U3235F)."""
    pieces, depth, current = [], 0, ""
    for char in name:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "/" and depth == 0:
            pieces.append(current)
            current = ""
        else:
            current += char
    pieces.append(current)
    names: list[str] = []
    for piece in (p.strip() for p in pieces):
        if not piece:
            continue
        if names and len(piece) <= 2 and len(names[-1]) > len(piece):
            piece = names[-1][: -len(piece)] + piece
        names.append(piece)
    return names


def name_patterns(name: str) -> list[re.Pattern[str]]:
    """Regular expressions for every part name a flashrom name stands for: "(A/B)" is
    an optional one of A or B, "." one wildcard letter or digit."""
    out = []
    for piece in _alternatives(name):
        regex = ""
        for token in re.findall(r"\([^)]*\)|.", piece):
            if token.startswith("("):
                options = "|".join(re.escape(o.strip()) for o in token[1:-1].split("/"))
                regex += f"(?:{options})?"
            elif token == ".":
                regex += "[A-Z0-9]"
            else:
                regex += re.escape(token)
        out.append(re.compile(regex))
    return out


def _normal(text: str) -> str:
    return re.sub(r"[\s-]", "", text.upper())


def coverage(
    chips: list[FlashromChip], names: list[str]
) -> tuple[list[FlashromChip], list[FlashromChip]]:
    """(covered, missing) flashrom entries, given the database's part names and aliases."""
    normal = [_normal(n) for n in names]
    covered, missing = [], []
    for chip in chips:
        flashrom_name = _normal(chip.name.replace(" ", ""))
        patterns = name_patterns(flashrom_name)
        hit = flashrom_name in normal or any(p.fullmatch(n) for p in patterns for n in normal)
        (covered if hit else missing).append(chip)
    return covered, missing


def database_names() -> list[str]:
    from app.devicedb import load_database

    names: list[str] = []
    for device in load_database(use_overlay=False):
        names.append(device.part)
        names.extend(device.aliases)
        names.extend(device.flashrom_names)
    return names


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--missing", action="store_true", help="list the entries not found")
    args = parser.parse_args()
    binary = flashrom_binary()
    if binary is None:
        print("flashrom not installed (apt-get install flashrom)")
        return 1
    listing = subprocess.run([binary, "-L"], capture_output=True, text=True, check=True).stdout
    chips = spi_chips(listing)
    covered, missing = coverage(chips, database_names())
    print(
        f"flashrom -L SPI entries: {len(chips)}; found by devices search: {len(covered)}"
        f" ({100 * len(covered) / len(chips):.1f}%)"
    )
    if args.missing:
        for chip in missing:
            print(f"  {chip.vendor:28} {chip.name:36} {chip.size_kib:6} KiB")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.exit(main())
