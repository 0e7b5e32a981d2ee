"""Setting the engineer password: asked twice, with its rules, the text showable.

A typo in a single hidden field would lock the station's settings behind a password
nobody knows; so the dialog accepts only two equal entries that meet the rules, and
says what is missing while the engineer types.
"""

from __future__ import annotations

from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from app.core.roles import MIN_PASSWORD_LENGTH


class NewPasswordDialog(QDialog):
    def __init__(self, intro: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Engineer password")
        self.intro = QLabel(intro)
        self.intro.setWordWrap(True)
        self.rules = QLabel(
            f"At least {MIN_PASSWORD_LENGTH} characters. Operators need this password to"
            " change any setting, approve a job or leave operator mode."
        )
        self.rules.setWordWrap(True)
        self.first = QLineEdit(echoMode=QLineEdit.EchoMode.Password)
        self.second = QLineEdit(echoMode=QLineEdit.EchoMode.Password)
        self.show_text = QCheckBox("Show the password")
        self.show_text.toggled.connect(self._show)
        self.problem = QLabel("")
        self.problem.setObjectName("problem")
        self.problem.setStyleSheet("color: #b00020;")
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        form = QFormLayout()
        form.addRow("New password", self.first)
        form.addRow("Type it again", self.second)
        layout = QVBoxLayout(self)
        for widget in (self.intro, self.rules):
            layout.addWidget(widget)
        layout.addLayout(form)
        layout.addWidget(self.show_text)
        layout.addWidget(self.problem)
        layout.addWidget(self.buttons)
        for field in (self.first, self.second):
            field.textChanged.connect(self._check)
        self._check()

    @property
    def password(self) -> str:
        return self.first.text()

    def _show(self, on: bool) -> None:
        mode = QLineEdit.EchoMode.Normal if on else QLineEdit.EchoMode.Password
        self.first.setEchoMode(mode)
        self.second.setEchoMode(mode)

    def _check(self) -> None:
        first, second = self.first.text(), self.second.text()
        if len(first) < MIN_PASSWORD_LENGTH:
            problem = f"{MIN_PASSWORD_LENGTH - len(first)} more character(s) needed"
        elif first != second:
            problem = "the two entries differ" if second else "type it again to confirm"
        else:
            problem = ""
        self.problem.setText(problem)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(not problem)
