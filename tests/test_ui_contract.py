"""The window under the station's contract: whatever fails inside a production cycle,
each started site ends with a result on its tile and is released (Start works again)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from app.ui.main_window import MainWindow

SERIAL = {
    "kind": "incremental",
    "address": 0x3F0,
    "start": 100,
    "width": 4,
    "encoding": "ascii-dec",
    "policy": "void",
    "limit": 101,  # two numbers for four sites
}


@pytest.fixture
def window(open_window) -> MainWindow:
    return open_window(
        "winbond.w25x10cl",
        "sim://?sites=4&timing=instant",
        bytes((i * 31) % 253 for i in range(4096)),
    )


def _raiser(exc: Exception) -> Callable[..., None]:
    def fail(*_args: object, **_kwargs: object) -> None:
        raise exc

    return fail


def _start_and_wait(qtbot, window: MainWindow) -> None:
    controller = window.controller
    with qtbot.waitSignal(
        controller.runningChanged, timeout=20000, check_params_cb=lambda r: r is False
    ):
        window.production.start()


def test_serials_running_out_release_the_sites_with_a_clear_failure(
    qtbot, window: MainWindow, tmp_path: Path
) -> None:
    production = window.production
    assert production.set_serialization(SERIAL)
    assert production.save_job(tmp_path / "job.json")
    _start_and_wait(qtbot, window)
    tiles = window.grid.tiles
    states = sorted(tile.state for tile in tiles.values())
    assert states == ["fail", "fail", "pass", "pass"]
    failed = [tile for tile in tiles.values() if tile.state == "fail"]
    assert all("no serial numbers left" in tile.result_label.text() for tile in failed)
    assert not window.controller.running
    # the sites are free: Start again runs (and fails clearly: the numbers are gone)
    _start_and_wait(qtbot, window)
    assert all(tile.state == "fail" for tile in tiles.values())


@pytest.mark.parametrize(
    ("where", "break_it"),
    [
        ("serial allocation", lambda p: setattr(p.ledger, "reserve", _raiser(RuntimeError("x")))),
        ("production log", lambda p: setattr(p.log, "append", _raiser(OSError("read-only")))),
        ("socket wear", lambda p: setattr(p.wear, "insert", _raiser(OSError("disk full")))),
    ],
)
def test_a_failing_step_ends_every_site_with_a_result(
    qtbot, window: MainWindow, tmp_path: Path, where: str, break_it: Callable
) -> None:
    production = window.production
    assert production.set_serialization({**SERIAL, "limit": None})
    assert production.save_job(tmp_path / "job.json")
    assert production.prepared is not None
    break_it(production.prepared.production)
    _start_and_wait(qtbot, window)
    tiles = window.grid.tiles
    assert all(tile.state == "error" for tile in tiles.values()), where  # not the parts
    assert all(tile.result_label.text() for tile in tiles.values())
    records = [window.log_model.record(i) for i in range(window.log_model.rowCount())]
    for site in tiles:
        assert any(r.site == site and r.level == "error" for r in records), site
    assert not window.controller.running
