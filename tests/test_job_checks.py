"""A job is checked against its device when it is checked, opened for production or set
up in the window: a serialization that every device would fail is refused up front."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from app.cli import main
from app.core.errors import SocketeerError
from app.core.formats import save_image
from app.core.image import MemoryImage
from app.core.job import load_job
from app.devicedb import load_database
from app.engine.job_setup import prepare_job

SERIAL = {"kind": "incremental", "address": 0x100, "width": 8, "encoding": "ascii-dec",
          "start": 1, "policy": "void"}  # fmt: skip


def make_job(tmp_path: Path, capsys, **serial: object) -> Path:
    image = tmp_path / "fw.hex"
    save_image(MemoryImage.from_bytes(bytes(range(256)) * 4), image, "ihex")
    path = tmp_path / "job.json"
    assert main(["job", "new", "--device", "winbond.w25q128jv", "--image", str(image),
                 "--by", "erin", str(path)]) == 0  # fmt: skip
    doc = json.loads(path.read_text())
    doc["serialization"] = {**SERIAL, **serial}
    path.write_text(json.dumps(doc))
    capsys.readouterr()
    return path


@pytest.mark.parametrize(
    ("serial", "message"),
    [
        ({"address": 0x1000000}, "serialization.address: the serial's bytes [0x1000000, 0x1000008)"
                                 " lie outside the Winbond W25Q128JV [0x0, 0x1000000)"),
        ({"address": 0xFFFFFC}, "[0xFFFFFC, 0x1000004) lie outside"),
        ({"width": 0}, "serialization.width: must be >= 1"),
    ],
)  # fmt: skip
def test_a_serialization_the_part_cannot_hold_is_refused_everywhere(
    tmp_path: Path, capsys, serial: dict, message: str
) -> None:
    path = make_job(tmp_path, capsys, **serial)
    assert main(["job", "check", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and str(path) in err
    loaded = load_job(path)
    database = load_database()
    with pytest.raises(SocketeerError, match=re.escape(message)):
        prepare_job(loaded, database.get(loaded.job.device_id), database, operator="o")


def test_a_serialization_inside_the_part_is_fine(tmp_path: Path, capsys) -> None:
    assert main(["job", "check", str(make_job(tmp_path, capsys))]) == 0
