"""Job setup pane: device, image (drag-and-drop too), operations in order, erase mode,
programmer URL. Emits intents; the main window passes them to the controller."""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.ui.format import size_text

#: (key, label, user can switch it) in the order the cycle runs them
OPERATIONS = (
    ("identify", "Identify (ID check)", False),
    ("backup", "Back up in-system parts first", True),
    ("unprotect", "Unprotect (clear block protection)", True),
    ("erase", "Erase", True),
    ("skip_matching", "Skip blocks that already hold the image", True),
    ("blank_check", "Blank check", True),
    ("program", "Program", False),
    ("verify", "Verify", True),
    ("protect", "Protect", True),
)
ERASE_MODES = (("auto", "as needed"), ("full", "full chip"))
IMAGE_FILTER = (
    "Images (*.hex *.ihex *.ihx *.s19 *.s28 *.s37 *.srec *.mot *.txt *.bin);;All files (*)"
)


class JobPanel(QWidget):
    deviceRequested = Signal()
    imageChosen = Signal(str)
    programmerChosen = Signal(str)
    operationToggled = Signal(str, bool)
    eraseModeChosen = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.device_label = QLabel("no device chosen")
        self.device_label.setObjectName("device")
        self.device_label.setWordWrap(True)
        self.device_button = QPushButton("Select…")
        self.device_button.clicked.connect(self.deviceRequested)
        self.image_path = QLineEdit(readOnly=True, placeholderText="drop an image file here")
        self.image_button = QPushButton("Open…")
        self.image_button.clicked.connect(self._browse)
        self.image_info = QLabel("")
        self.image_info.setObjectName("image-info")
        self.image_info.setWordWrap(True)
        self.image_info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.checks: dict[str, QCheckBox] = {}
        ops_box = QGroupBox("Operations (in order)")
        ops_layout = QVBoxLayout(ops_box)
        for key, label, switchable in OPERATIONS:
            box = QCheckBox(label)
            box.setChecked(key in ("identify", "backup", "erase", "program", "verify"))
            box.setEnabled(switchable)
            box.toggled.connect(lambda on, k=key: self.operationToggled.emit(k, on))
            ops_layout.addWidget(box)
            self.checks[key] = box
        self.erase_mode = QComboBox()
        for key, label in ERASE_MODES:
            self.erase_mode.addItem(label, key)
        self.erase_mode.currentIndexChanged.connect(
            lambda _i: self.eraseModeChosen.emit(self.erase_mode.currentData())
        )
        self.programmer = QLineEdit()
        self.programmer.setObjectName("programmer")
        self.programmer.returnPressed.connect(
            lambda: self.programmerChosen.emit(self.programmer.text().strip())
        )
        self.programmer_problem = QLabel("")
        self.programmer_problem.setObjectName("programmer-problem")
        self.programmer_problem.setWordWrap(True)
        self.programmer_problem.setStyleSheet("color: #b00020;")
        self.programmer_problem.hide()
        apply = QPushButton("Connect")
        apply.setObjectName("connect")
        apply.clicked.connect(lambda: self.programmerChosen.emit(self.programmer.text().strip()))

        device_row = QHBoxLayout()
        device_row.addWidget(self.device_label, 1)
        device_row.addWidget(self.device_button)
        image_row = QHBoxLayout()
        image_row.addWidget(self.image_path, 1)
        image_row.addWidget(self.image_button)
        prog_row = QHBoxLayout()
        prog_row.addWidget(self.programmer, 1)
        prog_row.addWidget(apply)
        form = QFormLayout()
        form.addRow("Device", device_row)
        form.addRow("Image", image_row)
        form.addRow("", self.image_info)
        form.addRow("Erase mode", self.erase_mode)
        form.addRow("Programmer", prog_row)
        form.addRow("", self.programmer_problem)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(ops_box)
        layout.addStretch(1)

    def show_programmer_problem(self, url: str, reason: str) -> None:
        """Mark the programmer field: ``url`` was refused for ``reason`` (the field keeps
        what was typed, so it can be corrected)."""
        self.programmer.setText(url)
        self.programmer.setStyleSheet("QLineEdit { border: 2px solid #b00020; }")
        self.programmer.setToolTip(reason)
        self.programmer_problem.setText(f"{reason}. Still using the last working programmer.")
        self.programmer_problem.show()

    def show_image_problem(self, path: str, reason: str) -> None:
        """Mark the image field with why ``path`` was refused (or warned about); an
        empty ``reason`` clears the mark."""
        if not reason:
            self.image_path.setStyleSheet("")
            self.image_path.setToolTip("")
            return
        self.image_path.setText(path)
        self.image_path.setStyleSheet("QLineEdit { border: 2px solid #b00020; }")
        self.image_path.setToolTip(reason)
        self.image_info.setText(f"<span style='color:#b00020'>{html.escape(reason)}</span>")

    def clear_programmer_problem(self) -> None:
        self.programmer.setStyleSheet("")
        self.programmer.setToolTip("")
        self.programmer_problem.hide()

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open image", "", IMAGE_FILTER)
        if path:
            self.imageChosen.emit(path)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        urls = event.mimeData().urls()
        if urls and urls[0].isLocalFile():
            self.imageChosen.emit(urls[0].toLocalFile())
            event.acceptProposedAction()

    def show_job(self, controller: Any) -> None:
        """Reflect the controller's job settings (no signals fired)."""
        device = controller.device
        if device is not None:
            low, high = device.voltage_mv
            self.device_label.setText(
                f"<b>{device.vendor} {device.part}</b><br>{size_text(device.size_bytes)},"
                f" {low / 1000:g}–{high / 1000:g} V, {device.family}"
            )
        loaded = controller.image
        if loaded is not None:
            image = loaded.image
            self.image_path.setText(str(loaded.path))
            ranges = ", ".join(f"[0x{s.start:X}, 0x{s.end:X})" for s in image.segments[:4])
            more = f" +{len(image.segments) - 4} more" if len(image.segments) > 4 else ""
            self.image_info.setText(
                f"{loaded.format}, {image.data_bytes:,} bytes in {len(image.segments)} segment(s):"
                f" {ranges}{more}<br>CRC-32 {controller.image_crc32}"
            )
        if not self.programmer_problem.isVisible():  # keep a refused URL for correcting
            self.programmer.setText(controller.programmer_url)
        for key, box in self.checks.items():
            if key in controller.operations:
                box.blockSignals(True)
                box.setChecked(controller.operations[key])
                box.blockSignals(False)
        index = self.erase_mode.findData(controller.erase_mode)
        self.erase_mode.blockSignals(True)
        self.erase_mode.setCurrentIndex(max(0, index))
        self.erase_mode.blockSignals(False)
