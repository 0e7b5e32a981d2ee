"""Each validation rule rejects a broken entry with a message naming file and JSON path."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from app.core.errors import DeviceDbError
from app.devicedb import check_installed, load_database, validate_paths
from app.devicedb.loader import DeviceDbInvalidError

FIXTURE = Path(__file__).parent / "data" / "devicedb" / "installed"


def _fixture_entry(rel: str, device_id: str) -> dict[str, Any]:
    doc = json.loads((FIXTURE / rel).read_text())
    return copy.deepcopy(next(d for d in doc["devices"] if d["id"] == device_id))


def spi_entry() -> dict[str, Any]:
    return _fixture_entry("spi_nor/winbond.json", "winbond.w25q128jv")


def eeprom_entry() -> dict[str, Any]:
    return _fixture_entry("i2c_eeprom/microchip.json", "microchip.24lc256")


def stm32_entry() -> dict[str, Any]:
    return _fixture_entry("stm32_uart/st.json", "st.stm32f40x")


FILES = {
    "spi-nor": ("spi_nor/winbond.json", "Winbond"),
    "i2c-eeprom": ("i2c_eeprom/microchip.json", "Microchip"),
    "stm32-uart": ("stm32_uart/st.json", "STMicroelectronics"),
}


def write_db(root: Path, *entries: dict[str, Any]) -> Path:
    """A one-file DB under ``root`` (with the fixture package table); returns the file."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "packages.json").write_text((FIXTURE / "packages.json").read_text())
    rel, vendor = FILES[entries[0]["family"]]
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"family": entries[0]["family"], "vendor": vendor, "devices": list(entries)}
    path.write_text(json.dumps(doc, indent=2))
    return path


def errors_for(tmp_path: Path, *entries: dict[str, Any]) -> tuple[Path, list[str]]:
    path = write_db(tmp_path / "db", *entries)
    return path, validate_paths([tmp_path / "db"])


def only_error(tmp_path: Path, entry: dict[str, Any]) -> tuple[Path, str]:
    path, errors = errors_for(tmp_path, entry)
    assert len(errors) == 1, errors
    return path, errors[0]


def test_fixture_db_is_valid() -> None:
    report = check_installed(FIXTURE, Path(__file__).parent / "data" / "devicedb" / "overlay")
    assert report.errors == []
    assert len(report.devices) == 16


def test_valid_entry_has_no_errors(tmp_path: Path) -> None:
    assert errors_for(tmp_path, spi_entry())[1] == []


# -- spi-nor ------------------------------------------------------------------


def test_erase_size_must_divide_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    entry = spi_entry()
    entry["erase"][1]["size_bytes"] = 3000
    write_db(tmp_path / "device_db", entry)
    monkeypatch.chdir(tmp_path)  # messages show paths relative to the working directory
    assert validate_paths([Path("device_db")]) == [
        "device_db/spi_nor/winbond.json: $.devices[0].erase[1].size_bytes: "
        "3000 does not divide size_bytes 16777216"
    ]


def test_chip_erase_is_required(tmp_path: Path) -> None:
    entry = spi_entry()
    entry["erase"] = entry["erase"][:3]
    path, message = only_error(tmp_path, entry)
    assert message.startswith(f"{path}: $.devices[0].erase: no chip erase")


def test_only_one_chip_erase(tmp_path: Path) -> None:
    entry = spi_entry()
    entry["erase"].append({"opcode": "0x60", "size_bytes": "chip", "ms_typ": 1, "ms_max": 2})
    path, message = only_error(tmp_path, entry)
    assert message.startswith(f"{path}: $.devices[0].erase[4].size_bytes: second chip erase")


def test_chip_erase_opcode_must_cover_the_part(tmp_path: Path) -> None:
    entry = spi_entry()
    entry["erase"][0]["opcode"] = "0xC7"  # 4 KiB "chip erase" does not cover 16 MiB
    path, message = only_error(tmp_path, entry)
    assert message.startswith(f"{path}: $.devices[0].erase[0].size_bytes: opcode 0xC7 is a chip")


def test_page_size_must_divide_size(tmp_path: Path) -> None:
    entry = spi_entry()
    entry["page_size_bytes"] = 1000
    _, message = only_error(tmp_path, entry)
    assert "$.devices[0].page_size_bytes: 1000 does not divide size_bytes 16777216" in message


def test_big_part_needs_four_address_bytes_and_a_mode(tmp_path: Path) -> None:
    entry = spi_entry()
    entry["size_bytes"] = 32 << 20
    path, errors = errors_for(tmp_path, entry)
    assert errors == [
        f"{path}: $.devices[0]: missing 'four_byte_mode': parts above 16 MiB (size_bytes "
        "33554432) must say how they address above 16 MiB (b7, opcodes, bank-register or always)",
        f"{path}: $.devices[0].address_bytes: 3: parts above 16 MiB (size_bytes 33554432) "
        "need address_bytes 4",
    ]


def test_small_part_has_no_four_byte_mode(tmp_path: Path) -> None:
    entry = spi_entry()
    entry["four_byte_mode"] = "b7"
    path, message = only_error(tmp_path, entry)
    assert message.startswith(f"{path}: $.devices[0].four_byte_mode: 'b7': only parts above")


def test_erase_typ_must_not_exceed_max(tmp_path: Path) -> None:
    entry = spi_entry()
    entry["erase"][2]["ms_typ"] = 5000
    path, message = only_error(tmp_path, entry)
    assert message == f"{path}: $.devices[0].erase[2].ms_typ: 5000 is above ms_max 2000"


def test_page_program_typ_must_not_exceed_max(tmp_path: Path) -> None:
    entry = spi_entry()
    entry["page_program_ms_typ"] = 4
    path, message = only_error(tmp_path, entry)
    assert message == f"{path}: $.devices[0].page_program_ms_typ: 4 is above page_program_ms_max 3"


# -- common rules ---------------------------------------------------------------


def test_voltage_min_must_not_exceed_max(tmp_path: Path) -> None:
    entry = eeprom_entry()
    entry["voltage_mv"] = [3600, 1800]
    path, message = only_error(tmp_path, entry)
    assert message == f"{path}: $.devices[0].voltage_mv: min 3600 mV is above max 1800 mV"


def test_voltage_in_volts_is_caught_by_the_schema(tmp_path: Path) -> None:
    entry = eeprom_entry()
    entry["voltage_mv"] = [2, 5]
    path, errors = errors_for(tmp_path, entry)
    assert len(errors) == 2
    assert errors[0].startswith(f"{path}: $.devices[0].voltage_mv[0]: 2 is less than the minimum")
    assert "millivolts" in errors[0]


def test_unknown_package(tmp_path: Path) -> None:
    entry = spi_entry()
    entry["packages"][1] = "WSON8-6x5"
    path, message = only_error(tmp_path, entry)
    assert message == (
        f"{path}: $.devices[0].packages[1]: unknown package 'WSON8-6x5' "
        "(not in packages.json; did you mean 'WSON-8-6x5'?)"
    )


def test_unknown_algorithm(tmp_path: Path) -> None:
    entry = spi_entry()
    entry["algorithm"] = "spi_nand"
    path, message = only_error(tmp_path, entry)
    assert message.startswith(f"{path}: $.devices[0].algorithm: unknown algorithm 'spi_nand'")
    assert "spi_nor" in message


def test_id_prefix_must_be_the_files_vendor_slug(tmp_path: Path) -> None:
    entry = spi_entry()
    entry["id"] = "winbnd.w25q128jv"
    path, message = only_error(tmp_path, entry)
    assert message.startswith(
        f"{path}: $.devices[0].id: 'winbnd.w25q128jv' must start with 'winbond.'"
    )


def test_vendor_must_match_the_file(tmp_path: Path) -> None:
    entry = spi_entry()
    entry["vendor"] = "Windbond"
    path, message = only_error(tmp_path, entry)
    assert message.startswith(f"{path}: $.devices[0].vendor: 'Windbond' differs from the file's")


def test_family_must_match_the_folder(tmp_path: Path) -> None:
    path = write_db(tmp_path / "db", spi_entry())
    wrong = path.parent.parent / "i2c_eeprom" / "winbond.json"
    wrong.parent.mkdir()
    path.rename(wrong)
    errors = validate_paths([tmp_path / "db"])
    assert f"{wrong}: $.family: 'spi-nor' does not belong in folder i2c_eeprom/" in errors[0]


def test_schema_typo_names_the_field_and_suggests(tmp_path: Path) -> None:
    entry = spi_entry()
    entry["page_size_byte"] = entry.pop("page_size_bytes")
    path, errors = errors_for(tmp_path, entry)
    assert (
        f"{path}: $.devices[0].page_size_byte: unknown field (did you mean "
        "'page_size_bytes'?)" in errors
    )
    assert f"{path}: $.devices[0]: missing required field 'page_size_bytes'" in errors


def test_schema_format_errors_explain_the_format(tmp_path: Path) -> None:
    entry = spi_entry()
    entry["ids"]["jedec"] = "ef4018"
    path, message = only_error(tmp_path, entry)
    assert message.startswith(f"{path}: $.devices[0].ids.jedec: 'ef4018' does not match")
    assert "6 uppercase hex digits" in message


def test_bad_json_names_file_line_and_column(tmp_path: Path) -> None:
    path = write_db(tmp_path / "db", spi_entry())
    path.write_text(path.read_text().replace('"part"', "part", 1))
    errors = validate_paths([tmp_path / "db"])
    assert len(errors) == 1 and errors[0].startswith(f"{path}:")
    assert "invalid JSON" in errors[0]


def test_missing_path_is_reported(tmp_path: Path) -> None:
    assert validate_paths([tmp_path / "nope.json"]) == [
        f"{tmp_path / 'nope.json'}: no such file or folder"
    ]


# -- i2c-eeprom -------------------------------------------------------------------


def test_eeprom_size_must_fit_its_addressing(tmp_path: Path) -> None:
    entry = eeprom_entry()
    entry["address_bytes"] = 1  # 32 KiB cannot be reached with 1 address byte
    path, message = only_error(tmp_path, entry)
    assert message == (
        f"{path}: $.devices[0].size_bytes: 32768 does not fit address_bytes 1 and block_bits 0 "
        "(they address at most 256 bytes)"
    )


def test_eeprom_block_bits_must_be_needed(tmp_path: Path) -> None:
    entry = eeprom_entry()
    entry["block_bits"] = 2
    path, message = only_error(tmp_path, entry)
    assert message.startswith(f"{path}: $.devices[0].block_bits: 2 is too many for size_bytes")


def test_eeprom_write_cycle_typ_must_not_exceed_max(tmp_path: Path) -> None:
    entry = eeprom_entry()
    entry["write_cycle_ms_typ"] = 10
    path, message = only_error(tmp_path, entry)
    assert message == f"{path}: $.devices[0].write_cycle_ms_typ: 10 is above write_cycle_ms_max 5"


# -- stm32-uart -------------------------------------------------------------------


def test_flash_layout_must_add_up_to_size(tmp_path: Path) -> None:
    entry = stm32_entry()
    entry["flash_layout"][2]["count"] = 3
    path, message = only_error(tmp_path, entry)
    assert message == (
        f"{path}: $.devices[0].flash_layout: runs add up to 524288 bytes, not size_bytes 1048576"
    )


def test_bootloader_erase_needs_its_command(tmp_path: Path) -> None:
    entry = stm32_entry()
    entry["bootloader"]["erase"] = "legacy"
    path, message = only_error(tmp_path, entry)
    assert message.startswith(
        f"{path}: $.devices[0].bootloader.erase: 'legacy' erase needs command 0x43"
    )


# -- ids across files, overlays, collecting everything ----------------------------------


def test_duplicate_id_across_files_names_both(tmp_path: Path) -> None:
    first = write_db(tmp_path / "db", spi_entry())
    second = first.with_name("winbond2.json")
    other = _fixture_entry("spi_nor/winbond.json", "winbond.w25q64jv")
    doc = {"family": "spi-nor", "vendor": "Winbond", "devices": [other, spi_entry()]}
    second.write_text(json.dumps(doc))
    errors = validate_paths([tmp_path / "db"])
    assert [e for e in errors if "duplicate id" in e] == [
        f"{second}: $.devices[1].id: duplicate id 'winbond.w25q128jv' "
        f"(also in {first} $.devices[0])"
    ]


def test_duplicate_id_in_installed_db_fails_loading(tmp_path: Path) -> None:
    path = write_db(tmp_path / "db", spi_entry(), spi_entry())
    with pytest.raises(DeviceDbError) as err:
        load_database(tmp_path / "db", use_overlay=False)
    assert (
        f"{path}: $.devices[1].id: duplicate id 'winbond.w25q128jv' (also in {path} "
        "$.devices[0])" in str(err.value)
    )


def test_overlay_may_override_an_installed_id(tmp_path: Path) -> None:
    write_db(tmp_path / "db", spi_entry())
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    changed = spi_entry()
    changed["notes"] = "measured"
    (overlay / "fix.json").write_text(
        json.dumps({"family": "spi-nor", "vendor": "Winbond", "devices": [changed]})
    )
    database = load_database(tmp_path / "db", overlay)
    device = database.get("winbond.w25q128jv")
    assert device.notes == "measured"
    assert device.source_file == str(overlay / "fix.json")
    assert device.overrides == str(tmp_path / "db" / "spi_nor" / "winbond.json")


def test_duplicate_inside_the_overlay_is_an_error(tmp_path: Path) -> None:
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    doc = {"family": "spi-nor", "vendor": "Winbond", "devices": [spi_entry(), spi_entry()]}
    (overlay / "fix.json").write_text(json.dumps(doc))
    report = check_installed(FIXTURE, overlay)
    assert report.errors == [
        f"{overlay / 'fix.json'}: $.devices[1].id: duplicate id 'winbond.w25q128jv' "
        f"(also in {overlay / 'fix.json'} $.devices[0])"
    ]


def test_all_errors_are_collected(tmp_path: Path) -> None:
    broken = spi_entry()
    broken["erase"][1]["size_bytes"] = 3000
    broken["voltage_mv"] = [3600, 2700]
    broken["sizebytes"] = 1
    spi_path = write_db(tmp_path / "db", broken)
    other = eeprom_entry()
    other["block_bits"] = 3
    eeprom_path = write_db(tmp_path / "db", other)
    errors = validate_paths([tmp_path / "db"])
    assert [e.split(": ")[:2] for e in errors] == [
        [str(eeprom_path), "$.devices[0].block_bits"],
        [str(spi_path), "$.devices[0].erase[1].size_bytes"],
        [str(spi_path), "$.devices[0].sizebytes"],
        [str(spi_path), "$.devices[0].voltage_mv"],
    ]


def test_load_error_carries_every_message_in_one_line(tmp_path: Path) -> None:
    entry = spi_entry()
    entry["erase"][1]["size_bytes"] = 3000
    entry["voltage_mv"] = [3600, 2700]
    write_db(tmp_path / "db", entry)
    with pytest.raises(DeviceDbInvalidError) as err:
        load_database(tmp_path / "db", use_overlay=False)
    assert len(err.value.errors) == 2
    assert "\n" not in str(err.value)
    assert "(and 1 more; run 'socketeer devices validate')" in str(err.value)


def test_single_file_is_checked_against_the_installed_packages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOCKETEER_DEVICE_DB", str(FIXTURE))
    path = write_db(tmp_path / "db", spi_entry())
    assert validate_paths([path]) == []
    entry = spi_entry()
    entry["packages"] = ["NOPE-8"]
    path = write_db(tmp_path / "db2", entry)
    assert validate_paths([path]) == [
        f"{path}: $.devices[0].packages[0]: unknown package 'NOPE-8' (not in packages.json)"
    ]


def test_the_database_names_exactly_the_registered_algorithms() -> None:
    """devicedb keeps the names as data (it sits below app.algorithms and must not import
    it); this ties them to the registry."""
    from app.algorithms import algorithm_names
    from app.devicedb.families import FAMILY_ALGORITHMS, KNOWN_ALGORITHMS, Family

    assert algorithm_names() == KNOWN_ALGORITHMS
    assert set(FAMILY_ALGORITHMS) == set(Family)


def test_an_algorithm_that_does_not_fit_its_family_is_refused(tmp_path: Path) -> None:
    db = Path(__file__).resolve().parents[1] / "device_db" / "i2c_eeprom" / "microchip.json"
    doc = json.loads(db.read_text())
    doc["devices"] = [dict(doc["devices"][0], id="acme.x", part="X1", algorithm="spi_nor")]
    (tmp_path / "x.json").write_text(json.dumps(doc))
    errors = validate_paths([tmp_path / "x.json"])
    assert any(
        "$.devices[0].algorithm: i2c-eeprom parts are programmed by 'i2c_eeprom'" in e
        for e in errors
    ), errors
