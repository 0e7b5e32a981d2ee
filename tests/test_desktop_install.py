"""Linux desktop integration: the shipped files are valid, `install-desktop` puts them
where the freedesktop.org specifications say, starting this installation, and removes
exactly what it installed."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from app.cli import main
from app.core import desktop_install as desktop
from app.core.package_data import linux_dir

APP = desktop.APP_ID


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (CI installs it)")
    return path


def test_the_desktop_entry_is_valid() -> None:
    done = subprocess.run(
        [tool("desktop-file-validate"), str(linux_dir() / f"{APP}.desktop")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0 and not done.stdout.strip(), done.stdout


def test_the_appstream_metainfo_is_valid() -> None:
    done = subprocess.run(
        [tool("appstreamcli"), "validate", "--no-net", str(linux_dir() / f"{APP}.metainfo.xml")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", header[16:24])


def test_install_for_the_user_then_uninstall(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    foreign = tmp_path / "applications" / "other.desktop"
    foreign.parent.mkdir(parents=True)
    foreign.write_text("[Desktop Entry]\n")
    assert main(["install-desktop"]) == 0
    entry = (tmp_path / "applications" / f"{APP}.desktop").read_text()
    exec_value = next(line for line in entry.splitlines() if line.startswith("Exec="))[5:]
    assert Path(exec_value.split()[0].strip('"')).exists()  # this installation, not PATH
    assert (tmp_path / "metainfo" / f"{APP}.metainfo.xml").is_file()
    assert (tmp_path / "icons/hicolor/scalable/apps" / f"{APP}.svg").is_file()
    for n in desktop.ICON_SIZES:
        assert png_size(tmp_path / f"icons/hicolor/{n}x{n}/apps/{APP}.png") == (n, n)
    assert "udev" in capsys.readouterr().out  # the user install says how to get USB access
    assert main(["install-desktop", "--uninstall"]) == 0
    assert not (tmp_path / "applications" / f"{APP}.desktop").exists()
    assert not list((tmp_path / "icons").rglob(f"{APP}.*"))
    assert foreign.is_file()  # nothing else is touched


def test_system_install_with_udev_rules(tmp_path: Path) -> None:
    prefix, udev = tmp_path / "usr", tmp_path / "udev"
    argv = ["install-desktop", "--system", "--prefix", str(prefix), "--udev-dir", str(udev)]
    assert main(argv) == 0
    assert (udev / desktop.UDEV_RULES).read_bytes() == (
        linux_dir() / desktop.UDEV_RULES
    ).read_bytes()
    assert (prefix / "share/applications" / f"{APP}.desktop").is_file()


def test_dry_run_writes_nothing(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert main(["install-desktop", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.count("would write") == 3 + len(desktop.ICON_SIZES)
    assert not any(tmp_path.iterdir())


def test_an_unwritable_target_is_one_clear_line(tmp_path: Path, capsys) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    argv = ["install-desktop", "--system", "--prefix", str(blocker), "--udev-dir", str(tmp_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(blocker) in err and "sudo socketeer" in err


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["/opt/socketeer/bin/socketeer"], "/opt/socketeer/bin/socketeer"),
        (["/home/a b/venv/bin/socketeer"], '"/home/a b/venv/bin/socketeer"'),
        (["/usr/bin/python3", "-m", "app"], "/usr/bin/python3 -m app"),
        (['/x/$y"z'], '"/x/\\$y\\"z"'),
    ],
)
def test_exec_lines_are_quoted_as_the_specification_says(argv: list[str], line: str) -> None:
    assert desktop.exec_line(argv) == line
