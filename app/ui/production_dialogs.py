"""Dialogs for production set-up: serialization, first article and approval."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.engine.first_article import FirstArticleOutcome
from app.engine.serialization import ENCODINGS, POLICIES
from app.ui.production_controller import ProductionController


def _int(text: str) -> int:
    return int(text.strip(), 0)


class SerializationDialog(QDialog):
    """Incremental serial numbers patched at an address (list and command sources are
    set in the job file; see README)."""

    def __init__(self, current: dict[str, Any] | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Serialization")
        cur = current or {}
        self.enabled = QCheckBox("Serialize each device")
        self.enabled.setChecked(current is not None)
        self.address = QLineEdit(hex(cur.get("address", 0)))
        self.start = QLineEdit(str(cur.get("start", 1)))
        self.step = QLineEdit(str(cur.get("step", 1)))
        self.width_box = QSpinBox(minimum=1, maximum=32, value=int(cur.get("width", 8)))
        self.encoding = QComboBox()
        self.encoding.addItems(list(ENCODINGS))
        self.encoding.setCurrentText(cur.get("encoding", "ascii-dec"))
        self.prefix = QLineEdit(cur.get("prefix", ""))
        self.policy = QComboBox()
        self.policy.addItems(list(POLICIES))
        self.policy.setCurrentText(cur.get("policy", "void"))
        self.message = QLabel("")
        self.message.setStyleSheet("color: #b00020")
        form = QFormLayout()
        form.addRow(self.enabled)
        form.addRow("Address", self.address)
        form.addRow("Start", self.start)
        form.addRow("Step", self.step)
        form.addRow("Width", self.width_box)
        form.addRow("Encoding", self.encoding)
        form.addRow("Prefix", self.prefix)
        form.addRow("Failed device's number", self.policy)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.message)
        layout.addWidget(buttons)
        self.config: dict[str, Any] | None = current

    def _accept(self) -> None:
        if not self.enabled.isChecked():
            self.config = None
            self.accept()
            return
        try:
            config = {
                "kind": "incremental",
                "address": _int(self.address.text()),
                "start": _int(self.start.text()),
                "step": _int(self.step.text()),
                "width": self.width_box.value(),
                "encoding": self.encoding.currentText(),
                "policy": self.policy.currentText(),
            }
        except ValueError:
            self.message.setText("address, start and step must be numbers (e.g. 0x1F00, 1000)")
            return
        if self.prefix.text():
            config["prefix"] = self.prefix.text()
        self.config = config
        self.accept()


class FirstArticleDialog(QDialog):
    """Program one part, read it back, compare its checksum; approve and lock on a match."""

    def __init__(self, production: ProductionController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.production = production
        self.setWindowTitle("First article")
        self.resize(520, 300)
        self.site = QSpinBox(minimum=1, maximum=max(1, len(production.controller.sites)))
        self.run_button = QPushButton("Program first article")
        self.run_button.clicked.connect(self._run)
        self.result_label = QLabel("Insert a part and program the first article.")
        self.result_label.setWordWrap(True)
        self.approver = QLineEdit(production.session.operator_name or "")
        self.approver.setPlaceholderText("approving engineer")
        self.approve_button = QPushButton("Approve and lock")
        self.approve_button.setEnabled(False)
        self.approve_button.clicked.connect(self._approve)
        form = QFormLayout()
        form.addRow("Site", self.site)
        form.addRow("", self.run_button)
        form.addRow("Result", self.result_label)
        form.addRow("Approver", self.approver)
        form.addRow("", self.approve_button)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(close)
        production.firstArticleDone.connect(self._show)

    def _run(self) -> None:
        self.approve_button.setEnabled(False)
        if self.production.first_article(self.site.value()):
            self.run_button.setEnabled(False)
            self.result_label.setText("programming…")

    def _show(self, outcome: FirstArticleOutcome) -> None:
        self.run_button.setEnabled(True)
        programmed = outcome.programmed
        serial = f", serial {outcome.serial}" if outcome.serial else ""
        if not programmed.passed:
            text = f"FAILED at {programmed.failed_step}: {programmed.message}"
        elif outcome.checksum is None:
            text = "programmed, but the read-back failed"
        else:
            verdict = "MATCH" if outcome.matches else "MISMATCH"
            text = (
                f"{verdict}: {outcome.checksum_algo} of the part {outcome.checksum},"
                f" expected {outcome.expected}{serial}"
            )
        self.result_label.setText(text)
        self.approve_button.setEnabled(outcome.matches)

    def _approve(self) -> None:
        name = self.approver.text().strip()
        if not name:
            self.result_label.setText("enter the approving engineer's name")
            return
        if self.production.approve_and_lock(name):
            self.result_label.setText(f"job approved and locked by {name}")
            self.approve_button.setEnabled(False)
            self.run_button.setEnabled(False)
