"""`socketeer job ...` end to end through app.cli.main (no Qt on this path)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from app.cli import main
from app.core.checksums import ChecksumSpec, checksum
from app.core.formats import load_image
from app.core.job import load_job, lock_job, save_job
from app.core.roles import RoleStore

IMAGES = Path(__file__).parent / "data" / "images"
DEVICE = "winbond.w25q128jv"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(autouse=True)
def _own_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The engineer password lives in the test's folder, never the user's config."""
    monkeypatch.setenv("SOCKETEER_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.delenv("SOCKETEER_ENGINEER_PASSWORD", raising=False)
    monkeypatch.delenv("SOCKETEER_NEW_ENGINEER_PASSWORD", raising=False)
    return tmp_path / "config"


@pytest.fixture(autouse=True)
def _loaded_once(database: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """`job new` looks the device up in the (session-wide) installed database."""
    monkeypatch.setattr("app.commands.job.load_database", lambda *a, **k: database)


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "fw" / "optiboot.hex"
    path.parent.mkdir()
    shutil.copy(IMAGES / "optiboot_atmega328.hex", path)
    return path


def new_job(capsys: pytest.CaptureFixture[str], out: Path, image: Path, *extra: str) -> Path:
    code, stdout, err = run(
        capsys, "job", "new", "--device", DEVICE, "--image", str(image), *extra, str(out)
    )
    assert code == 0, err
    assert stdout.startswith(f"wrote {out}: job ")
    return out


def locked_job(capsys: pytest.CaptureFixture[str], tmp_path: Path, image: Path) -> Path:
    path = new_job(capsys, tmp_path / "job.json", image, "--checksum", "crc32")
    loaded = load_job(path)
    assert loaded.job.checksum is not None
    first = {"checksum": loaded.job.checksum.value, "site": 1, "chip_id": "EF4018"}
    save_job(lock_job(loaded.job, loaded.image_bytes, "alice", first), path)
    return path


def test_new_with_defaults_then_show_and_check(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, image: Path
) -> None:
    path = new_job(capsys, tmp_path / "widget.json", image)
    doc = json.loads(path.read_text())
    assert doc["format"] == "socketeer-job/1"
    assert doc["name"] == "widget" and doc["device_id"] == DEVICE
    assert doc["image"]["path"] == "fw/optiboot.hex" and doc["image"]["format"] == "ihex"
    assert doc["operations"]["verify"] and doc["operations"]["erase"]
    assert doc["erase_mode"] == "auto" and doc["checksum"] is None and doc["lock"] is None

    code, out, _ = run(capsys, "job", "show", str(path))
    assert code == 0
    assert f"device:        {DEVICE}" in out
    assert "operations:    identify, erase (auto), program, verify" in out
    assert "not locked" in out

    code, out, _ = run(capsys, "job", "check", str(path))
    assert code == 0 and out.startswith("ok: ") and "not locked" in out


def test_new_with_options(capsys: pytest.CaptureFixture[str], tmp_path: Path, image: Path) -> None:
    path = new_job(
        capsys,
        tmp_path / "j.json",
        image,
        "--name",
        "Board 7",
        "--programmer",
        "sim://?sites=8",
        "--no-verify",
        "--blank-check",
        "--full-erase",
        "--count",
        "25",
        "--checksum",
        "crc32",
        "--checksum-range",
        "0x7E00:0x8000",
        "--notes",
        "notch up",
        "--by",
        "bob",
    )
    job = load_job(path).job
    assert job.name == "Board 7" and job.programmer == "sim://?sites=8"
    assert job.operations["blank_check"] and not job.operations["verify"]
    assert job.erase == "full" and job.count_limit == 25
    assert (job.notes, job.created_by) == ("notch up", "bob")
    spec = ChecksumSpec("crc32", 0xFF, 0x7E00, 0x8000)
    assert job.checksum is not None and job.checksum.range == (0x7E00, 0x8000)
    assert job.checksum.value == checksum(load_image(image).image, spec) == "0x84C25337"

    path = new_job(capsys, tmp_path / "k.json", image, "--no-erase")
    job = load_job(path).job
    assert job.erase == "none" and not job.operations["erase"] and job.erase_mode == "none"

    code, out, _ = run(capsys, "job", "show", "--json", str(path))
    assert code == 0
    shown = json.loads(out)
    assert shown["locked"] is False and shown["job"]["erase_mode"] == "none"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--device", "w25q128jvx"], "unknown device id 'w25q128jvx'; did you mean: winbond."),
        (["--count", "0"], "--count must be at least 1"),
        (["--checksum-fill", "0xFF"], "need --checksum ALGO"),
        (["--base", "zz"], "--base 'zz' is not a number"),
    ],
)
def test_new_refusals(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, image: Path, argv: list, message: str
) -> None:
    args = ["job", "new", "--image", str(image), *argv, str(tmp_path / "j.json")]
    if "--device" not in argv:
        args[2:2] = ["--device", DEVICE]
    code, out, err = run(capsys, *args)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and message in err
    assert not (tmp_path / "j.json").exists()


def test_new_does_not_replace_without_force(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, image: Path
) -> None:
    path = new_job(capsys, tmp_path / "j.json", image)
    code, _, err = run(capsys, "job", "new", "--device", DEVICE, "--image", str(image), str(path))
    assert code == 2 and "exists; use --force" in err
    new_job(capsys, path, image, "--force", "--name", "again")
    assert load_job(path).job.name == "again"


def test_check_locked_ok_and_edited(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, image: Path
) -> None:
    path = locked_job(capsys, tmp_path, image)
    code, out, _ = run(capsys, "job", "check", str(path))
    assert code == 0 and "locked by alice" in out and "the seal match" in out
    code, out, _ = run(capsys, "job", "show", str(path))
    assert code == 0 and "lock:          locked by alice" in out and "chip id EF4018" in out

    doc = json.loads(path.read_text())
    doc["operations"]["verify"] = False
    path.write_text(json.dumps(doc, indent=2))
    code, out, err = run(capsys, "job", "check", str(path))
    assert code == 2 and out == ""
    assert err == (
        f"socketeer: error: {path}: field 'operations.verify' changed since it was locked by"
        f" alice at {doc['lock']['approved_at']}\n"
    )


def test_check_changed_image(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, image: Path
) -> None:
    path = locked_job(capsys, tmp_path, image)
    image.write_bytes(image.read_bytes().replace(b":00000001FF", b":00000001ff"))
    code, _, err = run(capsys, "job", "check", str(path))
    assert code == 2 and err.count("\n") == 1
    assert "image fw/optiboot.hex changed since the job was locked by alice" in err


def test_export_then_check_and_show_the_package(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, image: Path
) -> None:
    path = locked_job(capsys, tmp_path, image)
    pkg = tmp_path / "out" / "job.sjob"
    pkg.parent.mkdir()
    code, out, _ = run(capsys, "job", "export", str(path), str(pkg))
    assert code == 0 and out.startswith(f"wrote {pkg}: locked job")
    image.unlink()  # the package stands alone
    code, out, _ = run(capsys, "job", "check", str(pkg))
    assert code == 0 and "embedded image" in out
    code, out, _ = run(capsys, "job", "show", str(pkg))
    assert code == 0 and "embedded in the package" in out
    code, _, err = run(capsys, "job", "export", str(pkg), str(pkg))
    assert code == 2 and "would replace the job itself" in err


def test_unlock_needs_the_engineer_password(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    image: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = locked_job(capsys, tmp_path, image)
    code, _, err = run(capsys, "job", "unlock", str(path))
    assert code == 2 and "no engineer password is set" in err

    RoleStore().set_password("s3cret!")
    monkeypatch.setenv("SOCKETEER_ENGINEER_PASSWORD", "wrong!")
    code, _, err = run(capsys, "job", "unlock", str(path))
    assert code == 2 and "wrong engineer password" in err
    assert load_job(path).job.locked

    monkeypatch.setenv("SOCKETEER_ENGINEER_PASSWORD", "s3cret!")
    code, out, _ = run(capsys, "job", "unlock", str(path))
    assert code == 0 and out.startswith(f"unlocked {path} (was locked by alice")
    assert not load_job(path).job.locked
    code, out, _ = run(capsys, "job", "unlock", str(path))
    assert code == 0 and "is not locked" in out


def test_unlock_prompts_without_the_environment(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    image: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = locked_job(capsys, tmp_path, image)
    RoleStore().set_password("s3cret!")
    prompts: list[str] = []

    def fake_getpass(prompt: str) -> str:
        prompts.append(prompt)
        return "s3cret!"

    monkeypatch.setattr("getpass.getpass", fake_getpass)
    code, _, _ = run(capsys, "job", "unlock", str(path))
    assert code == 0 and prompts == ["engineer password: "]


def test_unlock_of_an_edited_job_warns_and_a_package_stays_a_package(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    image: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = locked_job(capsys, tmp_path, image)
    pkg = tmp_path / "job.sjob"
    assert run(capsys, "job", "export", str(path), str(pkg))[0] == 0
    doc = json.loads(pkg.read_text())
    doc["notes"] = "edited by hand"
    pkg.write_text(json.dumps(doc))
    RoleStore().set_password("s3cret!")
    monkeypatch.setenv("SOCKETEER_ENGINEER_PASSWORD", "s3cret!")
    code, out, err = run(capsys, "job", "unlock", str(pkg))
    assert code == 0 and "unlocked" in out
    assert "warning:" in err and "field 'notes' changed" in err and "anyway" in err
    loaded = load_job(pkg)
    assert loaded.packaged and not loaded.job.locked and loaded.job.notes == "edited by hand"


def test_password_set_and_change(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOCKETEER_NEW_ENGINEER_PASSWORD", "first-pw")
    code, out, _ = run(capsys, "job", "password")
    assert code == 0 and out.startswith("engineer password set")
    assert RoleStore().verify("first-pw")

    monkeypatch.setenv("SOCKETEER_NEW_ENGINEER_PASSWORD", "second-pw")
    monkeypatch.setenv("SOCKETEER_ENGINEER_PASSWORD", "not-it")
    code, _, err = run(capsys, "job", "password")
    assert code == 2 and "current engineer password is wrong" in err
    monkeypatch.setenv("SOCKETEER_ENGINEER_PASSWORD", "first-pw")
    code, out, _ = run(capsys, "job", "password")
    assert code == 0 and out.startswith("engineer password changed")
    assert RoleStore().verify("second-pw")


def test_bare_job_prints_help_and_bad_file_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run(capsys, "job")
    assert code == 2 and "new" in err and "unlock" in err
    bad = tmp_path / "bad.json"
    bad.write_text("{ not json")
    code, out, err = run(capsys, "job", "show", str(bad))
    assert code == 2 and out == "" and err.count("\n") == 1 and "bad.json:1:3: invalid JSON" in err
