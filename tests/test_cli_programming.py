"""`socketeer detect|read|program|verify|erase|blank-check` through app.cli.main."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.cli import main
from app.core.formats import load_image, save_image
from app.core.image import MemoryImage


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def image_file(tmp_path: Path) -> Path:
    path = tmp_path / "fw.hex"
    data = bytes(b if b != 0xFF else 0 for b in os.urandom(40_000))
    save_image(MemoryImage.from_bytes(data, 0x1000), path, "ihex")
    return path


def test_program_eight_sites_reports_site_3_verify_failure(
    capsys: pytest.CaptureFixture[str], image_file: Path
) -> None:
    code, out, err = run(
        capsys,
        "program",
        "--device",
        "winbond.w25q128jv",
        "--programmer",
        "sim://?sites=8&fault=3:verify@0x2000",
        str(image_file),
    )
    assert code == 1, err
    assert "program: 7 passed, 1 failed" in out
    line = next(ln for ln in out.splitlines() if ln.startswith("site 3: FAIL"))
    assert "at verify" in line and "0x2000" in line and "expected 0x" in line
    assert sum(1 for ln in out.splitlines() if "PASS: programmed and verified" in ln) == 7


def test_program_json_document(capsys: pytest.CaptureFixture[str], image_file: Path) -> None:
    code, out, _ = run(
        capsys,
        "program",
        "--device",
        "winbond.w25q128jv",
        "--programmer",
        "sim://?sites=2&fault=2:contact",
        "--json",
        str(image_file),
    )
    doc = json.loads(out)
    assert code == 1
    assert doc["passed"] == 1 and doc["failed"] == 1
    site2 = doc["sites"][1]
    assert site2["failed_step"] == "identify" and "bad contact" in site2["message"]
    assert set(doc["sites"][0]["timings"]) >= {"identify", "erase", "program", "verify"}


def test_link_drop_exits_3(capsys: pytest.CaptureFixture[str], image_file: Path) -> None:
    code, out, _ = run(
        capsys,
        "program",
        "--device",
        "winbond.w25q128jv",
        "--programmer",
        "sim://?sites=1&fault=1:link-drop",
        str(image_file),
    )
    assert code == 3 and "LINK-LOST" in out


def test_bad_inputs_exit_2(
    capsys: pytest.CaptureFixture[str], image_file: Path, tmp_path: Path
) -> None:
    code, _, err = run(capsys, "program", "--device", "nope.chip", str(image_file))
    assert code == 2 and "nope.chip" in err
    code, _, err = run(
        capsys,
        "program",
        "--device",
        "winbond.w25q128jv",
        "--programmer",
        "sim://?sites=2&fault=9:verify",
        str(image_file),
    )
    assert code == 2 and "site 9" in err
    big = tmp_path / "big.bin"
    big.write_bytes(b"\0" * (2 * 1024 * 1024))
    code, _, err = run(capsys, "program", "--device", "winbond.w25x10cl", str(big))
    assert code == 2 and "outside" in err
    code, _, err = run(
        capsys,
        "program",
        "--device",
        "winbond.w25q128jv",
        "--programmer",
        "nosuch://x",
        str(image_file),
    )
    assert code == 2 and "unknown programmer scheme" in err


def test_read_verify_erase_blank_check(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out_file = tmp_path / "dump.bin"
    code, out, _ = run(
        capsys,
        "read",
        "--device",
        "winbond.w25x10cl",
        "--programmer",
        "sim://?sites=2",
        "--site",
        "2",
        str(out_file),
    )
    assert code == 0 and out_file.stat().st_size == 131072
    assert out_file.read_bytes() == b"\xff" * 131072
    code, out, _ = run(
        capsys,
        "blank-check",
        "--device",
        "winbond.w25x10cl",
        "--programmer",
        "sim://?sites=2&fault=2:erase-fail",
    )
    assert code == 0, out  # a fresh part is blank; erase-fail only shows when erasing
    code, out, _ = run(
        capsys,
        "erase",
        "--device",
        "winbond.w25x10cl",
        "--programmer",
        "sim://?sites=2&fault=2:erase-fail@0x40",
    )
    assert code == 1 and "did not erase: 0x40" in out
    code, out, _ = run(
        capsys,
        "verify",
        "--device",
        "winbond.w25x10cl",
        "--programmer",
        "sim://?sites=1",
        str(out_file),
        "--format",
        "bin",
    )
    assert code == 0
    hex_out = tmp_path / "range.hex"
    code, _, _ = run(
        capsys, "read", "--device", "winbond.w25x10cl", "--range", "0x100:0x200", str(hex_out)
    )
    assert code == 0
    assert [(s.start, s.end) for s in load_image(hex_out).image.segments] == [(0x100, 0x200)]


def test_detect_names_parts_and_reports_ambiguity(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "detect",
        "--programmer",
        "sim://?sites=3&chip=winbond.w25q128jv&fault=3:empty",
        "--json",
    )
    doc = json.loads(out)
    site1 = doc["sites"][0]
    assert site1["jedec"].startswith("EF4018")
    assert "winbond.w25q128jv" in site1["candidates"]
    assert site1["ambiguous"] == (len(site1["candidates"]) > 1)
    assert site1["sfdp"]["size_bytes"] == 16 * 1024 * 1024
    assert doc["sites"][2]["summary"] == "socket empty"
    assert code == 1


def test_adapter_that_does_not_fit_is_refused(
    capsys: pytest.CaptureFixture[str], image_file: Path
) -> None:
    code, out, _ = run(
        capsys,
        "program",
        "--device",
        "winbond.w25q128jv",
        "--programmer",
        "sim://?sites=2&adapter=TSSOP8 clamshell",
        str(image_file),
    )
    assert code == 1
    assert out.count("FAIL at socket: adapter 'TSSOP8 clamshell' does not fit W25Q128JV") == 2


def test_a_closed_pipe_changes_neither_the_parts_nor_the_exit_code(tmp_path: Path) -> None:
    """`socketeer program ... | head -1`: the reader goes away after one line."""
    image = tmp_path / "fw.bin"
    image.write_bytes(bytes(range(256)) * 64)
    argv = [
        sys.executable, "-m", "app", "program", "--device", "winbond.w25x40cl",
        "--programmer", "sim://?sites=4&timing=instant&fault=2:verify@0x10", str(image),
    ]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()  # like head -1
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 1  # site 2 failed verify
    assert "Traceback" not in err and "internal error" not in err
