"""Device selector: search as you type over the whole database, filter by family, vendor
and package, and read a part's facts before choosing it."""

from __future__ import annotations

import html

from PySide6.QtCore import QEvent, QModelIndex, QObject, Qt, QTimer
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QSplitter,
    QTableView,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from app.devicedb.database import DeviceDatabase
from app.devicedb.facts import (
    DataFlashFacts,
    I2cEepromFacts,
    MicrowireFacts,
    SpiEepromFacts,
    SpiNorFacts,
    Stm32Facts,
)
from app.devicedb.models import Device
from app.ui.format import size_text
from app.ui.table_model import Index, RowsTableModel

COLUMNS = ("Part", "Vendor", "Family", "Size", "Voltage", "Packages")
ANY = "Any"


class DeviceTableModel(RowsTableModel):
    columns = COLUMNS

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__([], parent)

    @property
    def devices(self) -> list[Device]:
        return self.rows  # type: ignore[return-value]

    def set_devices(self, devices: list[Device]) -> None:
        self.beginResetModel()
        self.rows = devices
        self.endResetModel()

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid() or role != Qt.ItemDataRole.DisplayRole:
            return None
        dev = self.devices[index.row()]
        low, high = dev.voltage_mv
        return (
            dev.part,
            dev.vendor,
            dev.family,
            size_text(dev.size_bytes),
            f"{low / 1000:g}–{high / 1000:g} V",
            ", ".join(dev.packages),
        )[index.column()]


def _ms(value: float) -> str:
    return f"{value:.10g}"


def _clock(dev: Device) -> list[tuple[str, str]]:
    return [("Max clock", f"{dev.max_clock_hz / 1e6:g} MHz")] if dev.max_clock_hz else []


def _spi_nor_rows(dev: Device, facts: SpiNorFacts) -> list[tuple[str, str]]:
    ids = [f"jedec: {facts.jedec_id.hex().upper()}"]
    ids += [f"also answers: {k.jedec.hex().upper()} ({k.source})" for k in facts.also_answers]
    if facts.extended_id:
        ids.append(f"extended: {facts.extended_id.hex().upper()}")
    if facts.legacy_rdid is not None:
        ids.append(f"legacy_rdid: 0x{facts.legacy_rdid:02X}")
    rows = [("IDs", ", ".join(ids)), ("Page", f"{facts.page_size} bytes")]
    for op in facts.erase_ops:
        size = "chip" if op.size is None else size_text(op.size)
        typ, high = _ms(op.timing.ms_typ), _ms(op.timing.ms_max)
        rows.append((f"Erase 0x{op.opcode:02X}", f"{size}: {typ} ms typ, {high} ms max"))
    program = facts.page_program
    rows.append(("Page program", f"{_ms(program.ms_typ)} ms typ, {_ms(program.ms_max)} ms max"))
    mode = f" ({facts.four_byte_mode})" if facts.four_byte_mode else ""
    return [*rows, *_clock(dev), ("Addressing", f"{facts.address_bytes}-byte{mode}")]


def _i2c_eeprom_rows(dev: Device, facts: I2cEepromFacts) -> list[tuple[str, str]]:
    return [
        ("Page", f"{facts.page_size} bytes"),
        ("Write cycle", f"{_ms(facts.write_cycle.ms_max)} ms max"),
        *_clock(dev),
        ("Addressing", f"{facts.address_bytes}-byte"),
    ]


def _spi_eeprom_rows(dev: Device, facts: SpiEepromFacts) -> list[tuple[str, str]]:
    a8 = " + A8 in the opcode" if facts.address_bit_in_opcode else ""
    return [
        ("IDs", "none (no ID command)"),
        ("Page", f"{facts.page_size} bytes"),
        ("Write cycle", f"{_ms(facts.write_cycle.ms_max)} ms max"),
        *_clock(dev),
        ("Addressing", f"{facts.address_bytes}-byte{a8}"),
    ]


def _dataflash_rows(dev: Device, facts: DataFlashFacts) -> list[tuple[str, str]]:
    binary = facts.binary_page_size
    page = f"{facts.page_size} bytes" + (f" (or {binary} when set so)" if binary else "")
    return [
        ("IDs", f"jedec: {facts.jedec_id.hex().upper()}"),
        ("Page", page),
        ("Erase", "page 81h, block of 8 pages 50h, chip C7h 94h 80h 9Ah"),
        ("Program", f"{_ms(facts.page_program.ms_max)} ms max a page (buffer 84h, 88h)"),
        *_clock(dev),
    ]


def _microwire_rows(dev: Device, facts: MicrowireFacts) -> list[tuple[str, str]]:
    pin = " (ORG pin)" if facts.org_pin else ""
    return [
        ("IDs", "none (no ID command)"),
        ("Organisation", f"x{facts.word_bits}{pin}, {facts.address_bits} address bits"),
        ("Write cycle", f"{_ms(facts.write_cycle.ms_max)} ms max a word"),
        *_clock(dev),
    ]


def _family_rows(dev: Device) -> list[tuple[str, str]]:
    """The family's facts an engineer checks: IDs, page, erase table, timing, clock."""
    facts = dev.facts
    if isinstance(facts, SpiNorFacts):
        return _spi_nor_rows(dev, facts)
    if isinstance(facts, I2cEepromFacts):
        return _i2c_eeprom_rows(dev, facts)
    if isinstance(facts, SpiEepromFacts):
        return _spi_eeprom_rows(dev, facts)
    if isinstance(facts, DataFlashFacts):
        return _dataflash_rows(dev, facts)
    if isinstance(facts, MicrowireFacts):
        return _microwire_rows(dev, facts)
    swd = dev.swd
    rows = [("SWD", f"{swd.series}, {swd.core}")] if swd is not None else []
    if isinstance(facts, Stm32Facts):
        return [("IDs", f"stm32_pid: 0x{facts.pid:03X}"), *rows, *_clock(dev)]
    assert swd is not None  # a cortex-m part
    ids = " or ".join(f"0x{v:X}" for v in swd.id_values)
    return [("IDs", f"0x{swd.id_address:08X}: {ids}"), *rows]


def device_details_html(dev: Device) -> str:
    """The facts an engineer checks before choosing a part."""
    rows: list[tuple[str, str]] = [
        ("Id", dev.id),
        ("Vendor", dev.vendor),
        ("Family / algorithm", f"{dev.family} / {dev.algorithm}"),
        ("Size", f"{size_text(dev.size_bytes)} ({dev.size_bytes:,} bytes)"),
        ("Voltage", "{:g}–{:g} V".format(*(v / 1000 for v in dev.voltage_mv))),
        *_family_rows(dev),
    ]
    rows.append(("Packages", ", ".join(dev.packages)))
    tested = ", ".join(f"{k}: {v}" for k, v in dev.tested.items())
    rows.append(("Tested", tested or "untested"))
    rows.append(("Source", dev.source))
    if dev.notes:
        rows.append(("Notes", dev.notes))
    body = "".join(
        f"<tr><td style='color:#555;padding-right:12px'>{html.escape(k)}</td>"
        f"<td>{html.escape(str(v))}</td></tr>"
        for k, v in rows
    )
    return f"<h3>{html.escape(dev.vendor)} {html.escape(dev.part)}</h3><table>{body}</table>"


class DeviceSelector(QDialog):
    """Modal selector; ``selected_id`` holds the choice after ``accept()``."""

    def __init__(
        self,
        database: DeviceDatabase,
        current: str | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Select device")
        self.resize(1000, 600)
        self.database = database
        self.selected_id: str | None = current
        self.search = QLineEdit(
            placeholderText="Search part, vendor, alias, package, size (e.g. w25q128, 16MiB)"
        )
        self.search.setClearButtonEnabled(True)
        self.family = QComboBox()
        self.family.addItems([ANY, *sorted({d.family for d in database.devices})])
        self.vendor = QComboBox()
        self.vendor.addItems([ANY, *database.vendors()])
        self.package = QComboBox()
        self.package.addItems([ANY, *sorted(database.packages)])
        self.count = QLabel()
        self.model = DeviceTableModel(self)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableView.SelectionMode.SingleSelection)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.details = QTextBrowser()
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self._accept)
        self.buttons.rejected.connect(self.reject)

        filters = QHBoxLayout()
        for label, combo in (
            ("Family", self.family),
            ("Vendor", self.vendor),
            ("Package", self.package),
        ):
            filters.addWidget(QLabel(label))
            filters.addWidget(combo)
        filters.addStretch(1)
        filters.addWidget(self.count)
        split = QSplitter()
        split.addWidget(self.table)
        split.addWidget(self.details)
        split.setSizes([620, 380])
        layout = QVBoxLayout(self)
        layout.addWidget(self.search)
        layout.addLayout(filters)
        layout.addWidget(split, 1)
        layout.addWidget(self.buttons)

        self._debounce = QTimer(self, singleShot=True, interval=80)
        self._debounce.timeout.connect(self.refresh)
        self.search.textChanged.connect(self._debounce.start)
        for combo in (self.family, self.vendor, self.package):
            combo.currentTextChanged.connect(self.refresh)
        self.table.selectionModel().currentRowChanged.connect(self._show_details)
        self.table.doubleClicked.connect(lambda _i: self._accept())
        self.table.activated.connect(lambda _i: self._accept())  # Enter on a row
        # Keyboard: type to search, Up/Down move through the results without leaving the
        # search field, Enter takes the highlighted part.
        self.search.installEventFilter(self)
        self.refresh()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.search and event.type() == QEvent.Type.KeyPress:
            key = event.key()  # type: ignore[attr-defined]
            if key in (Qt.Key.Key_Down, Qt.Key.Key_Up, Qt.Key.Key_PageDown, Qt.Key.Key_PageUp):
                QApplication.sendEvent(self.table, event)
                return True
        return super().eventFilter(watched, event)

    def _filter(self, combo: QComboBox) -> str | None:
        text = combo.currentText()
        return None if text == ANY else text

    def refresh(self) -> None:
        found = self.database.search(
            self.search.text(),
            family=self._filter(self.family),
            vendor=self._filter(self.vendor),
            package=self._filter(self.package),
        )
        self.model.set_devices(found)
        self.count.setText(f"{len(found)} of {len(self.database)} devices")
        if found:
            self.table.selectRow(0)
        else:
            self.details.setHtml("<p>No device matches.</p>")

    def _show_details(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if current.isValid():
            self.details.setHtml(device_details_html(self.model.devices[current.row()]))

    def current_device(self) -> Device | None:
        index = self.table.currentIndex()
        return self.model.devices[index.row()] if index.isValid() else None

    def _accept(self) -> None:
        device = self.current_device()
        if device is not None:
            self.selected_id = device.id
            self.accept()
