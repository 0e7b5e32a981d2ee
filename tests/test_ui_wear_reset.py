"""Station > Reset socket wear…: an engineer resets a site's insertion count, with a reason;
the log says so; an operator cannot."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtWidgets import QDialog

from app.engine.socket_wear import SocketWear
from app.ui.main_window import MainWindow
from app.ui.wear_dialog import WearResetDialog


@pytest.fixture
def window(open_window) -> MainWindow:
    return open_window("winbond.w25x10cl", "sim://?sites=3", bytes(range(256)) * 4)


def produce(qtbot, window: MainWindow, sites: list[int]) -> None:
    """Production cycles on ``sites``: each counts one insertion into its socket."""
    window.production.start(sites)
    qtbot.waitUntil(lambda: not window.controller.running, timeout=20000)


def key(window: MainWindow, site: int) -> str:
    station = window.controller.station
    assert station is not None
    return station.socket_key(site)


def messages(window: MainWindow) -> list[str]:
    model = window.log_model
    return [model.record(i).message for i in range(model.rowCount())]


def test_engineer_resets_one_sites_count(
    qtbot, window: MainWindow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert window.production.save_job(tmp_path / "job.json")
    produce(qtbot, window, [1, 2])
    produce(qtbot, window, [2])
    with SocketWear() as wear:
        assert (wear.count(key(window, 1)), wear.count(key(window, 2))) == (1, 2)
    shown: dict[int, str] = {}

    def answer(dialog: WearResetDialog) -> int:
        shown.update({site: box.text() for site, box in dialog.boxes.items()})
        assert not dialog.boxes[3].isEnabled()  # nothing counted there: nothing to reset
        dialog.boxes[2].setChecked(True)
        dialog.by.setText("erin")
        dialog.reason.setText("socket replaced")
        dialog._accept()
        return dialog.result()

    monkeypatch.setattr(WearResetDialog, "exec", answer)
    window.actions_by_name["wear_reset"].trigger()

    assert shown == {1: "1 insertion", 2: "2 insertions", 3: "no insertions counted"}
    with SocketWear() as wear:
        assert (wear.count(key(window, 1)), wear.count(key(window, 2))) == (1, 0)
        (reset,) = wear.resets()
    assert (reset.key, reset.by, reset.previous_count, reset.reason) == (
        key(window, 2),
        "erin",
        2,
        "socket replaced",
    )
    assert "socket wear of site 2 reset by erin: 2 -> 0 insertions (socket replaced)" in (
        messages(window)
    )


def test_the_dialog_insists_on_a_site_a_name_and_a_reason(
    qtbot, window: MainWindow, monkeypatch: pytest.MonkeyPatch
) -> None:
    with SocketWear() as wear:
        wear.insert(key(window, 1))
    seen: list[str] = []

    def answer(dialog: WearResetDialog) -> int:
        dialog.by.setText("")
        for step in (
            lambda: None,
            lambda: dialog.boxes[1].setChecked(True),
            lambda: dialog.by.setText("erin"),
        ):
            step()
            dialog._accept()
            seen.append(dialog.message.text())
        return QDialog.DialogCode.Rejected  # then the engineer cancels

    monkeypatch.setattr(WearResetDialog, "exec", answer)
    window.actions_by_name["wear_reset"].trigger()
    assert seen == [
        "choose at least one site",
        "enter who replaced the socket",
        "enter the reason (it is recorded)",
    ]
    assert SocketWear().count(key(window, 1)) == 1


def test_an_operator_cannot_reset_socket_wear(
    qtbot, window: MainWindow, monkeypatch: pytest.MonkeyPatch
) -> None:
    with SocketWear() as wear:
        wear.insert(key(window, 1))
    opened: list[WearResetDialog] = []
    monkeypatch.setattr(WearResetDialog, "exec", lambda dialog: opened.append(dialog) or 0)
    production = window.production
    production.session.store.set_password("right-pw")
    assert production.operator_mode("olga")
    action = window.actions_by_name["wear_reset"]
    assert not action.isEnabled()
    action.trigger()
    window.production_menus.reset_socket_wear()  # even when called directly
    assert opened == []
    assert "not allowed in operator mode" in window.statusBar().currentMessage()
    assert SocketWear().count(key(window, 1)) == 1
    assert production.engineer_mode("right-pw")
    assert action.isEnabled()
