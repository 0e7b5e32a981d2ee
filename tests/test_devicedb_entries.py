"""Every entry of the installed device DB, checked one by one.

Parametrized over whatever data exists, so it passes on a partial database; the
counts live in test_devicedb_coverage.py. Besides the validator's verdict on each
entry, the erase/flash coverage and the addressing rules are recomputed here, so a
bug in the validator cannot hide a bad entry.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

import pytest

from app.devicedb import FAMILY_DIRS, KNOWN_ALGORITHMS, validate_paths
from app.devicedb.files import display_path

DB = Path(__file__).resolve().parents[1] / "device_db"
PACKAGES = DB / "packages.json"
DEVICE_FILES = sorted(p for p in DB.glob("*/*.json") if p.parent.name != "schema")

#: 93C46/56/66/76/86 in x8 and x16 (Microchip DS20001749K/DS21794-DS21797, ST DS1077)
MICROWIRE_ADDRESS_BITS = {
    (128, 8): 7,
    (128, 16): 6,
    (256, 8): 9,
    (256, 16): 8,
    (512, 8): 9,
    (512, 16): 8,
    (1024, 8): 11,
    (1024, 16): 10,
    (2048, 8): 11,
    (2048, 16): 10,
}


def _entries() -> list[Any]:
    params = []
    for path in DEVICE_FILES:
        try:
            devices = json.loads(path.read_text(encoding="utf-8")).get("devices", [])
        except (ValueError, AttributeError):
            devices = []  # test_device_file_is_valid reports it
        for index, entry in enumerate(devices if isinstance(devices, list) else []):
            name = entry.get("id") if isinstance(entry, dict) else None
            params.append(pytest.param(path, index, entry, id=str(name or f"{path.name}[{index}]")))
    return params


ENTRIES = _entries()


@functools.cache
def _file_errors(path: Path) -> tuple[str, ...]:
    """The validator's messages for one file, checked against the installed packages."""
    roots = [path, PACKAGES] if PACKAGES.exists() else [path]
    errors = validate_paths(roots)
    if not PACKAGES.exists():  # the package table is still being written
        errors = [e for e in errors if "unknown package" not in e]
    return tuple(errors)


def _errors_of_entry(path: Path, index: int) -> list[str]:
    mark = re.compile(rf": \$\.devices\[{index}\][.:\[]")
    return [e for e in _file_errors(path) if mark.search(e)]


@pytest.fixture(scope="module")
def package_names() -> set[str] | None:
    if not PACKAGES.exists():
        return None
    return {p["name"] for p in json.loads(PACKAGES.read_text(encoding="utf-8"))["packages"]}


@pytest.mark.parametrize("path", DEVICE_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_device_file_is_valid_outside_its_entries(path: Path) -> None:
    shown = display_path(path)
    file_level = [e for e in _file_errors(path) if not e.startswith(f"{shown}: $.devices[")]
    assert file_level == []


@pytest.mark.parametrize(("path", "index", "entry"), ENTRIES)
def test_entry_passes_validation(path: Path, index: int, entry: dict[str, Any]) -> None:
    assert _errors_of_entry(path, index) == []


@pytest.mark.parametrize(("path", "index", "entry"), ENTRIES)
def test_entry_basics(
    path: Path, index: int, entry: dict[str, Any], package_names: set[str] | None
) -> None:
    assert FAMILY_DIRS[entry["family"]] == path.parent.name
    assert entry["id"].startswith(path.stem + ".")
    assert entry["algorithm"] in KNOWN_ALGORITHMS
    assert len(entry["source"].strip()) >= 5, "every entry cites its datasheet"
    low, high = entry["voltage_mv"]
    assert 900 <= low <= high <= 7000
    if package_names is not None:
        assert set(entry["packages"]) <= package_names


@pytest.mark.parametrize(("path", "index", "entry"), ENTRIES)
def test_entry_memory_is_covered(path: Path, index: int, entry: dict[str, Any]) -> None:
    size = entry["size_bytes"]
    family = entry["family"]
    if family == "spi-nor":
        chip = [e for e in entry["erase"] if e["size_bytes"] == "chip"]
        die_erases = entry.get("dies") and not entry.get("die_select")  # die select: C7h a die
        if entry.get("no_chip_erase") or die_erases:  # block or die erases only
            assert not chip, "no chip erase"
        else:
            assert len(chip) == 1, "exactly one chip erase"
        for erase in entry["erase"]:
            assert erase["ms_typ"] <= erase["ms_max"]
            block = erase["size_bytes"]
            if block != "chip":
                assert size % block == 0 and (size // block) * block == size, erase
        assert size % entry["page_size_bytes"] == 0
        if size > 16 << 20:
            assert entry["address_bytes"] == 4 and entry.get("four_byte_mode")
        else:
            assert entry["address_bytes"] == 3 and "four_byte_mode" not in entry
        ids = entry["ids"]
        if "jedec" in ids:
            assert re.fullmatch(r"[0-9A-F]{6}", ids["jedec"])
        else:  # a part without RDID: identified by exactly one of RES / REMS
            (command,) = [key for key in ("res", "rems", "atmel_rdid") if key in ids]
            assert re.fullmatch(r"([0-9A-F]{2}){1,2}", ids[command])
    elif family == "i2c-eeprom":
        reach = 256 ** entry["address_bytes"] * 2 ** entry["block_bits"]
        assert size <= reach
        assert entry["block_bits"] == 0 or size > reach // 2
        assert size % entry["page_size_bytes"] == 0
    elif family == "spi-eeprom":
        assert size % entry["page_size_bytes"] == 0
        a8 = entry.get("address_bit_in_opcode", False)
        assert size <= 256 ** entry["address_bytes"] * (2 if a8 else 1)
        assert not a8 or (entry["address_bytes"] == 1 and size == 512)
        assert entry.get("write_cycle_ms_typ", 0) <= entry["write_cycle_ms_max"]
        assert entry["status"]["bp_mask"] == "0x0C"
    elif family == "dataflash":
        page, binary = entry["page_size_bytes"], entry["binary_page_size_bytes"]
        assert size == entry["pages"] * (binary or page)
        assert binary is None or binary * 33 == page * 32
        assert entry["pages"] % 8 == 0  # whole 8-page blocks
        assert re.fullmatch(r"1F[0-9A-F]{4}", entry["ids"]["jedec"])  # Atmel/Adesto
    elif family == "microwire":
        org = entry["organisation"]
        # address field per (size, organisation), from the 93xx datasheets' instruction tables
        assert entry["address_bits"] == MICROWIRE_ADDRESS_BITS[(size, org)]
        if entry["org_pin"]:  # one entry per ORG strapping, named after it
            assert entry["part"].endswith(f" (x{org})") and entry["id"].endswith(f"-x{org}")
        assert entry.get("write_cycle_ms_typ", 0) <= entry["write_cycle_ms_max"]
    elif family == "stm32-uart":
        assert sum(r["count"] * r["size_bytes"] for r in entry["flash_layout"]) == size
        assert int(entry["ids"]["stm32_pid"], 16) <= 0xFFF
        if "swd" in entry:  # DBGMCU_IDCODE's DEV_ID is the bootloader's product ID
            assert entry["swd"]["id_values"] == [f"0x{int(entry['ids']['stm32_pid'], 16):08X}"]
            assert entry["swd"]["id_mask"] == "0x00000FFF"
            on_apb = entry["swd"]["series"] in ("stm32f0", "stm32g0")  # RM0091, RM0444
            assert entry["swd"]["id_register"] == ("0x40015800" if on_apb else "0xE0042000")
    elif family == "cortex-m":
        assert sum(r["count"] * r["size_bytes"] for r in entry["flash_layout"]) == size
        page = 1024 if entry["swd"]["series"] == "nrf51" else 4096  # FICR CODEPAGESIZE
        assert {r["size_bytes"] for r in entry["flash_layout"]} == {page}
        assert entry["flash_base"] == "0x00000000" and entry["ram_base"] == "0x20000000"
    else:
        pytest.fail(f"unknown family {family!r}")


def test_ids_unique_across_files() -> None:
    seen: dict[str, str] = {}
    for param in ENTRIES:
        path, _, entry = param.values
        assert entry["id"] not in seen, f"{entry['id']} in {path} and {seen.get(entry['id'])}"
        seen[entry["id"]] = str(path)


@pytest.mark.skipif(not PACKAGES.exists(), reason="device_db/packages.json not written yet")
def test_installed_database_loads() -> None:
    from app.devicedb import load_database

    database = load_database(use_overlay=False)
    assert len(database) == len(ENTRIES)
