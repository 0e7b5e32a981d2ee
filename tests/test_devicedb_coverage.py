"""How much of the market the installed device DB covers (counts only).

These targets are what the first release ships with; they fail while the data files
are still being written, and say how far off they are.
"""

from __future__ import annotations

import pytest

from app.devicedb import check_installed

pytestmark = pytest.mark.db_coverage

TARGETS = {
    # family: (minimum entries, minimum vendors)
    "spi-nor": (250, 10),
    "i2c-eeprom": (40, 1),
    "stm32-uart": (40, 1),
    "spi-eeprom": (40, 4),
    "dataflash": (9, 1),
    "microwire": (30, 4),
}


@pytest.fixture(scope="module")
def counts() -> dict[str, tuple[int, int]]:
    report = check_installed(use_overlay=False)
    return report.family_counts()


@pytest.mark.parametrize("family", sorted(TARGETS))
def test_family_coverage(counts: dict[str, tuple[int, int]], family: str) -> None:
    entries, vendors = counts.get(family, (0, 0))
    min_entries, min_vendors = TARGETS[family]
    assert entries >= min_entries, f"{family}: {entries} entries, target {min_entries}"
    assert vendors >= min_vendors, f"{family}: {vendors} vendors, target {min_vendors}"
