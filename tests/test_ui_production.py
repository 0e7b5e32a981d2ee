"""The first-article flow and an operator's auto-start run, on real widgets."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt

from app.core.job import load_job
from app.core.roles import Role
from app.engine.production_log import ProductionLog
from app.ui.main_window import MainWindow
from app.ui.production_dialogs import FirstArticleDialog

SERIAL = {
    "kind": "incremental",
    "address": 0x3F0,
    "start": 7000,
    "step": 1,
    "width": 8,
    "encoding": "ascii-dec",
    "policy": "void",
}


@pytest.fixture
def window(open_window) -> MainWindow:
    return open_window(
        "winbond.w25x10cl",
        "sim://?sites=8&handler=0.05&fault=4:verify@0x40",
        bytes((i * 29) % 253 for i in range(8192)),
    )


def test_engineer_first_article_then_operator_auto_start(qtbot, window, tmp_path: Path) -> None:
    production = window.production
    assert production.role == Role.ENGINEER  # first start: no password yet
    assert production.set_serialization(SERIAL)
    production.count_limit = 12
    job_path = tmp_path / "job.json"
    assert production.save_job(job_path)
    unlocked_copy = tmp_path / "unlocked.json"
    shutil.copy(job_path, unlocked_copy)

    dialog = FirstArticleDialog(production, window)
    qtbot.addWidget(dialog)
    with qtbot.waitSignal(production.firstArticleDone, timeout=20000):
        qtbot.mouseClick(dialog.run_button, Qt.MouseButton.LeftButton)
    assert "MATCH" in dialog.result_label.text()
    assert "serial 00007000" in dialog.result_label.text()
    assert dialog.approve_button.isEnabled()
    dialog.approver.setText("erin")
    qtbot.mouseClick(dialog.approve_button, Qt.MouseButton.LeftButton)
    locked = load_job(job_path).job
    assert locked.locked and locked.lock.approved_by == "erin"
    assert locked.lock.first_article.checksum == locked.checksum.value

    production.session.store.set_password("s3cret-pw")
    # the first article's read-back cycle winds down on its worker thread; a job opened
    # before that is refused ("stop the running sites"), which is not what this tests
    qtbot.waitUntil(lambda: not window.controller.running, timeout=20000)
    assert production.operator_mode("olga")
    assert not window.job.isEnabled()
    assert not window.actions_by_name["detect"].isEnabled()
    assert not window.actions_by_name["first_article"].isEnabled()
    assert "Operator olga" in window.status_role.text()
    assert not production.open_job(unlocked_copy)
    assert "only locked jobs" in window.statusBar().currentMessage()
    assert production.open_job(job_path), window.statusBar().currentMessage()

    with qtbot.waitSignal(
        production.countChanged,
        timeout=60000,
        check_params_cb=lambda good, remaining: remaining == 0,
    ):
        window.actions_by_name["auto_start"].setChecked(True)
    qtbot.waitUntil(lambda: not window.controller.running, timeout=20000)
    records = list(ProductionLog().records())
    passed = [r for r in records if r.result == "pass"]
    assert len(passed) == 12
    assert len({r.serial for r in passed}) == 12
    assert {r.operator for r in passed} == {"engineer", "olga"}  # first article: the engineer
    assert any(r.site == 4 and r.result == "fail" for r in records)
    assert "0 to go" in window.status_count.text()


def test_engineer_mode_needs_the_password(qtbot, window, monkeypatch) -> None:
    production = window.production
    production.session.store.set_password("right-pw")
    production.operator_mode("olga")
    from PySide6.QtWidgets import QInputDialog

    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("wrong", True))
    window.actions_by_name["engineer"].trigger()
    assert production.role == Role.OPERATOR
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("right-pw", True))
    window.actions_by_name["engineer"].trigger()
    assert production.role == Role.ENGINEER
    messages = [window.log_model.record(i).message for i in range(window.log_model.rowCount())]
    assert any("role: engineer -> operator (olga)" in m for m in messages)
    assert any("wrong password" in m for m in messages)
    assert any("role: operator -> engineer" in m for m in messages)


def test_log_export_from_the_window(qtbot, window, tmp_path: Path) -> None:
    production = window.production
    assert production.save_job(tmp_path / "job.json")
    production.start([1, 2])
    qtbot.waitUntil(lambda: not window.controller.running, timeout=20000)
    count = window.production_menus.write_log(tmp_path / "log.csv")
    assert count == 2
    assert (tmp_path / "log.csv").read_text().count("\n") == 3


def test_first_start_sets_the_engineer_password(qtbot, window, monkeypatch) -> None:
    from app.ui.password_dialog import NewPasswordDialog
    from app.ui.production_menu import ProductionMenus

    store = window.production.session.store
    assert not store.has_password()
    typed: list[tuple[str, str]] = [("short", "short"), ("long-enough", "long-enuogh")]

    def ask(dialog: NewPasswordDialog) -> bool:  # what the engineer types, then OK
        first, second = typed.pop(0)
        dialog.first.setText(first)
        dialog.second.setText(second)
        ok = dialog.buttons.button(dialog.buttons.StandardButton.Ok)
        return ok.isEnabled()  # a disabled OK cannot be pressed: like Cancel

    monkeypatch.setattr(ProductionMenus, "ask", staticmethod(ask))
    window.production_menus.first_start()  # too short: refused
    window.production_menus.first_start()  # a typo in the second entry: refused
    assert not store.has_password()
    typed.append(("long-enough", "long-enough"))
    window.production_menus.first_start()
    assert store.verify("long-enough")


def test_every_operation_set_in_the_window_is_saved_in_the_job(
    qtbot, window, tmp_path: Path
) -> None:
    panel = window.job
    for key in ("unprotect", "skip_matching", "blank_check"):
        box = panel.checks[key]  # clicked on its tick box, as a user does
        qtbot.mouseClick(box, Qt.MouseButton.LeftButton, pos=QPoint(8, box.height() // 2))
    assert window.production.save_job(tmp_path / "job.json")
    ops = load_job(tmp_path / "job.json").job.operations
    assert ops["unprotect"] and ops["skip_matching"] and ops["blank_check"]
    assert window.production.prepared is not None
    spec = window.production.prepared.production.spec
    assert spec.unprotect and spec.skip_matching and spec.blank_check
    assert spec.adapters is not None  # the window checks adapters like the CLI


def test_the_first_article_dialog_works_from_the_keyboard(qtbot, window, tmp_path: Path) -> None:
    production = window.production
    assert production.save_job(tmp_path / "job.json")
    dialog = FirstArticleDialog(production, window)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.activateWindow()
    qtbot.waitUntil(dialog.isActiveWindow, timeout=2000)
    chain = []
    widget = dialog.site
    for _ in range(12):  # Tab reaches each control in a useful order
        chain.append(widget)
        widget = widget.nextInFocusChain()
    assert chain.index(dialog.run_button) < chain.index(dialog.approver)
    assert dialog.approve_button in chain
    dialog.run_button.setFocus()
    with qtbot.waitSignal(production.firstArticleDone, timeout=20000):
        qtbot.keyClick(dialog.run_button, Qt.Key.Key_Space)  # a focused button presses
    assert "MATCH" in dialog.result_label.text()
