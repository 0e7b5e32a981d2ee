"""Search ranking, size words, filters, identification and the overlay, on a fixture DB.

The fixture (tests/data/devicedb/) is independent of the real data: it has two
parts sharing JEDEC ID EF4018, two Cypress parts told apart by extended ID bytes,
and an overlay that replaces one part and adds another.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_devicedb_validation import spi_entry  # tests/ is on sys.path (rootdir conftest)

from app.core.errors import InputError
from app.devicedb import (
    Device,
    DeviceDatabase,
    UnknownDeviceError,
    installed_db_path,
    load_database,
    normalize,
    overlay_db_path,
    parse_size_term,
)

FIXTURE = Path(__file__).parent / "data" / "devicedb"
INSTALLED = FIXTURE / "installed"
OVERLAY = FIXTURE / "overlay"


@pytest.fixture(scope="module")
def db() -> DeviceDatabase:
    return load_database(INSTALLED, OVERLAY)


@pytest.fixture(scope="module")
def base_db() -> DeviceDatabase:
    return load_database(INSTALLED, use_overlay=False)


def ids(devices: list[Device]) -> list[str]:
    return [d.id for d in devices]


def make(
    device_id: str,
    part: str,
    aliases: tuple[str, ...] = (),
    vendor: str = "Acme",
    size: int = 1 << 20,
) -> Device:
    raw = spi_entry() | {
        "id": device_id,
        "vendor": vendor,
        "part": part,
        "aliases": list(aliases),
        "size_bytes": size,
        "packages": ["SOIC-8-150mil"],
    }
    return Device.from_raw(raw, "memory")


# -- ranking -----------------------------------------------------------------------


def test_rank_tiers_in_order() -> None:
    devices = [
        make("acme.zz", "NN", vendor="AB12 Corp"),  # vendor match
        make("acme.e", "ZAB12"),  # substring of part
        make("acme.f", "AB1"),  # too short to count as the base of an ordering code
        make("acme.d", "QQ2", aliases=("AB12-T",)),  # alias prefix
        make("acme.c", "QQ1", aliases=("AB12",)),  # alias exact
        make("acme.b", "AB12X"),  # part prefix
        make("acme.a", "AB-12"),  # exact part (punctuation ignored)
        make("acme.g", "UNRELATED"),
    ]
    database = DeviceDatabase(devices, {})
    assert ids(database.search("ab12")) == [
        "acme.a",
        "acme.b",
        "acme.c",
        "acme.d",
        "acme.e",
        "acme.zz",
    ]


def test_ordering_codes_find_their_base_part(db: DeviceDatabase) -> None:
    assert ids(db.search("W25Q128JVSIQ TR")) == ["winbond.w25q128jv"]
    assert ids(db.search("STM32F103C8T6")) == ["st.stm32f10x-md"]
    devices = [make("acme.a", "AB12"), make("acme.b", "AB123"), make("acme.c", "AB12C")]
    # the longest name the code starts with wins; a part prefix beats both
    assert ids(DeviceDatabase(devices, {}).search("ab123-tr")) == ["acme.b", "acme.a"]
    assert ids(DeviceDatabase(devices, {}).search("ab12")) == ["acme.a", "acme.b", "acme.c"]


def test_ties_break_by_vendor_then_part() -> None:
    devices = [
        make("b.x2", "X2", vendor="Beta"),
        make("a.x9", "X9", vendor="Alpha"),
        make("a.x1", "X1", vendor="Alpha"),
    ]
    assert ids(DeviceDatabase(devices, {}).search("x")) == ["a.x1", "a.x9", "b.x2"]


def test_exact_part_beats_prefix(db: DeviceDatabase) -> None:
    assert ids(db.search("W25Q128JV"))[0] == "winbond.w25q128jv"
    assert ids(db.search("w25q128")) == ["winbond.w25q128fv", "winbond.w25q128jv"]


@pytest.mark.parametrize(
    "query",
    ["w25q128", "W25Q-128", "w25q 128jv", "W25Q128JV", "winbond.w25q128jv", "  w25q128JV  "],
)
def test_case_and_punctuation_do_not_matter(db: DeviceDatabase, query: str) -> None:
    assert "winbond.w25q128jv" in ids(db.search(query))


def test_full_part_with_spaces_ranks_first(db: DeviceDatabase) -> None:
    assert ids(db.search("w25q 128jv")) == ["winbond.w25q128jv"]
    assert ids(db.search("Winbond W25Q128JV"))[0] == "winbond.w25q128jv"


def test_alias_finds_the_part(db: DeviceDatabase) -> None:
    assert ids(db.search("GD25Q127C")) == ["gigadevice.gd25q128c"]
    assert ids(db.search("stm32f103c8")) == ["st.stm32f10x-md"]
    assert ids(db.search("24AA256")) == ["microchip.24lc256"]


def test_words_match_separately_when_the_whole_does_not(db: DeviceDatabase) -> None:
    assert ids(db.search("winbond 128")) == ["winbond.w25q128fv", "winbond.w25q128jv"]


def test_empty_query_lists_all_sorted(db: DeviceDatabase) -> None:
    everything = db.search()
    assert len(everything) == len(db) == 16
    keys = [(d.vendor.casefold(), d.part.casefold()) for d in everything]
    assert keys == sorted(keys)


def test_no_match(db: DeviceDatabase) -> None:
    assert db.search("no-such-part") == []


# -- size words and filters --------------------------------------------------------------


@pytest.mark.parametrize(
    ("term", "sizes"),
    [
        ("16MiB", {16 << 20}),
        ("16MB", {16 << 20}),
        ("128Mbit", {16 << 20}),
        ("128Mb", {16 << 20}),
        ("128M", {16 << 20, 128 << 20}),
        ("256K", {32 << 10, 256 << 10}),
        ("2kbit", {256}),
        ("512B", {512}),
        ("w25q", None),
        ("24c256", None),
        ("256", None),
    ],
)
def test_size_terms(term: str, sizes: set[int] | None) -> None:
    parsed = parse_size_term(term)
    assert (set(parsed) if parsed else None) == sizes


@pytest.mark.parametrize("term", ["16MiB", "128Mbit", "128M", "16 MiB"])
def test_size_words_filter_by_size(db: DeviceDatabase, term: str) -> None:
    hits = db.search(term)
    assert hits and all(d.size_bytes == 16 << 20 for d in hits)
    assert {"winbond.w25q128jv", "gigadevice.gd25q128c"} <= set(ids(hits))


def test_size_word_with_text(db: DeviceDatabase) -> None:
    assert ids(db.search("w25q 32MiB")) == ["winbond.w25q256jv"]
    assert ids(db.search("256K")) == ["microchip.24lc256"]


def test_family_filter_accepts_either_spelling(db: DeviceDatabase) -> None:
    eeproms = db.search(family="i2c_eeprom")
    assert eeproms and all(d.family == "i2c-eeprom" for d in eeproms)
    assert ids(db.search("24lc", family="spi-nor")) == []


def test_vendor_and_package_filters(db: DeviceDatabase) -> None:
    assert {d.vendor for d in db.search(vendor="winbond")} == {"Winbond"}
    assert {d.vendor for d in db.search(vendor="st")} == {"STMicroelectronics"}
    dip = db.search(package="dip8")
    assert dip and all("DIP-8" in d.packages for d in dip)
    assert ids(db.search("w25q", package="DIP-8")) == ["winbond.w25q80dv"]


def test_size_range_filter(db: DeviceDatabase) -> None:
    hits = db.search(family="spi-nor", min_size=8 << 20, max_size=16 << 20)
    assert hits and all(8 << 20 <= d.size_bytes <= 16 << 20 for d in hits)


# -- get -----------------------------------------------------------------------------


def test_get_exact_and_forgiving(db: DeviceDatabase) -> None:
    assert db.get("microchip.24lc256").part == "24LC256"
    assert db.get("Microchip.24LC256").id == "microchip.24lc256"


def test_get_unknown_lists_close_matches(db: DeviceDatabase) -> None:
    with pytest.raises(UnknownDeviceError) as err:
        db.get("winbond.w25q128")
    assert isinstance(err.value, KeyError) and isinstance(err.value, InputError)
    assert str(err.value) == (
        "unknown device id 'winbond.w25q128'; did you mean: winbond.w25q128fv, winbond.w25q128jv"
    )


# -- identify ------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["ef4018", "0xEF4018", "EF 40 18", "ef:40:18"])
def test_identify_normalizes_hex(db: DeviceDatabase, text: str) -> None:
    found = db.identify("jedec", text)
    assert found.id_hex == "EF4018"


def test_identify_ambiguous_jedec_lists_every_candidate(db: DeviceDatabase) -> None:
    found = db.identify("jedec", "EF4018")
    assert found.found and found.ambiguous
    assert ids(list(found.candidates)) == ["winbond.w25q128fv", "winbond.w25q128jv"]


def test_identify_unique(db: DeviceDatabase) -> None:
    found = db.identify("jedec", "C84018")
    assert found.found and not found.ambiguous
    assert found.candidates[0].id == "gigadevice.gd25q128c"


def test_identify_extended_bytes_narrow(db: DeviceDatabase) -> None:
    assert db.identify("jedec", "012018").ambiguous
    assert ids(list(db.identify("jedec", "0120184D01").candidates)) == ["cypress.s25fl128s-64k"]
    assert ids(list(db.identify("jedec", "01 20 18 4D 00 80").candidates)) == [
        "cypress.s25fl128s-256k"
    ]
    assert not db.identify("jedec", "0120184D02").found
    # parts without an extended ID stay candidates whatever follows the 3 bytes
    assert len(db.identify("jedec", "EF40180000").candidates) == 2


def test_identify_nothing(db: DeviceDatabase) -> None:
    found = db.identify("jedec", "123456")
    assert not found.found and not found.ambiguous and found.candidates == ()
    floating = db.identify("jedec", "FFFFFF")
    assert not floating.found and floating.note and "no chip answered" in floating.note


@pytest.mark.parametrize("text", ["0x410", "410", "0X0410"])
def test_identify_stm32_pid(db: DeviceDatabase, text: str) -> None:
    found = db.identify("stm32_pid", text)
    assert found.id_hex == "0x410"
    assert ids(list(found.candidates)) == ["st.stm32f10x-md"]


@pytest.mark.parametrize(
    ("bus", "text"),
    [
        ("jedec", "EF40"),
        ("jedec", "EF401"),
        ("jedec", "xyz"),
        ("stm32_pid", "0x1000"),
        ("i2c", "50"),
    ],
)
def test_identify_rejects_bad_input(db: DeviceDatabase, bus: str, text: str) -> None:
    with pytest.raises(InputError):
        db.identify(bus, text)


# -- overlay and default locations ------------------------------------------------------


def test_overlay_adds_a_device_and_a_package(db: DeviceDatabase, base_db: DeviceDatabase) -> None:
    assert "acme.ac25q32" not in base_db
    added = db.get("acme.ac25q32")
    assert added.overlay and added.overrides is None
    assert "USON-8-4x4" in db.packages and "USON-8-4x4" not in base_db.packages


def test_overlay_replaces_the_whole_entry(db: DeviceDatabase, base_db: DeviceDatabase) -> None:
    installed = base_db.get("winbond.w25q128jv")
    replaced = db.get("winbond.w25q128jv")
    assert installed.tested["identify"] == "untested"
    assert replaced.tested["identify"] == "hardware"
    assert replaced.aliases == ("W25Q128JVSIQ",)  # not merged with the installed aliases
    assert replaced.source_file.endswith("overlay/mine.json")
    assert replaced.overrides is not None and replaced.overrides.endswith("spi_nor/winbond.json")
    assert len(db) == len(base_db) + 1


def test_environment_selects_the_folders(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOCKETEER_DEVICE_DB", str(INSTALLED))
    monkeypatch.setenv("SOCKETEER_OVERLAY_DB", str(OVERLAY))
    assert installed_db_path() == INSTALLED and overlay_db_path() == OVERLAY
    assert "acme.ac25q32" in load_database()


def test_default_folders(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.resources

    import platformdirs

    monkeypatch.delenv("SOCKETEER_OVERLAY_DB")
    installed = installed_db_path()
    assert installed == Path(str(importlib.resources.files("app.device_db")))
    assert (installed / "packages.json").is_file() and (installed / "schema").is_dir()
    expected = Path(platformdirs.user_data_dir("socketeer", appauthor=False)) / "device_db"
    assert overlay_db_path() == expected


# -- properties ---------------------------------------------------------------------------

FIXTURE_DB = load_database(INSTALLED, OVERLAY)
PARTS = sorted({d.part for d in FIXTURE_DB})


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    query=st.text(max_size=40),
    family=st.none() | st.text(max_size=12),
    vendor=st.none() | st.text(max_size=12),
    package=st.none() | st.text(max_size=12),
)
def test_search_never_raises(
    query: str, family: str | None, vendor: str | None, package: str | None
) -> None:
    hits = FIXTURE_DB.search(query, family=family, vendor=vendor, package=package)
    assert all(isinstance(d, Device) for d in hits)


@settings(max_examples=200)
@given(
    part=st.sampled_from(PARTS),
    seed=st.integers(0, 2**32 - 1),
    separators=st.sampled_from(["", "-", "_", ".", "/", "-_"]),
)
def test_an_existing_part_ranks_first(part: str, seed: int, separators: str) -> None:
    rng = random.Random(seed)
    chars = [c.upper() if rng.random() < 0.5 else c.lower() for c in normalize(part)]
    query = "".join(
        c + (rng.choice(separators) if separators and rng.random() < 0.3 else "") for c in chars
    )
    hits = FIXTURE_DB.search(query)
    assert hits, query
    assert normalize(hits[0].part) == normalize(part), (query, ids(hits[:3]))


def test_normalize() -> None:
    assert normalize("W25Q-128 JV/SIQ") == "w25q128jvsiq"
    assert re.fullmatch(r"[a-z0-9]*", normalize("Ünïcødé ✓ 24C02"))
