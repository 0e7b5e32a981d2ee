"""Shared fixtures. Qt runs offscreen so the suite needs no display."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

# The fuzz suite (tests/test_fuzz_*.py) runs a bounded number of examples by default;
# `pytest --fuzz-long` runs many more (hypothesis profile "long").
settings.register_profile("default", deadline=None)
settings.register_profile("long", max_examples=5000, deadline=None)

DATA = Path(__file__).parent / "data"


@pytest.fixture
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def database():  # -> app.devicedb.DeviceDatabase
    """The installed device database (the user's overlay is ignored in tests)."""
    from app.devicedb import load_database

    return load_database(use_overlay=False)


@pytest.fixture(scope="session")
def pg_cluster():  # -> tests/pg_cluster.Cluster
    """A throwaway PostgreSQL server for the session; skips where none can be started."""
    from pg_cluster import Cluster, find_bindir

    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg 3 is not installed (pip install 'psycopg[binary]')")
    bindir = find_bindir()
    if bindir is None:
        pytest.skip("no PostgreSQL binaries (initdb): install Debian's postgresql package")
    cluster = Cluster(bindir)
    yield cluster
    cluster.stop()


@pytest.fixture
def pg_url(pg_cluster) -> str:
    """A fresh, empty database on the session's server."""
    return pg_cluster.database()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--ftdi-url", default=None, help="pyftdi URL of a real FTDI programmer")
    parser.addoption("--port", default=None, help="serial port of a real serprog/UART target")
    parser.addoption("--ch341a", default=None, help="ch341a:// URL of a real CH341A programmer")
    parser.addoption("--ch347", default=None, help="ch347:// URL of a real CH347 programmer")
    parser.addoption(
        "--cmsis-dap", default=None, help="cmsis-dap:// URL of a real CMSIS-DAP probe and target"
    )
    parser.addoption("--stlink", default=None, help="stlink:// URL of a real ST-LINK probe")
    parser.addoption(
        "--fuzz-long", action="store_true", help="run the fuzz suite with many more examples"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    hardware = ("--ftdi-url", "--port", "--ch341a", "--ch347", "--cmsis-dap", "--stlink")
    if any(config.getoption(o) for o in hardware):
        return
    skip = pytest.mark.skip(
        reason="hardware test: give --ftdi-url, --port, --ch341a, --ch347, --cmsis-dap or --stlink"
    )
    for item in items:
        if "hardware" in item.keywords:
            item.add_marker(skip)


def pytest_configure(config: pytest.Config) -> None:
    settings.load_profile("long" if config.getoption("--fuzz-long") else "default")
    config.addinivalue_line(
        "markers",
        "db_coverage: counts of the installed device DB (fails until the data is complete)",
    )


@pytest.fixture(autouse=True)
def _isolated_device_db(monkeypatch: pytest.MonkeyPatch, tmp_path_factory) -> None:
    """Tests see the repo's device_db/ and an empty overlay, never the user's own
    overlay folder or a SOCKETEER_DEVICE_DB from the developer's shell."""
    monkeypatch.delenv("SOCKETEER_DEVICE_DB", raising=False)
    empty = tmp_path_factory.getbasetemp() / "empty-overlay"
    monkeypatch.setenv("SOCKETEER_OVERLAY_DB", str(empty))
    # the validated-database cache: the test run's own, shared by its tests
    monkeypatch.setenv("SOCKETEER_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(autouse=True)
def _isolated_user_dirs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Production log, ledger, roles and Qt settings go to the test's own folder, never
    to the developer's real data or config folders."""
    monkeypatch.setenv("SOCKETEER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SOCKETEER_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))


@pytest.fixture
def open_window(qtbot, database, tmp_path: Path):
    """A factory of shown main windows set up as a user would (device, programmer,
    image); every window it made is stopped and shut down after the test."""
    from app.core.formats import save_image
    from app.core.image import MemoryImage
    from app.ui.controller import Controller
    from app.ui.main_window import MainWindow

    made = []

    def make(device: str, programmer: str, data: bytes):  # -> MainWindow
        controller = Controller(database)
        window = MainWindow(controller, remember_layout=False)
        qtbot.addWidget(window)
        window.show()
        image = tmp_path / f"fw{len(made)}.hex"
        save_image(MemoryImage.from_bytes(data), image, "ihex")
        controller.set_device(device)
        controller.set_programmer(programmer)
        controller.load_image(image)
        made.append(window)
        return window

    yield make
    for window in made:
        window.production.set_auto_start(False)
        window.controller.stop()
        window.controller.shutdown()
