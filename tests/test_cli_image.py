"""`socketeer image ...` end to end through app.cli.main (no Qt on this path)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app.cli import main
from app.core.formats import load_image, save_image
from app.core.image import MemoryImage

IMAGES = Path(__file__).parent / "data" / "images"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_info_json_matches_manifest(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "image", "info", "--json", str(IMAGES / "optiboot_atmega328.hex"))
    assert code == 0
    doc = json.loads(out)
    assert doc["format"] == "ihex"
    assert doc["segments"] == [["0x7E00", "0x7FE0"], ["0x7FFE", "0x8000"]]
    assert doc["start_address"] == "0x7E00"
    assert doc["crc32_filled_0xFF"] == "0x84C25337"


def test_info_text_lists_segments_half_open(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "image", "info", str(IMAGES / "composite.s37"))
    assert code == 0
    assert "[0x1FF00, 0x204DC)" in out and "srec" in out and "0xAF358E67" in out


@pytest.mark.parametrize(
    ("name", "line"),
    [
        ("bad_checksum.hex", 3),
        ("html_saved_as.hex", 1),
        ("truncated.hex", 4),
        ("bad_hexdigit.s28", 4),
    ],
)
def test_bad_input_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str], name: str, line: int
) -> None:
    code, out, err = run(capsys, "image", "info", str(IMAGES / "bad" / name))
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and f"{name}:{line}:" in err and "Traceback" not in err


def test_missing_file_and_bad_options(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "image", "info", str(tmp_path / "nope.hex"))
    assert code == 2 and "no such file" in err
    src = str(IMAGES / "composite.s19")
    code, _, err = run(capsys, "image", "checksum", src, "--range", "0x10:0x5")
    assert code == 2 and "--range" in err
    code, _, err = run(capsys, "image", "convert", src, str(tmp_path / "x.hex"), "--fill", "300")
    assert code == 2 and "--fill" in err
    code, _, err = run(capsys, "image", "checksum", src, "--algo", "md5")
    assert code == 2 and "md5" in err


@pytest.mark.parametrize("fmt", ["ihex", "srec", "ti-txt"])
def test_convert_round_trips(capsys: pytest.CaptureFixture[str], tmp_path: Path, fmt: str) -> None:
    src = IMAGES / "composite_linear.hex"
    out_file = tmp_path / "out.img"
    code, _, _ = run(capsys, "image", "convert", str(src), str(out_file), "--to", fmt)
    assert code == 0
    assert load_image(out_file).image == load_image(src).image
    assert load_image(out_file).format == fmt


def test_convert_to_bin_fills_gaps_and_honours_range_and_offset(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    src = IMAGES / "optiboot_atmega328.hex"
    image = load_image(src).image
    whole = tmp_path / "whole.bin"
    assert run(capsys, "image", "convert", str(src), str(whole))[0] == 0
    assert whole.read_bytes() == image.read(0x7E00, 0x8000, 0xFF)
    part = tmp_path / "part.bin"
    argv = [
        "image",
        "convert",
        str(src),
        str(part),
        "--offset=-0x7E00",
        "--range",
        "0:1K",
        "--fill",
        "0x00",
    ]
    assert run(capsys, *argv)[0] == 0
    assert part.read_bytes() == image.read(0x7E00, 0x7E00 + 1024, 0x00)


def test_checksum_modes(capsys: pytest.CaptureFixture[str]) -> None:
    src = str(IMAGES / "composite_segment.hex")
    code, out, _ = run(
        capsys,
        "image",
        "checksum",
        src,
        "--json",
        "--algo",
        "crc32",
        "--algo",
        "sha256",
        "--range",
        "0:0x204DC",
    )
    doc = json.loads(out)
    assert code == 0 and doc["mode"] == "filled"
    assert doc["checksums"]["crc32"] == "0x4C1AF15B"
    assert doc["checksums"]["sha256"].startswith("9183ec41")
    code, out, _ = run(capsys, "image", "checksum", src)
    assert code == 0 and "0xAF358E67" in out and "data only" in out
    code, out, _ = run(capsys, "image", "checksum", src, "--exclude", "0:0x1770")
    assert code == 0 and "0xAF358E67" not in out


def test_no_arguments_opens_the_gui(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.commands import gui

    opened = []
    monkeypatch.setattr(gui, "cmd_gui", lambda args: opened.append(args) or 0)
    assert main([]) == 0
    assert len(opened) == 1 and opened[0].programmer is None


def test_console_script_module_entry() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "app.cli", "image", "info", str(IMAGES / "composite.s28")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "srec" in proc.stdout


@pytest.mark.skipif(shutil.which("srec_cat") is None, reason="srec_cat (srecord) not installed")
@pytest.mark.parametrize("fmt", ["ihex", "srec", "ti-txt"])
def test_srec_cat_reads_what_we_write(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, fmt: str
) -> None:
    """SRecord, an independent implementation, must read our output to the same bytes."""
    src = IMAGES / "composite_linear.hex"
    ours = tmp_path / "ours.out"
    assert run(capsys, "image", "convert", str(src), str(ours), "--to", fmt)[0] == 0
    srec_name = {"ihex": "-intel", "srec": "-motorola", "ti-txt": "-ti-txt"}[fmt]
    binary = tmp_path / "srec.bin"
    subprocess.run(
        [
            "srec_cat",
            str(ours),
            srec_name,
            "-fill",
            "0xFF",
            "-over",
            str(ours),
            srec_name,
            "-o",
            str(binary),
            "-binary",
        ],
        check=True,
        capture_output=True,
    )
    image = load_image(src).image
    assert binary.read_bytes() == image.read(0, image.max_address, 0xFF)


# -- files that are not what they should be: one line naming the path, never a traceback --


def _fifo(tmp: Path) -> Path:
    path = tmp / "pipe.hex"
    os.mkfifo(path)
    return path


def _loop(tmp: Path) -> Path:
    (tmp / "a.hex").symlink_to(tmp / "b.hex")
    (tmp / "b.hex").symlink_to(tmp / "a.hex")
    return tmp / "a.hex"


def _huge(tmp: Path) -> Path:
    path = tmp / "huge.bin"
    with path.open("wb") as stream:  # sparse: no disk space used
        stream.truncate((1 << 30) + 1)
    return path


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX special files")
@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_fifo, "not a regular file"),
        (lambda tmp: Path("/dev/zero"), "not a regular file"),
        (_loop, "too many symbolic links"),
        (_huge, "is more than the 1,073,741,824 bytes"),
        (lambda tmp: tmp, "is a directory"),
    ],
)
def test_special_inputs_are_refused_in_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, make, message: str
) -> None:
    path = make(tmp_path)
    code, _, err = run(capsys, "image", "info", str(path))
    assert code == 2
    assert err.count("\n") == 1 and message in err and str(path) in err


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("missing/dir/x.hex", "folder {tmp}/missing/dir does not exist"),
        ("file.bin/x.hex", "{tmp}/file.bin is a file, not a folder"),
    ],
)
def test_unwritable_outputs_are_refused_in_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, target: str, message: str
) -> None:
    source = tmp_path / "file.bin"
    source.write_bytes(bytes(range(64)))
    code, _, err = run(capsys, "image", "convert", str(source), str(tmp_path / target))
    assert code == 2
    assert err.startswith(f"socketeer: error: cannot write {tmp_path / target}: ")
    assert message.format(tmp=tmp_path) in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.bin"]  # nothing half-written


def test_a_truncated_s_record_file_is_warned_about_and_refused_for_programming(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """`head -n 165 composite.s19 > half.s19`: srec_cat warns; so do we, and programming
    refuses it unless told otherwise."""
    lines = (IMAGES / "composite.s19").read_text().splitlines(keepends=True)
    half = tmp_path / "half.s19"
    half.write_text("".join(lines[:165]))
    code, out, err = run(capsys, "image", "info", str(half))
    assert code == 0 and "data bytes" in out
    assert "warning:" in err and "may be truncated" in err and str(half) in err
    code, out, _ = run(capsys, "image", "info", str(half), "--json")
    assert json.loads(out)["warnings"]
    argv = ["program", "--device", "winbond.w25q80dv", "--programmer", "sim://?timing=instant"]
    code, _, err = run(capsys, *argv, str(half))
    assert code == 2 and "--allow-incomplete" in err
    assert run(capsys, *argv, "--allow-incomplete", str(half))[0] == 0
    code, _, err = run(capsys, "image", "info", str(IMAGES / "composite.s19"))
    assert code == 0 and "warning" not in err


def test_a_binary_spanning_gigabytes_is_refused_not_allocated(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    image = MemoryImage()
    image.add(0, b"\x01")
    image.add(0xFFFF_FFF0, b"\x02")
    save_image(image, tmp_path / "huge.hex", "ihex")
    code, _, err = run(
        capsys, "image", "convert", str(tmp_path / "huge.hex"), str(tmp_path / "o.bin")
    )
    assert code == 2 and "--range" in err and "4,294,967,281 bytes" in err
    assert not (tmp_path / "o.bin").exists()
    assert run(capsys, "image", "convert", str(tmp_path / "huge.hex"), str(tmp_path / "o.bin"),
               "--range", "0:0x100")[0] == 0  # fmt: skip
    assert (tmp_path / "o.bin").read_bytes() == b"\x01" + b"\xff" * 0xFF


def test_a_truncated_image_makes_no_job_and_runs_no_production_unless_told(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.core.roles import RoleStore

    lines = (IMAGES / "composite.s19").read_text().splitlines(keepends=True)
    half = tmp_path / "half.s19"
    half.write_text("".join(lines[:165]))
    job = tmp_path / "job.json"
    new = ["job", "new", "--device", "winbond.w25q80dv", "--image", str(half), str(job)]
    code, _, err = run(capsys, *new)
    assert code == 2 and "may be truncated" in err and "--allow-incomplete" in err
    assert not job.exists()
    assert run(capsys, *new, "--allow-incomplete")[0] == 0
    RoleStore().set_password("engineer-pw")
    monkeypatch.setenv("SOCKETEER_ENGINEER_PASSWORD", "engineer-pw")
    argv = ["run", str(job), "--allow-unlocked", "--programmer", "sim://?timing=instant"]
    code, _, err = run(capsys, *argv)
    assert code == 2 and "--allow-incomplete" in err
    assert run(capsys, *argv, "--allow-incomplete")[0] == 0
