"""Device DB speed: full read + validation, cached load, and search, against targets.

Run: .venv/bin/python tests/bench/bench_devicedb.py [--runs N]

Measures the installed DB and a synthetic DB of 400 entries, in-process. "read +
validate" is what `devices validate` and a changed database cost (no cache, cold
schema cache, so schema compilation is included); "cached load" is what every other
start costs (app.devicedb.cache). The whole-process start-up figures are in
bench_startup.py.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.devicedb import (
    DeviceDatabase,
    check_installed,
    installed_db_path,
    load_database,
)
from app.devicedb.cache import ENV_CACHE_DIR
from app.devicedb.schema import validator

LOAD_TARGET_MS = 300.0
CACHED_TARGET_MS = 50.0
SEARCH_TARGET_MS = 10.0

QUERIES = [
    "w25q128",
    "W25Q128JV",
    "w25q 128jv",
    "W25Q-128",
    "mx25l",
    "gd25q64",
    "16MiB",
    "128Mbit",
    "128M",
    "24lc256",
    "24c02",
    "at24",
    "256K",
    "stm32f103c8",
    "stm32f4",
    "winbond",
    "macronix 64",
    "soic8",
    "s25fl",
    "zzz-no-such-part",
]

UNTESTED = {k: "untested" for k in ("identify", "read", "erase", "program", "verify", "protect")}
VENDORS = [
    "Winbond",
    "Macronix",
    "GigaDevice",
    "Micron",
    "ISSI",
    "Cypress",
    "Adesto",
    "XMC",
    "Puya",
    "Zbit",
    "Eon",
    "Boya",
]


def _spi(vendor: str, n: int) -> dict:
    slug = vendor.lower()
    size = 1 << (17 + n % 10)
    big = size > 16 << 20
    entry = {
        "id": f"{slug}.{slug[:2]}25q{n:03d}",
        "vendor": vendor,
        "part": f"{slug[:2].upper()}25Q{n:03d}",
        "aliases": [f"{slug[:2].upper()}25Q{n:03d}SSIG", f"{slug[:2].upper()}25Q{n:03d}ZPIG"],
        "family": "spi-nor",
        "algorithm": "spi_nor",
        "ids": {"jedec": f"{n % 256:02X}40{n % 26:02X}"},
        "size_bytes": size,
        "page_size_bytes": 256,
        "erase": [
            {"opcode": "0x20", "size_bytes": 4096, "ms_typ": 45, "ms_max": 400},
            {"opcode": "0x52", "size_bytes": 32768, "ms_typ": 120, "ms_max": 1600},
            {"opcode": "0xD8", "size_bytes": 65536, "ms_typ": 150, "ms_max": 2000},
            {"opcode": "0xC7", "size_bytes": "chip", "ms_typ": 40000, "ms_max": 200000},
        ],
        "page_program_ms_typ": 0.4,
        "page_program_ms_max": 3,
        "address_bytes": 4 if big else 3,
        "status": {"bp_mask": "0x7C", "qe": "sr2.1", "srp": "sr1.7"},
        "voltage_mv": [2700, 3600],
        "max_clock_hz": 133000000,
        "erased_value": "0xFF",
        "sfdp": True,
        "unique_id": {"opcode": "0x4B", "dummy_bytes": 4, "length_bytes": 8},
        "packages": ["SOIC-8-208mil", "WSON-8-6x5"],
        "source": "synthetic benchmark entry",
        "tested": UNTESTED,
    }
    if big:
        entry["four_byte_mode"] = "b7"
    return entry


def _eeprom(n: int) -> dict:
    size = 128 << (n % 10)
    address_bytes = 1 if size <= 2048 else 2
    block_bits = {512: 1, 1024: 2, 2048: 3}.get(size, 0)
    return {
        "id": f"microchip.24lc{n:03d}",
        "vendor": "Microchip",
        "part": f"24LC{n:03d}",
        "aliases": [f"24AA{n:03d}"],
        "family": "i2c-eeprom",
        "algorithm": "i2c_eeprom",
        "size_bytes": size,
        "page_size_bytes": 8,
        "address_bytes": address_bytes,
        "block_bits": block_bits,
        "write_cycle_ms_max": 5,
        "voltage_mv": [2500, 5500],
        "max_clock_hz": 400000,
        "erased_value": "0xFF",
        "packages": ["SOIC-8-150mil"],
        "source": "synthetic benchmark entry",
        "tested": UNTESTED,
    }


def _stm32(n: int) -> dict:
    return {
        "id": f"st.stm32x{n:03d}",
        "vendor": "STMicroelectronics",
        "part": f"STM32X{n:03d}",
        "aliases": [f"STM32X{n:03d}C8", f"STM32X{n:03d}RB"],
        "family": "stm32-uart",
        "algorithm": "stm32_uart",
        "ids": {"stm32_pid": f"0x{0x400 + n:03X}"},
        "flash_base": "0x08000000",
        "size_bytes": 131072,
        "flash_layout": [{"count": 128, "size_bytes": 1024}],
        "ram_bytes": 20480,
        "ram_base": "0x20000000",
        "bootloader": {
            "version": "0x22",
            "ram_reserved_bytes": 512,
            "erase": "extended",
            "commands": ["0x00", "0x01", "0x02", "0x11", "0x21", "0x31", "0x44"],
            "usart": ["USART1"],
        },
        "voltage_mv": [2000, 3600],
        "erased_value": "0xFF",
        "packages": ["LQFP-48"],
        "source": "synthetic benchmark entry",
        "tested": UNTESTED,
    }


def write_synthetic_db(
    root: Path, spi_per_vendor: int = 25, eeproms: int = 50, stm32s: int = 50
) -> int:
    """A valid DB of len(VENDORS)*spi_per_vendor + eeproms + stm32s entries under root."""

    def dump(rel: str, doc: dict) -> None:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc, indent=1))

    dump(
        "packages.json",
        {
            "packages": [
                {"name": n, "pins": p, "pitch_mm": 1.27, "body_mm": [5.0, 5.0], "adapter": "ZIF"}
                for n, p in (
                    ("SOIC-8-208mil", 8),
                    ("WSON-8-6x5", 8),
                    ("SOIC-8-150mil", 8),
                    ("LQFP-48", 48),
                )
            ]
        },
    )
    for vendor in VENDORS:
        devices = [_spi(vendor, n) for n in range(spi_per_vendor)]
        dump(
            f"spi_nor/{vendor.lower()}.json",
            {"family": "spi-nor", "vendor": vendor, "devices": devices},
        )
    dump(
        "i2c_eeprom/microchip.json",
        {
            "family": "i2c-eeprom",
            "vendor": "Microchip",
            "devices": [_eeprom(n) for n in range(eeproms)],
        },
    )
    dump(
        "stm32_uart/st.json",
        {
            "family": "stm32-uart",
            "vendor": "STMicroelectronics",
            "devices": [_stm32(n) for n in range(stm32s)],
        },
    )
    return len(VENDORS) * spi_per_vendor + eeproms + stm32s


def _median_ms(func: Callable[[], object], runs: int, cold_schema: bool = False) -> float:
    times = []
    for _ in range(runs):
        if cold_schema:
            validator.cache_clear()
        start = time.perf_counter()
        func()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _report(label: str, value_ms: float, target_ms: float) -> bool:
    ratio = value_ms / target_ms
    verdict = "ok" if ratio <= 1 else "TOO SLOW"
    print(
        f"  {label:<44} {value_ms:8.2f} ms   target {target_ms:g} ms   "
        f"ratio {ratio:5.2f}  {verdict}"
    )
    return ratio <= 1


def bench(root: Path, label: str, runs: int) -> bool:
    report = check_installed(root, use_overlay=False)
    print(f"{label}: {root} ({len(report.devices)} devices, {len(report.errors)} errors)")
    if report.errors:
        # Still time it (an invalid DB is validated as fully as a valid one), then
        # search the entries that did load.
        ok = _report(
            "validate (median, invalid DB, schema compile incl.)",
            _median_ms(lambda: check_installed(root, use_overlay=False), runs, True),
            LOAD_TARGET_MS,
        )
        db = DeviceDatabase(report.devices.values(), report.packages)
    else:
        ok = _report(
            "read + validate (median, no cache, schemas compiled)",
            _median_ms(lambda: check_installed(root, use_overlay=False), runs, True),
            LOAD_TARGET_MS,
        )
        db = load_database(root, use_overlay=False)  # builds the cache entry
        ok &= _report(
            "cached load (median)",
            _median_ms(lambda: load_database(root, use_overlay=False), runs),
            CACHED_TARGET_MS,
        )
    ok &= _bench_search(db, runs)
    return ok


def _bench_search(db: DeviceDatabase, runs: int) -> bool:
    per_query = []
    for query in QUERIES:
        db.search(query)  # warm the query parse cache like a repeated UI query would not
        per_query.append(_median_ms(lambda q=query: _fresh_search(db, q), max(runs, 20)))
    worst = max(per_query)
    ok = _report(
        f"search (median over {len(QUERIES)} queries)",
        statistics.median(per_query),
        SEARCH_TARGET_MS,
    )
    ok &= _report("search (slowest query)", worst, SEARCH_TARGET_MS)
    return ok


def _fresh_search(db: DeviceDatabase, query: str) -> object:
    from app.devicedb.search import parse_query

    parse_query.cache_clear()  # time the parse as well, not a cache hit
    return db.search(query)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9, help="runs per measurement (median)")
    args = parser.parse_args()
    ok = True
    os.environ[ENV_CACHE_DIR] = tempfile.mkdtemp()  # not the user's cache
    installed = installed_db_path()
    ok &= bench(installed, "installed DB", args.runs)
    with tempfile.TemporaryDirectory() as tmp:
        count = write_synthetic_db(Path(tmp))
        ok &= bench(Path(tmp), f"synthetic DB ({count} entries)", args.runs)
    print("all within target" if ok else "SOME FIGURES ARE OVER TARGET")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
