"""The engineer password is set twice, with its rules shown and the text showable."""

from __future__ import annotations

from PySide6.QtWidgets import QDialogButtonBox, QLineEdit

from app.core.roles import MIN_PASSWORD_LENGTH
from app.ui.password_dialog import NewPasswordDialog


def test_only_two_equal_entries_that_meet_the_rules_are_accepted(qtbot) -> None:
    dialog = NewPasswordDialog("First start")
    qtbot.addWidget(dialog)
    ok = dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)
    assert str(MIN_PASSWORD_LENGTH) in dialog.rules.text()
    assert not ok.isEnabled()
    qtbot.keyClicks(dialog.first, "abc")
    assert not ok.isEnabled() and "more character" in dialog.problem.text()
    qtbot.keyClicks(dialog.first, "def-gh")
    assert not ok.isEnabled() and dialog.problem.text() == "type it again to confirm"
    qtbot.keyClicks(dialog.second, "abcdef-gx")
    assert not ok.isEnabled() and dialog.problem.text() == "the two entries differ"
    dialog.second.clear()
    qtbot.keyClicks(dialog.second, "abcdef-gh")
    assert ok.isEnabled() and dialog.problem.text() == ""
    assert dialog.password == "abcdef-gh"


def test_the_text_can_be_shown(qtbot) -> None:
    dialog = NewPasswordDialog("First start")
    qtbot.addWidget(dialog)
    assert dialog.first.echoMode() == QLineEdit.EchoMode.Password
    dialog.show_text.setChecked(True)
    assert dialog.first.echoMode() == dialog.second.echoMode() == QLineEdit.EchoMode.Normal
