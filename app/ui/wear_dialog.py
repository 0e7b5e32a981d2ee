"""The dialog of Station > Reset socket wear: which sites' sockets were replaced, by whom
and why. It only asks; app.engine.socket_wear does and records the reset."""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True)
class SiteWear:
    """One site as the dialog offers it; ``counted`` False: no insertion counted yet."""

    site: int
    key: str
    insertions: int
    counted: bool


class WearResetDialog(QDialog):
    def __init__(self, sites: list[SiteWear], by: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Reset socket wear")
        self.sites = {s.site: s for s in sites}
        self.boxes: dict[int, QCheckBox] = {}
        form = QFormLayout()
        for s in sites:
            plural = "" if s.insertions == 1 else "s"
            text = f"{s.insertions} insertion{plural}" if s.counted else "no insertions counted"
            box = QCheckBox(text)
            box.setEnabled(s.counted)
            box.setToolTip(s.key)
            self.boxes[s.site] = box
            form.addRow(f"Site {s.site}", box)
        self.by = QLineEdit(by)
        self.by.setPlaceholderText("engineer's name")
        self.reason = QLineEdit()
        self.reason.setPlaceholderText("e.g. socket replaced")
        form.addRow("Reset by", self.by)
        form.addRow("Reason", self.reason)
        self.message = QLabel("")
        self.message.setStyleSheet("color: #b00020")
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Sites whose socket was replaced (their counts go to 0):"))
        layout.addLayout(form)
        layout.addWidget(self.message)
        layout.addWidget(buttons)

    @property
    def chosen(self) -> list[SiteWear]:
        return [self.sites[n] for n, box in self.boxes.items() if box.isChecked()]

    def _accept(self) -> None:
        if not self.chosen:
            self.message.setText("choose at least one site")
        elif not self.by.text().strip():
            self.message.setText("enter who replaced the socket")
        elif not self.reason.text().strip():
            self.message.setText("enter the reason (it is recorded)")
        else:
            self.accept()
