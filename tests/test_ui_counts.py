"""What a site tile and the session counts say after each kind of result: production
results count; service operations, operator stops and empty sockets are shown for what
they are and do not touch counts, yield or statistics."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QPushButton

from app.core.formats import save_image
from app.core.image import MemoryImage
from app.engine.results import DeviceResult
from app.ui.main_window import MainWindow
from app.ui.site_grid import FOCUS_BORDER_WIDTH, FOCUS_COLOUR, SiteTile


def result(action: str, status: str, step: str | None = None, message: str = "m") -> DeviceResult:
    return DeviceResult(1, action, "winbond.w25x40cl", status, message, failed_step=step)


@pytest.mark.parametrize(
    ("outcome", "state", "word", "counted"),
    [
        (result("program", "pass"), "pass", "PASS", (1, 0)),
        (result("program", "fail", "verify"), "fail", "FAIL", (0, 1)),
        (result("program", "link-lost", "program"), "fail", "LINK LOST", (0, 1)),
        (result("program", "error", "serial"), "error", "ERROR", (0, 1)),
        (result("program", "cancelled", "erase"), "aborted", "STOPPED", (0, 0)),
        (result("program", "fail", "socket"), "empty", "EMPTY", (0, 0)),
        (result("read", "pass"), "service", "READ OK", (0, 0)),
        (result("verify", "pass"), "service", "VERIFIED", (0, 0)),
        (result("erase", "pass"), "service", "ERASED", (0, 0)),
        (result("blank-check", "pass"), "service", "BLANK", (0, 0)),
        (result("identify", "pass"), "service", "ID OK", (0, 0)),
        (result("verify", "fail", "verify"), "fail", "FAIL", (0, 0)),
    ],
)
def test_a_tile_says_what_happened_and_counts_only_production(
    qtbot, outcome: DeviceResult, state: str, word: str, counted: tuple[int, int]
) -> None:
    tile = SiteTile(1)
    qtbot.addWidget(tile)
    tile.set_progress("erase", 84, 100)
    tile.show_result(outcome, outcome.message)
    assert (tile.state, tile.state_label.text()) == (state, word)
    assert (tile.passed, tile.failed) == counted
    if not outcome.passed:  # no stale "erase 84%"
        assert tile.progress.value() == 0 and "84" not in tile.progress.text()
    expected = "–" if counted == (0, 0) else f"{100 * counted[0] // sum(counted)}%"
    assert tile.counts_label.text().endswith(expected)


@pytest.fixture
def window(open_window) -> MainWindow:
    return open_window(
        "winbond.w25x40cl",
        "sim://?sites=4&timing=typ&fault=3:verify@0x20",
        bytes((i * 3) % 251 for i in range(4096)),
    )


def _run(qtbot, window: MainWindow, start) -> None:
    with qtbot.waitSignal(
        window.controller.runningChanged, timeout=20000, check_params_cb=lambda r: r is False
    ):
        start()


def test_service_operations_and_stops_leave_counts_and_statistics_alone(
    qtbot, window: MainWindow
) -> None:
    c = window.controller
    _run(qtbot, window, lambda: window.production.start())
    assert window.stats.summary()["total"] == 4
    assert window.status_totals.text() == "Pass 3  Fail 1 (75.0%)"
    before = {s: (t.passed, t.failed) for s, t in window.grid.tiles.items()}
    _run(qtbot, window, lambda: c.start([3], action="read"))
    assert window.grid.tile(3).state_label.text() == "READ OK"
    _run(qtbot, window, lambda: c.start(action="verify"))
    _run(qtbot, window, lambda: c.start(action="erase"))
    assert {s: (t.passed, t.failed) for s, t in window.grid.tiles.items()} == before
    # an operator's stop in the middle of a run: STOPPED, not FAIL, and not counted
    with qtbot.waitSignal(c.runningChanged, timeout=20000, check_params_cb=lambda r: not r):
        window.production.start()
        qtbot.waitUntil(lambda: window.grid.tile(1).state == "busy", timeout=5000)
        window.actions_by_name["stop"].trigger()
    assert {t.state for t in window.grid.tiles.values()} == {"aborted"}
    assert all(t.state_label.text() == "STOPPED" for t in window.grid.tiles.values())
    assert {s: (t.passed, t.failed) for s, t in window.grid.tiles.items()} == before
    assert window.stats.summary()["total"] == 4
    assert window.status_totals.text() == "Pass 3  Fail 1 (75.0%)"


def test_a_bad_programmer_url_is_explained_at_the_field_and_the_last_one_kept(
    qtbot, window: MainWindow
) -> None:
    panel = window.job
    panel.programmer.setText("sim://?sites=abc")
    qtbot.mouseClick(panel.findChild(QPushButton, "connect"), Qt.MouseButton.LeftButton)
    assert panel.programmer_problem.isVisible()
    assert "sites" in panel.programmer_problem.text() and "abc" in panel.programmer_problem.text()
    assert "b00020" in panel.programmer.styleSheet()
    assert panel.programmer.text() == "sim://?sites=abc"  # kept, to be corrected
    assert sorted(window.grid.tiles) == [1, 2, 3, 4]  # the last good programmer is still open
    assert window.controller.programmer_url.startswith("sim://?sites=4")
    panel.programmer.setText("sim://?sites=2")
    qtbot.keyClick(panel.programmer, Qt.Key.Key_Return)
    assert not panel.programmer_problem.isVisible() and panel.programmer.styleSheet() == ""
    assert sorted(window.grid.tiles) == [1, 2]


def test_start_says_why_it_cannot_start(qtbot, window: MainWindow, monkeypatch) -> None:
    controller = window.controller
    controller.shutdown()  # no programmer open at all
    controller.programmer_problem = "unknown programmer scheme 'xyz'"
    window.actions_by_name["start"].trigger()
    message = window.statusBar().currentMessage()
    assert message == "cannot start: no programmer: unknown programmer scheme 'xyz'"


def test_erase_asks_first_naming_the_sites(qtbot, window: MainWindow, monkeypatch) -> None:
    from PySide6.QtWidgets import QMessageBox

    asked: list[str] = []

    def answer(reply):
        def question(_parent, _title, text, *_args):
            asked.append(text)
            return reply

        return question

    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.Cancel))
    window.actions_by_name["erase"].trigger()
    assert "sites 1, 2, 3, 4" in asked[0] and "Winbond W25X40CL" in asked[0]
    assert not window.controller.running
    assert all(t.state == "idle" for t in window.grid.tiles.values())
    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.Yes))
    _run(qtbot, window, lambda: window.actions_by_name["erase"].trigger())
    assert {t.state_label.text() for t in window.grid.tiles.values()} == {"ERASED"}


@pytest.mark.parametrize(("size", "sites"), [((1024, 700), 16), ((1024, 700), 4)])
def test_small_screens_give_the_site_grid_the_space(
    qtbot, window: MainWindow, size: tuple[int, int], sites: int
) -> None:
    window.controller.set_programmer(f"sim://?sites={sites}&timing=instant")
    window.resize(*size)
    qtbot.waitUntil(lambda: window.width() == size[0], timeout=2000)
    qtbot.wait(50)
    scroll = window.centralWidget()
    grid = window.grid
    assert grid.width() <= scroll.viewport().width()
    assert grid.height() <= scroll.viewport().height(), "the grid scrolls"
    assert scroll.width() >= size[0] * 0.45  # the operator's grid has the most room
    assert grid.compact == (sites == 16)
    for tile in grid.tiles.values():
        assert tile.isVisible() and tile.state_label.isVisible()
        assert tile.progress.isVisible() and tile.result_label.isVisible()
        assert tile.counts_label.isVisible() != grid.compact


def test_the_site_grid_works_from_the_keyboard(qtbot, window: MainWindow) -> None:
    grid = window.grid
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=2000)
    first = grid.tile(1)
    first.setFocus()
    qtbot.waitUntil(first.hasFocus, timeout=2000)
    assert window.selected_site == 1
    qtbot.keyClick(first, Qt.Key.Key_Right)
    assert grid.tile(2).hasFocus() and window.selected_site == 2
    qtbot.keyClick(grid.tile(2), Qt.Key.Key_Left)
    assert first.hasFocus()
    assert first.border == (FOCUS_COLOUR, FOCUS_BORDER_WIDTH)  # the focus is visible
    edge = first.grab().toImage().pixelColor(2, first.height() // 2)
    assert edge.name() == FOCUS_COLOUR and grid.tile(2).border[1] < FOCUS_BORDER_WIDTH
    with qtbot.waitSignal(
        window.controller.runningChanged, timeout=20000, check_params_cb=lambda r: not r
    ):
        qtbot.keyClick(first, Qt.Key.Key_Return)  # starts this site only
    assert first.state == "pass"
    assert all(grid.tile(s).state == "idle" for s in (2, 3, 4))


def test_the_device_selector_works_from_the_keyboard(qtbot, database) -> None:
    from app.ui.device_selector import DeviceSelector

    dialog = DeviceSelector(database)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.activateWindow()
    dialog.search.setFocus()
    qtbot.keyClicks(dialog.search, "w25q128jv")
    qtbot.waitUntil(lambda: dialog.model.rowCount() >= 2, timeout=2000)
    first = dialog.current_device()
    qtbot.keyClick(dialog.search, Qt.Key.Key_Down)  # moves the results, typing goes on
    second = dialog.current_device()
    assert first is not None and second is not None and second.id != first.id
    assert dialog.search.text() == "w25q128jv"  # the search text is untouched
    qtbot.keyClick(dialog.search, Qt.Key.Key_Return)
    assert dialog.result() == dialog.DialogCode.Accepted and dialog.selected_id == second.id


def test_detect_and_hardware_diagnosis_in_the_window(qtbot, window: MainWindow, monkeypatch):
    """The engine's detect (naming the part, no device chosen) and its hardware diagnosis
    are shown in the window as the CLI shows them."""
    from PySide6.QtWidgets import QMessageBox

    from app.engine import hw_diagnosis
    from app.engine.hw_diagnosis import UsbScan
    from app.ui.production_menu import ProductionMenus

    c = window.controller
    c.device = None  # nothing chosen: Detect names the parts from the database
    with qtbot.waitSignal(c.runningChanged, timeout=10000, check_params_cb=lambda r: not r):
        window.actions_by_name["detect"].trigger()
    messages = [window.log_model.record(i).message for i in range(window.log_model.rowCount())]
    # EF3013: the W25X40CL and the older W25X40 share it (both are named)
    assert sum("detect: ID EF3013" in m and "Winbond W25X40CL" in m for m in messages) == 4
    monkeypatch.setattr(hw_diagnosis, "scan_ftdi", lambda: UsbScan([], "no libusb", "none"))
    monkeypatch.setattr(hw_diagnosis, "scan_serial_ports", lambda: [])
    shown: list[QMessageBox] = []
    monkeypatch.setattr(ProductionMenus, "show", staticmethod(shown.append))
    window.actions_by_name["hw_diagnosis"].trigger()
    assert shown[0].text() == "1 problem(s) found"
    assert "PROBLEM: libusb backend: no libusb" in shown[0].detailedText()


def test_a_bad_image_is_explained_at_the_image_field(qtbot, window: MainWindow, tmp_path) -> None:
    bad = tmp_path / "bad.hex"
    bad.write_text(":10000000ZZ\n")
    assert not window.controller.load_image(bad)
    panel = window.job
    assert "b00020" in panel.image_path.styleSheet()
    assert "bad.hex:1" in panel.image_path.toolTip() and "bad.hex:1" in panel.image_info.text()
    good = tmp_path / "good.hex"
    save_image(MemoryImage.from_bytes(bytes(16)), good, "ihex")
    assert window.controller.load_image(good)
    assert panel.image_path.styleSheet() == "" and "b00020" not in panel.image_info.text()
