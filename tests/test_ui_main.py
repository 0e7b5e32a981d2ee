"""The workstation window on real widgets (offscreen), driven like a user would."""

from __future__ import annotations

import gc
import time
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTimer

from app.core.formats import save_image
from app.core.image import MemoryImage
from app.ui.controller import Controller
from app.ui.device_selector import DeviceSelector
from app.ui.main_window import MainWindow


@pytest.fixture(autouse=True)
def _own_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


@pytest.fixture
def image_path(tmp_path: Path) -> Path:
    path = tmp_path / "fw.hex"
    data = bytes((i * 7 + 3) % 255 for i in range(48 * 1024))  # no 0xFF: every byte programs
    save_image(MemoryImage.from_bytes(data, 0x1000), path, "ihex")
    return path


@pytest.fixture
def window(qtbot, database):
    controller = Controller(database)
    win = MainWindow(controller)
    qtbot.addWidget(win)
    win.show()
    yield win
    controller.stop()
    controller.shutdown()


def test_selector_finds_a_device_by_typing(qtbot, database) -> None:
    dialog = DeviceSelector(database)
    qtbot.addWidget(dialog)
    qtbot.keyClicks(dialog.search, "w25q128-jv")
    qtbot.waitUntil(lambda: dialog.count.text().startswith("2 of"), timeout=2000)
    assert dialog.current_device().id == "winbond.w25q128jv"  # exact match ranks first
    assert dialog.model.devices[1].id == "winbond.w25q128jv-im"
    assert "EF4018" in dialog.details.toPlainText()
    dialog.family.setCurrentText("i2c-eeprom")
    assert dialog.model.rowCount() == 0
    dialog.search.clear()
    qtbot.waitUntil(lambda: dialog.model.rowCount() > 40, timeout=2000)
    qtbot.mouseClick(dialog.buttons.buttons()[0], Qt.MouseButton.LeftButton)
    assert dialog.selected_id is not None and dialog.selected_id.count(".") >= 1


def test_selector_shows_a_microwire_parts_organisation(qtbot, database) -> None:
    dialog = DeviceSelector(database)
    qtbot.addWidget(dialog)
    dialog.family.setCurrentText("microwire")
    qtbot.keyClicks(dialog.search, "93lc46c")
    qtbot.waitUntil(lambda: dialog.count.text().startswith("2 of"), timeout=2000)
    names = {d.part for d in dialog.model.devices}
    assert names == {"93LC46C (x8)", "93LC46C (x16)"}  # one entry per ORG strapping
    text = dialog.details.toPlainText()
    organisation = (
        "x8 (ORG pin), 7 address bits"
        if "x8" in dialog.current_device().part
        else ("x16 (ORG pin), 6 address bits")
    )
    assert organisation in text and "none (no ID command)" in text


def test_choose_device_through_the_window(qtbot, window, monkeypatch) -> None:
    def fake_exec(dialog: DeviceSelector) -> int:
        qtbot.keyClicks(dialog.search, "w25q32jv")
        qtbot.waitUntil(
            lambda: (
                dialog.current_device() is not None
                and dialog.current_device().id == "winbond.w25q32jv"
            ),
            timeout=2000,
        )
        dialog._accept()
        return 1

    monkeypatch.setattr(DeviceSelector, "exec", fake_exec)
    window.actions_by_name["device"].trigger()
    assert window.controller.device.id == "winbond.w25q32jv"
    assert "W25Q32JV" in window.job.device_label.text()
    assert "W25Q32JV" in window.status_device.text()


def test_four_sites_with_one_fault(qtbot, window, image_path) -> None:
    c = window.controller
    c.set_device("winbond.w25q128jv")
    window.job.programmer.setText("sim://?sites=4&fault=2:verify@0x1800")
    window.job.programmerChosen.emit(window.job.programmer.text())
    assert sorted(window.grid.tiles) == [1, 2, 3, 4]
    window.job.imageChosen.emit(str(image_path))
    assert "CRC-32" in window.job.image_info.text()
    with qtbot.waitSignal(c.runningChanged, timeout=20000, check_params_cb=lambda r: r is False):
        window.actions_by_name["start"].trigger()
    tiles = window.grid.tiles
    assert [tiles[s].state for s in (1, 2, 3, 4)] == ["pass", "fail", "pass", "pass"]
    assert tiles[2].failed == 1 and tiles[1].passed == 1
    assert "verify failed at 0x1800" in tiles[2].result_label.text()
    assert tiles[2].counts_label.text() == "0 pass · 1 fail · 0%"
    assert "Pass 3  Fail 1" in window.status_totals.text()
    messages = [window.log_model.record(i).message for i in range(window.log_model.rowCount())]
    assert any("site 2: verify failed at 0x1800" in m for m in messages)
    assert sum("PASS" in m for m in messages) == 3
    window.site_log.show_site(2)
    assert all(
        window.log_model.record(
            window.site_log.proxy.mapToSource(window.site_log.proxy.index(r, 0)).row()
        ).site
        == 2
        for r in range(window.site_log.proxy.rowCount())
    )
    assert window.stats.summary()["total"] == 4
    # the run is over: the statistics pane shows its last results at once
    assert not window.stats.redraw_pending
    assert "<b>4</b> devices" in window.stats.summary_label.text()


def test_window_stays_responsive_during_a_run(qtbot, window, image_path) -> None:
    """The GUI thread does no long work of its own during an 8-site real-time run.

    Judged by the GUI thread's own CPU time between two ticks of a 10 ms timer (what
    the window's code costs, whatever else the machine is doing: a full repaint of the
    plots is ~40 ms offscreen, well under the 100 ms a user notices), plus a wall-clock
    bound that only real blocking (waiting on a site or a lock) could exceed: a loaded
    CI machine delays the timer, but not by a second.
    """
    c = window.controller
    c.set_device("winbond.w25x40cl")
    c.set_programmer("sim://?sites=8&timing=typ")
    c.load_image(image_path)
    qtbot.wait(200)  # the new grid's first layout and paint are not part of the run
    work: list[float] = []  # GUI-thread CPU seconds between ticks
    gaps: list[float] = []  # wall seconds between ticks
    last = [time.monotonic(), time.thread_time()]

    def probe() -> None:
        now, cpu = time.monotonic(), time.thread_time()
        gaps.append(now - last[0])
        work.append(cpu - last[1])
        last[:] = [now, cpu]

    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(probe)
    # The whole suite's leftovers make a full garbage collection slow; that pause would
    # be the test's, not the window's, so collect and freeze them first.
    gc.collect()
    gc.freeze()
    try:
        timer.start()
        last[:] = [time.monotonic(), time.thread_time()]
        with qtbot.waitSignal(
            c.runningChanged, timeout=30000, check_params_cb=lambda r: r is False
        ):
            c.start()
        timer.stop()
    finally:
        gc.unfreeze()
    assert all(t.state == "pass" for t in window.grid.tiles.values())
    assert len(gaps) > 20, "the run was too short to probe"
    assert max(work) < 0.100, f"the GUI thread worked {max(work) * 1000:.0f} ms without a break"
    assert max(gaps) < 1.0, f"GUI thread blocked for {max(gaps) * 1000:.0f} ms"


def test_stop_cancels_the_run(qtbot, window, image_path) -> None:
    c = window.controller
    c.set_device("winbond.w25x40cl")
    c.set_programmer("sim://?sites=2&timing=typ")
    c.load_image(image_path)
    with qtbot.waitSignal(c.runningChanged, timeout=30000, check_params_cb=lambda r: r is False):
        c.start()
        qtbot.waitUntil(lambda: "program" in window.grid.tiles[1].phase_label.text(), timeout=10000)
        window.actions_by_name["stop"].trigger()
    assert all(
        "stopped by the operator" in t.result_label.text() for t in window.grid.tiles.values()
    )


def test_toolbar_shortcuts() -> None:
    from PySide6.QtGui import QKeySequence

    expected = {
        "start": "F5",
        "stop": "Esc",
        "detect": "F6",
        "read": "F7",
        "verify": "F8",
        "erase": "F9",
    }
    from app.ui import main_window

    names = {n for n, _t, _k in main_window.TOOLBAR}
    assert names >= set(expected)
    for name, key in expected.items():
        assert dict((n, k) for n, _t, k in main_window.TOOLBAR)[name] == key
        assert QKeySequence(key).toString()


def test_errors_are_words_in_the_status_bar(qtbot, window) -> None:
    window.controller.start()
    assert "choose a device first" in window.statusBar().currentMessage()
    window.controller.set_programmer("nosuch://")
    assert "unknown programmer scheme" in window.statusBar().currentMessage()


def test_read_shows_the_part_in_the_buffer_and_compares(qtbot, window, image_path) -> None:
    c = window.controller
    c.set_device("winbond.w25x10cl")
    c.set_programmer("sim://?sites=1")
    c.load_image(image_path)
    with qtbot.waitSignal(c.bufferRead, timeout=10000) as blocker:
        window.actions_by_name["read"].trigger()
    site, data = blocker.args
    assert site == 1 and len(data) == 128 * 1024
    assert window.buffer.comparison is not None
    assert window.buffer.comparison.count > 0  # a blank part differs from the image


def test_read_on_an_in_system_site_needs_two_agreeing_reads(qtbot, window) -> None:
    """The window's Read on a clip (in-system site) reads twice and shows where a flaky
    contact made the reads differ; nothing reaches the buffer then."""
    c = window.controller
    c.set_device("winbond.w25x10cl")
    reads: list[bytes] = []
    c.bufferRead.connect(lambda _site, data: reads.append(data))

    def messages() -> list[str]:
        model = window.log_model
        return [model.record(row).message for row in range(model.rowCount())]

    c.set_programmer("sim://?sites=1&connection=in-system&fault=1:flaky")
    with qtbot.waitSignal(c.runningChanged, timeout=20000, check_params_cb=lambda r: not r):
        window.actions_by_name["read"].trigger()
    assert window.grid.tile(1).state == "fail"
    assert any("two reads disagree" in m and "reseat the clip" in m for m in messages())
    assert reads == []
    c.set_programmer("sim://?sites=1&connection=in-system")
    with qtbot.waitSignal(c.bufferRead, timeout=10000):
        window.actions_by_name["read"].trigger()
    assert len(reads) == 1 and any("(two reads agree)" in m for m in messages())


def test_log_model_stays_bounded_and_filters() -> None:
    from app.ui.log_model import LogFilter, LogModel, LogRecord

    model = LogModel(capacity=1000)
    proxy = LogFilter()
    proxy.setSourceModel(model)
    for i in range(2500):
        model.append(
            LogRecord(float(i), i % 4 + 1, "error" if i % 10 == 0 else "info", f"line {i}")
        )
    assert model.rowCount() <= 1000
    assert model.record(model.rowCount() - 1).message == "line 2499"
    proxy.set_min_level("error")
    assert all(
        model.record(proxy.mapToSource(proxy.index(r, 0)).row()).level == "error"
        for r in range(proxy.rowCount())
    )
    proxy.set_min_level("info")
    proxy.set_site(2)
    proxy.set_text("LINE 24")
    rows = [
        model.record(proxy.mapToSource(proxy.index(r, 0)).row()) for r in range(proxy.rowCount())
    ]
    assert rows and all(r.site == 2 and "line 24" in r.message for r in rows)


def test_dock_layout_is_remembered(qtbot, database) -> None:
    first = MainWindow(Controller(database))
    qtbot.addWidget(first)
    first.show()
    first.docks["stats"].hide()
    first.close()
    second = MainWindow(Controller(database))
    qtbot.addWidget(second)
    second.show()
    assert second.docks["stats"].isHidden()
    assert not second.docks["job"].isHidden()
    second.close()


def test_swd_sites_in_the_window(qtbot, window, tmp_path) -> None:
    """An STM32 on simulated SWD sites: the tiles say how each site is wired, a
    protected part fails with the reason and the others pass, with the image at the
    part's own addresses (flash at 0x08000000)."""
    c = window.controller
    c.set_device("st.stm32f10x-md")
    url = "sim://?sites=3&connect=under-reset&fault=3:protected"
    window.job.programmer.setText(url)
    window.job.programmerChosen.emit(url)
    tiles = window.grid.tiles
    assert sorted(tiles) == [1, 2, 3]
    connection = tiles[1].connection_label.text()
    assert connection == "SWD · in-system · board power · connect under reset"
    path = tmp_path / "fw.hex"
    save_image(MemoryImage.from_bytes(bytes(range(256)) * 40, 0x0800_0000), path, "ihex")
    window.job.imageChosen.emit(str(path))
    with qtbot.waitSignal(c.runningChanged, timeout=20000, check_params_cb=lambda r: r is False):
        window.actions_by_name["start"].trigger()
    assert [tiles[s].state for s in (1, 2, 3)] == ["pass", "pass", "fail"]
    assert "readout protection (RDP) is active" in tiles[3].result_label.text()
    site = c.programmer.sites[0]
    site = getattr(site, "board_site", site)  # a station's site wraps the board's
    assert bytes(site.mcu.flash[:256]) == bytes(range(256))
