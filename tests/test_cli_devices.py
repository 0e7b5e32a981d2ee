"""`socketeer devices ...` end to end through app.cli.main, on the fixture DB."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.cli import main

FIXTURE = Path(__file__).parent / "data" / "devicedb"


@pytest.fixture(autouse=True)
def fixture_db(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOCKETEER_DEVICE_DB", str(FIXTURE / "installed"))
    monkeypatch.setenv("SOCKETEER_OVERLAY_DB", str(FIXTURE / "overlay"))


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# -- search ------------------------------------------------------------------------------


def test_search_prints_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "devices", "search", "w25q128")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "VENDOR", "PART", "FAMILY", "SIZE", "VOLTAGE", "PACKAGES"]
    assert lines[1].startswith("winbond.w25q128fv") and lines[2].startswith("winbond.w25q128jv")
    assert "16 MiB" in lines[2] and "2.7-3.6 V" in lines[2] and "USON-8-4x4" in lines[2]
    assert lines[-1] == "2 devices"


def test_search_words_and_filters(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "devices", "search", "w25q", "128jv")
    assert code == 0 and out.splitlines()[1].startswith("winbond.w25q128jv")
    code, out, _ = run(
        capsys,
        "devices",
        "search",
        "--family",
        "i2c_eeprom",
        "--vendor",
        "microchip",
        "--package",
        "DIP-8",
        "--json",
    )
    assert code == 0
    assert {d["family"] for d in json.loads(out)} == {"i2c-eeprom"}


def test_search_without_query_lists_everything(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "devices", "search")
    assert code == 0 and out.splitlines()[-1] == "16 devices"


def test_search_json_has_the_entries(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "devices", "search", "16MiB", "--json")
    assert code == 0
    hits = json.loads(out)
    assert hits and all(d["size_bytes"] == 16 << 20 for d in hits)
    assert all("source_file" in d for d in hits)


def test_search_nothing_found_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "devices", "search", "no-such-part")
    assert code == 1 and "no device matches 'no-such-part'" in out


def test_search_bad_family_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "devices", "search", "--family", "nand")
    assert code == 2
    assert err.strip().count("\n") == 0 and "--family 'nand' is not a family" in err


# -- show -------------------------------------------------------------------------------------


def test_show_is_human_readable(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "devices", "show", "winbond.w25q256jv")
    assert code == 0
    assert "size:             32 MiB = 256 Mbit (33,554,432 bytes)" in out
    assert "JEDEC ID:         EF4019" in out
    assert "4 bytes (4-byte mode: b7)" in out
    assert "page program:     typ 0.4 ms, max 3 ms" in out
    erase = out[out.index("erase:") :].splitlines()
    assert erase[1].split() == ["OPCODE", "BLOCK", "TYP", "MAX"]
    assert erase[2].split() == ["0x20", "4", "KiB", "(4,096", "bytes)", "45", "ms", "400", "ms"]
    assert erase[5].split() == ["0xC7", "chip", "40", "s", "200", "s"]
    assert "SOIC-8-208mil    8 pins, 1.27 mm pitch, adapter: SOIC8-208mil ZIF adapter" in out
    assert "source:" in out and "defined in:" in out


def test_show_other_families(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "devices", "show", "st.stm32f40x")
    assert code == 0
    assert "0x08010000  1 x 64 KiB" in out and "product ID:       0x413" in out
    code, out, _ = run(capsys, "devices", "show", "microchip.24lc16b")
    assert code == 0
    assert "1 byte(s) + 3 block bit(s)" in out and "write cycle:      typ 3 ms, max 5 ms" in out


def test_show_tells_an_overlay_entry(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "devices", "show", "winbond.w25q128jv")
    assert code == 0
    assert "overlay/mine.json (user overlay; replaces the entry in" in out
    assert "identify hardware" in out


def test_show_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "devices", "show", "microchip.24lc256", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["id"] == "microchip.24lc256" and doc["page_size_bytes"] == 64


def test_show_unknown_id(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "devices", "show", "24lc25")
    assert code == 2 and out == ""
    assert err == "socketeer: error: unknown device id '24lc25'; did you mean: microchip.24lc256\n"


# -- by-id ------------------------------------------------------------------------------------


def test_by_id_ambiguous(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "devices", "by-id", "ef4018")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("JEDEC ID EF4018: ambiguous: 2 parts share this ID")
    assert [line.split()[0] for line in lines[2:]] == ["winbond.w25q128fv", "winbond.w25q128jv"]


def test_by_id_unique_with_spaced_bytes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "devices", "by-id", "01", "20", "18", "4D", "01")
    assert code == 0
    assert out.splitlines()[0] == "JEDEC ID 0120184D01: Cypress S25FL128S (64 KiB sectors)"


def test_by_id_no_match_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "devices", "by-id", "0xFFFFFF")
    assert code == 1
    assert "JEDEC ID FFFFFF: no device in the database has this ID" in out
    assert "no chip answered" in out


def test_by_id_stm32_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "devices", "by-id", "--bus", "stm32_pid", "0x413", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["found"] and not doc["ambiguous"]
    assert [c["id"] for c in doc["candidates"]] == ["st.stm32f40x"]
    code, out, _ = run(capsys, "devices", "by-id", "--bus", "stm32_pid", "0x999", "--json")
    assert code == 1 and json.loads(out)["found"] is False


def test_by_id_bad_hex_is_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "devices", "by-id", "EF40")
    assert code == 2 and err.startswith("socketeer: error: JEDEC ID 'EF40' must be whole bytes")


# -- validate ------------------------------------------------------------------------------------


def test_validate_installed_and_overlay(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "devices", "validate")
    assert code == 0
    assert out.splitlines()[0] == "valid: 16 devices in 7 files"
    assert "  spi-nor       10 devices from 4 vendors" in out
    assert "  stm32-uart     2 devices from 1 vendor" in out
    assert "(replacing 1 installed entry)" in out


def test_validate_paths(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    good = FIXTURE / "installed" / "spi_nor" / "winbond.json"
    code, out, _ = run(capsys, "devices", "validate", str(good))
    assert code == 0 and out.startswith("valid: 5 devices in 1 file")

    doc = json.loads(good.read_text())
    doc["devices"][0]["erase"][1]["size_bytes"] = 3000
    doc["devices"][2]["voltage_mv"] = [3600, 2700]
    folder = tmp_path / "spi_nor"
    folder.mkdir()
    bad = folder / "winbond.json"
    bad.write_text(json.dumps(doc))
    code, out, err = run(
        capsys, "devices", "validate", str(bad), str(FIXTURE / "installed" / "packages.json")
    )
    assert code == 2
    assert out.splitlines() == [
        f"{bad}: $.devices[0].erase[1].size_bytes: 3000 does not divide size_bytes 16777216",
        f"{bad}: $.devices[2].voltage_mv: min 3600 mV is above max 2700 mV",
    ]
    assert "2 errors" in err


def test_invalid_database_fails_other_commands_in_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "overlay"
    broken.mkdir()
    (broken / "x.json").write_text('{"family": "spi-nor", "vendor": "X", "devices": [{}]}')
    monkeypatch.setenv("SOCKETEER_OVERLAY_DB", str(broken))
    code, out, err = run(capsys, "devices", "search", "w25q")
    assert code == 2 and out == ""
    assert err.count("\n") == 1
    assert err.startswith(
        f"socketeer: error: device database is invalid: {broken / 'x.json'}: $.devices[0]: "
    )


def test_devices_without_action_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "devices")
    assert code == 2 and "search" in err and "by-id" in err
