"""Overlay entries that once hung or crashed every command that loads the database are
refused by validation, naming the file and the JSON path, and nothing hangs."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from app.cli import main

DB = Path(__file__).resolve().parents[1] / "device_db"


def entry(folder: str, file: str, index: int = 0, **changes: object) -> dict:
    doc = json.loads((DB / folder / file).read_text(encoding="utf-8"))
    found = dict(doc["devices"][index])
    found.update(id=f"acme.{found['id'].split('.')[1]}-x", part=f"{found['part']}X", **changes)
    return {"family": doc["family"], "vendor": doc["vendor"], "devices": [found]}


HOSTILE = {
    "block_bits_1e20": (entry("i2c_eeprom", "microchip.json", block_bits=1e20), "block_bits"),
    "float_size": (entry("i2c_eeprom", "microchip.json", size_bytes=256.0), "size_bytes"),
    "erase_list": (
        entry("stm32_uart", "st.json", bootloader={"erase": ["x"], "version": "0x31"}),
        "bootloader.erase",
    ),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_overlay_entries_are_refused_quickly_and_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch, name: str
) -> None:
    doc, field = HOSTILE[name]
    (tmp_path / f"{name}.json").write_text(json.dumps(doc))
    monkeypatch.setenv("SOCKETEER_OVERLAY_DB", str(tmp_path))
    t0 = time.monotonic()
    assert main(["devices", "validate"]) == 2  # bad input
    out, err = capsys.readouterr()
    assert f"{name}.json: $.devices[0].{field}" in out + err
    assert main(["devices", "search", "24lc"]) == 2  # a command that loads the database
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{name}.json" in err and "Traceback" not in err
    assert time.monotonic() - t0 < 10
