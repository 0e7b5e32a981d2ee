"""The distribution carries every package and its run-time data; the CLI names its version.

.ci/check-install proves the built wheel outside the checkout; these tests catch the
mistakes that would break it early (a new subpackage not listed in pyproject.toml, a data
folder found through the checkout instead of importlib.resources).
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from importlib import metadata, resources
from pathlib import Path

import pytest

from app.cli import main
from app.core import package_data

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]


def test_every_code_package_is_listed_for_the_build() -> None:
    found = {
        ".".join(init.parent.relative_to(REPO).parts)
        for init in (REPO / "app").rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    listed = set(SETUPTOOLS["packages"])
    assert found - listed == set(), "add these to [tool.setuptools] packages"
    assert listed - found == set(SETUPTOOLS["package-dir"]), "listed but not in app/"


@pytest.mark.parametrize(
    ("package", "folder"),
    [
        ("app.device_db", "device_db"),
        ("app.resources", "resources"),
        ("app.linux", "packaging/linux"),
    ],
)
def test_data_folders_map_to_the_top_level_ones(package: str, folder: str) -> None:
    assert SETUPTOOLS["package-dir"][package] == folder
    assert (REPO / folder / "__init__.py").is_file()
    assert package_data.data_dir(package) == Path(str(resources.files(package)))


def test_every_device_db_file_matches_a_package_data_pattern() -> None:
    patterns = SETUPTOOLS["package-data"]["app.device_db"]
    root = REPO / "device_db"
    files = [p for p in root.rglob("*") if p.is_file() and p.suffix in (".json", ".md")]
    assert files
    for path in files:
        rel = path.relative_to(root)
        assert any(rel.match(pattern) for pattern in patterns), f"{rel} is left out of the wheel"


def test_every_resource_file_matches_a_package_data_pattern() -> None:
    root = REPO / "resources"
    patterns = SETUPTOOLS["package-data"]["app.resources"]
    for path in root.rglob("*"):
        if path.is_file() and path.suffix != ".py" and "__pycache__" not in path.parts:
            rel = path.relative_to(root)
            assert any(rel.match(pattern) for pattern in patterns), f"{rel} is left out"


def test_a_missing_data_package_is_a_clear_error() -> None:
    with pytest.raises(package_data.PackageDataMissing, match="reinstall"):
        package_data.data_dir("app.no_such_data")


def test_version_comes_from_the_package_metadata(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    out = capsys.readouterr().out
    assert out == f"socketeer {metadata.version('socketeer')}\n"
    assert re.fullmatch(r"socketeer \d+\.\d+\.\d+\S*\n", out)


def test_python_dash_m_app_is_the_same_entry_point(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "app", "devices", "show", "winbond.w25q128jv"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "W25Q128JV" in done.stdout
