"""The flashrom coverage figure of issue 15: parsing `flashrom -L` and matching its names.

The parser and the name rules are checked on an excerpt of Debian's listing (continued
names, vendors and parallel chips included); the figure itself is computed against the
installed flashrom and kept from falling (a ratchet that rises with the catalogue).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from flashrom_coverage import (
    FlashromChip,
    coverage,
    database_names,
    flashrom_binary,
    spi_chips,
)

LISTING = """\
Vendor                       Device                               Test  Known   Size   Type
                                                                  OK    Broken  [kB]

(P = PROBE, R = READ, E = ERASE, W = WRITE, - = N/A)

AMD                          Am29F002(N)BB                                        256  Parallel
Boya/                        B.25D16A                             PR             2048  SPI
BoHong Microelectronics
Eon                          EN25Q32(A/B)                         PREW           4096  SPI
Macronix                     MX25L1005(C)/                        PREW            128  SPI
                             MX25L1006E
Macronix                     MX25U3235E/F                         PREW           4096  SPI
Winbond                      W25Q80.V                             PREW           1024  SPI
Zetta Device                 ZD25D40                                              512  SPI

Supported programmers:
internal, dummy, nic3com, nicrealtek, gfxnvidia, raiden_debug_spi, drkaiser,
"""

#: the coverage reached so far; raise it as the catalogue grows (goal: 95%)
COVERAGE_FLOOR = 0.96


def test_the_listing_is_read_with_continued_names_and_only_spi_chips() -> None:
    chips = spi_chips(LISTING)
    assert [(c.vendor, c.name, c.size_kib) for c in chips] == [
        ("Boya/ BoHong Microelectronics", "B.25D16A", 2048),
        ("Eon", "EN25Q32(A/B)", 4096),
        ("Macronix", "MX25L1005(C)/MX25L1006E", 128),
        ("Macronix", "MX25U3235E/F", 4096),
        ("Winbond", "W25Q80.V", 1024),
        ("Zetta Device", "ZD25D40", 512),  # the table ends before the programmer list
    ]


@pytest.mark.parametrize(
    ("flashrom_name", "ours", "found"),
    [
        ("EN25Q32(A/B)", "EN25Q32B", True),
        ("EN25Q32(A/B)", "EN25Q32", True),
        ("EN25Q32(A/B)", "EN25Q32C", False),
        ("MX25L1005(C)/MX25L1006E", "MX25L1006E", True),
        ("MX25L1005(C)/MX25L1006E", "MX25L1005C", True),
        ("MX25U3235E/F", "MX25U3235F", True),
        ("W25Q80.V", "W25Q80DV", True),
        ("W25Q80.V", "W25Q80", False),
        ("B.25D16A", "BY25D16A", True),  # Boya's BY25D16A, BoHong's BH25D16A
        ("B.25D16A", "BYY25D16A", False),  # one wildcard letter, not two
        ("S25FL128S......0", "S25FL128S......0", True),  # a stated flashrom name
        ("S25FL128S......0", "S25FL128S......1", False),
        ("W25Q256JV_Q", "W25Q256JV-Q", False),
    ],
)
def test_a_flashrom_name_stands_for_its_variants(flashrom_name, ours, found) -> None:
    covered, _missing = coverage([FlashromChip("vendor", flashrom_name, 1)], [ours])
    assert bool(covered) is found


@pytest.mark.skipif(flashrom_binary() is None, reason="flashrom not installed")
def test_the_catalogue_covers_flashroms_spi_list_no_less_than_before() -> None:
    binary = flashrom_binary()
    assert binary is not None
    listing = subprocess.run([binary, "-L"], capture_output=True, text=True, check=True)
    chips = spi_chips(listing.stdout)
    assert len(chips) > 300, "the listing was not understood"
    covered, _missing = coverage(chips, database_names())
    assert len(covered) / len(chips) >= COVERAGE_FLOOR


def test_a_stated_flashrom_name_finds_its_part_first() -> None:
    from app.devicedb import load_database

    database = load_database(use_overlay=False)
    for query, wanted in (
        ("S25FL128S......0", "infineon.s25fl128s-64k"),
        ("S25FL128S......1", "infineon.s25fl128s-256k"),
        ("W25Q256JV_M", "winbond.w25q256jv-im"),
    ):
        assert database.search(query)[0].id == wanted, query


def test_one_flashrom_name_names_one_part(tmp_path: Path) -> None:
    from test_devicedb_validation import errors_for, spi_entry

    first, second = spi_entry(), spi_entry()
    second["id"] = "winbond.w25q128jv-other"
    first["flashrom_names"] = ["W25Q128.V"]
    second["flashrom_names"] = ["w25q128.v"]
    _path, errors = errors_for(tmp_path, first, second)
    assert len(errors) == 1, errors
    assert "w25q128jv-other: flashrom_names: 'w25q128.v' is already the flashrom" in errors[0]
    assert "winbond.w25q128jv " in errors[0] and "winbond.json" in errors[0]


@pytest.mark.skipif(flashrom_binary() is None, reason="flashrom not installed")
def test_every_stated_flashrom_name_is_one_flashrom_lists() -> None:
    """A misspelt flashrom_names entry (N25Q512..3GG) would count for nothing."""
    from app.devicedb import load_database

    binary = flashrom_binary()
    assert binary is not None
    listing = subprocess.run([binary, "-L"], capture_output=True, text=True, check=True)
    listed = {chip.name.lower() for chip in spi_chips(listing.stdout)}
    stated = {
        (device.id, name)
        for device in load_database(use_overlay=False)
        for name in device.flashrom_names
    }
    unknown = sorted((id_, name) for id_, name in stated if name.lower() not in listed)
    assert not unknown
