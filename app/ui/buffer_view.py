"""Read-only hex/ASCII viewer for a technician: a buffer, an image, or a comparison.

The table is virtualised: ``HexTableModel`` formats a row only when the view asks for it,
so a 16 MiB buffer (1 Mi rows) opens instantly. Differences against a second buffer are
counted once with numpy and kept as a sorted offset array, so next/previous navigation is
a binary search.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import (
    QAbstractTableModel,
    QEvent,
    QItemSelection,
    QItemSelectionModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QRect,
    Qt,
    Signal,
)
from PySide6.QtGui import (
    QAction,
    QColor,
    QFont,
    QFontDatabase,
    QKeySequence,
    QMouseEvent,
    QPainter,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionHeader,
    QStyleOptionViewItem,
    QTableView,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.core.image import MemoryImage

BYTES_PER_ROW = 16
ADDRESS_COL = 0
ASCII_COL = BYTES_PER_ROW + 1
COLUMN_COUNT = BYTES_PER_ROW + 2

#: ASCII column roles: a 16-bit mask, bit i set when byte i of the row is special.
DIFF_MASK_ROLE = Qt.ItemDataRole.UserRole + 1
GAP_MASK_ROLE = Qt.ItemDataRole.UserRole + 2

DIFF_BACKGROUND = QColor("#ff9c9c")
GAP_BACKGROUND = QColor("#ececec")
GAP_FOREGROUND = QColor("#9a9a9a")
ADDRESS_FOREGROUND = QColor("#30508a")

_HEX = [f"{i:02X}" for i in range(256)]
_ASCII_TABLE = bytes(b if 0x20 <= b < 0x7F else 0x2E for b in range(256))
_INDEX = QModelIndex | QPersistentModelIndex

# -- pure helpers (no Qt state) ----------------------------------------------------------


def parse_address(text: str) -> int:
    """``0x1234``, ``1234h`` or decimal ``4660``; underscores allowed. ValueError if bad."""
    s = text.strip().lower().replace("_", "")
    try:
        if s.startswith("0x"):
            value = int(s[2:], 16)
        elif s.endswith("h"):
            value = int(s[:-1], 16)
        else:
            value = int(s, 10)
    except ValueError:
        raise ValueError(f"not an address: {text.strip()!r} (use 0x1234 or 4660)") from None
    if value < 0:
        raise ValueError("addresses are not negative")
    return value


def parse_pattern(text: str) -> bytes:
    """Hex bytes (``DE AD BE EF``, ``deadbeef``, ``0xDE,0xAD``) or a quoted ASCII string."""
    s = text.strip()
    if len(s) >= 2 and s[0] == s[-1] and s[0] in "\"'":
        if len(s) == 2:
            raise ValueError("empty string")
        try:
            return s[1:-1].encode("ascii")
        except UnicodeEncodeError:
            raise ValueError("only ASCII text can be searched") from None
    tokens = s.replace(",", " ").split()
    if not tokens:
        raise ValueError('enter hex bytes (DE AD) or "text"')
    digits = "".join(t[2:] if t.lower().startswith("0x") else t for t in tokens)
    try:
        if any(len(t.removeprefix("0x").removeprefix("0X")) % 2 for t in tokens):
            raise ValueError
        return bytes.fromhex(digits)
    except ValueError:
        raise ValueError(f'not hex bytes: {s!r} (quote text: "hello")') from None


def _format_size(n: int) -> str:
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale and n % (scale // 16) == 0:
            return f"{n / scale:g} {unit}"
    return f"{n:,} bytes"


class Comparison:
    """Differences between ``data`` and ``other`` over ``data``'s range.

    Bytes where ``other`` is shorter count as differing. ``offsets`` is sorted.
    """

    _CHUNK = 1 << 20  # keeps the transient int64 array of np.flatnonzero small

    def __init__(self, data: bytes, other: bytes) -> None:
        a = np.frombuffer(data, dtype=np.uint8)
        b = np.frombuffer(other, dtype=np.uint8)
        n, m = len(a), min(len(a), len(b))
        self.mask = np.ones(n, dtype=bool)
        np.not_equal(a[:m], b[:m], out=self.mask[:m])
        dtype = np.uint32 if n < 2**32 else np.int64
        parts = [
            (np.flatnonzero(self.mask[i : i + self._CHUNK]) + i).astype(dtype)
            for i in range(0, n, self._CHUNK)
        ]
        self.offsets: np.ndarray = np.concatenate(parts) if parts else np.empty(0, dtype)
        self.other = other
        self.length_delta = len(b) - len(a)

    @property
    def count(self) -> int:
        return len(self.offsets)

    def next_after(self, offset: int) -> tuple[int, bool] | None:
        """(first differing offset > ``offset``, wrapped?) or None when identical."""
        if not self.count:
            return None
        i = int(np.searchsorted(self.offsets, offset, side="right"))
        return (int(self.offsets[i]), False) if i < self.count else (int(self.offsets[0]), True)

    def previous_before(self, offset: int) -> tuple[int, bool] | None:
        if not self.count:
            return None
        i = int(np.searchsorted(self.offsets, offset, side="left")) - 1
        return (int(self.offsets[i]), False) if i >= 0 else (int(self.offsets[-1]), True)


class SegmentMap:
    """Which addresses hold image data; sorted starts/ends checked with bisect."""

    def __init__(self, ranges: Sequence[tuple[int, int]]) -> None:
        self._starts = [s for s, _ in ranges]
        self._ends = [e for _, e in ranges]

    def contains(self, address: int) -> bool:
        i = bisect.bisect_right(self._starts, address) - 1
        return i >= 0 and address < self._ends[i]

    def gap_mask(self, address: int, count: int) -> int:
        """Bit i set when ``address + i`` lies outside every segment."""
        i = bisect.bisect_right(self._starts, address) - 1
        if i >= 0 and address + count <= self._ends[i]:
            return 0  # common case: the whole row is inside one segment
        return sum(1 << k for k in range(count) if not self.contains(address + k))


# -- model -------------------------------------------------------------------------------


class HexTableModel(QAbstractTableModel):
    """Rows of 16 bytes: address, 16 hex cells, one ASCII cell. Formats on demand."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._data = b""
        self._base = 0
        self._segments: SegmentMap | None = None
        self._compare: Comparison | None = None
        self._address_digits = 8

    # -- state --------------------------------------------------------------------------

    @property
    def data_bytes(self) -> bytes:
        return self._data

    @property
    def base(self) -> int:
        return self._base

    @property
    def comparison(self) -> Comparison | None:
        return self._compare

    def set_data(self, data: bytes, base: int, segments: SegmentMap | None) -> None:
        self.beginResetModel()
        self._data, self._base, self._segments = data, base, segments
        self._compare = None
        self._address_digits = max(8, len(f"{base + max(len(data) - 1, 0):X}"))
        self.endResetModel()

    def set_comparison(self, comparison: Comparison | None) -> None:
        self._compare = comparison
        if self.rowCount():
            last = self.index(self.rowCount() - 1, ASCII_COL)
            self.dataChanged.emit(self.index(0, 1), last)

    @property
    def address_digits(self) -> int:
        return self._address_digits

    def offset_of(self, index: _INDEX) -> int | None:
        """Buffer offset of a hex cell, or None for other cells and the empty tail."""
        col = index.column()
        if not index.isValid() or not 1 <= col <= BYTES_PER_ROW:
            return None
        offset = index.row() * BYTES_PER_ROW + col - 1
        return offset if offset < len(self._data) else None

    def index_of(self, offset: int) -> QModelIndex:
        row, col = divmod(offset, BYTES_PER_ROW)
        return self.index(row, col + 1)

    # -- Qt model API -------------------------------------------------------------------

    def rowCount(self, parent: _INDEX = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else -(-len(self._data) // BYTES_PER_ROW)

    def columnCount(self, parent: _INDEX = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else COLUMN_COUNT

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = 0) -> object:
        if orientation != Qt.Orientation.Horizontal:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            if section == ADDRESS_COL:
                return "Address"
            return "ASCII" if section == ASCII_COL else f"{section - 1:02X}"
        if role == Qt.ItemDataRole.TextAlignmentRole:
            if section == ASCII_COL:
                return Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
            return Qt.AlignmentFlag.AlignCenter
        return None

    def flags(self, index: _INDEX) -> Qt.ItemFlag:
        if self.offset_of(index) is not None:
            return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        return Qt.ItemFlag.ItemIsEnabled if index.isValid() else Qt.ItemFlag.NoItemFlags

    def data(self, index: _INDEX, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid():
            return None
        col = index.column()
        if col == ADDRESS_COL:
            return self._address_data(index.row(), role)
        if col == ASCII_COL:
            return self._ascii_data(index.row(), role)
        offset = self.offset_of(index)
        return None if offset is None else self._byte_data(offset, role)

    def _address_data(self, row: int, role: int) -> object:
        if role == Qt.ItemDataRole.DisplayRole:
            return f"{self._base + row * BYTES_PER_ROW:0{self._address_digits}X}"
        if role == Qt.ItemDataRole.ForegroundRole:
            return ADDRESS_FOREGROUND
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        return None

    def _ascii_data(self, row: int, role: int) -> object:
        start = row * BYTES_PER_ROW
        end = min(start + BYTES_PER_ROW, len(self._data))
        if role == Qt.ItemDataRole.DisplayRole:
            return self._data[start:end].translate(_ASCII_TABLE).decode("ascii")
        if role == DIFF_MASK_ROLE:
            if self._compare is None:
                return 0
            bits = np.flatnonzero(self._compare.mask[start:end])
            return int(sum(1 << int(b) for b in bits))
        if role == GAP_MASK_ROLE:
            if self._segments is None:
                return 0
            return self._segments.gap_mask(self._base + start, end - start)
        return None

    def _byte_data(self, offset: int, role: int) -> object:
        if role == Qt.ItemDataRole.DisplayRole:
            return _HEX[self._data[offset]]
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return Qt.AlignmentFlag.AlignCenter
        in_gap = self._segments is not None and not self._segments.contains(self._base + offset)
        differs = self._compare is not None and bool(self._compare.mask[offset])
        if role == Qt.ItemDataRole.BackgroundRole:
            return DIFF_BACKGROUND if differs else (GAP_BACKGROUND if in_gap else None)
        if role == Qt.ItemDataRole.ForegroundRole:
            return GAP_FOREGROUND if in_gap else None
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(offset, in_gap, differs)
        return None

    def _tooltip(self, offset: int, in_gap: bool, differs: bool) -> str:
        value = self._data[offset]
        text = f"0x{self._base + offset:X}: 0x{value:02X} ({value})"
        if in_gap:
            text += " — not in the image (fill)"
        if differs and self._compare is not None:
            other = self._compare.other
            theirs = f"0x{other[offset]:02X}" if offset < len(other) else "missing"
            text += f"\ncompared buffer: {theirs}"
        return text


# -- ASCII column painting ---------------------------------------------------------------


class _AsciiDelegate(QStyledItemDelegate):
    """Paints the ASCII cell one character at a time so single bytes can be coloured,
    and maps a click on a character to its byte."""

    byteClicked = Signal(int)  # row offset of the clicked character's byte

    PADDING = 6

    def __init__(self, view: QTableView) -> None:
        super().__init__(view)
        self._view = view

    def _char_width(self, option: QStyleOptionViewItem) -> int:
        return option.fontMetrics.horizontalAdvance("0")

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: _INDEX) -> None:
        self.initStyleOption(option, index)
        text = option.text
        option.text = ""
        style = option.widget.style() if option.widget else self._view.style()
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, option, painter, option.widget)
        # model.data(), not index.data(): PySide6 6.12 on Python 3.11 drops a reference to
        # None whenever QModelIndex.data() returns an invalid QVariant (fatal in the end)
        model = index.model()
        diff = int(model.data(index, DIFF_MASK_ROLE) or 0)
        gap = int(model.data(index, GAP_MASK_ROLE) or 0)
        current = self._view.currentIndex()
        current_col = current.column() - 1 if current.row() == index.row() else -1
        width = self._char_width(option)
        rect = option.rect
        painter.save()
        painter.setFont(option.font)
        for i, ch in enumerate(text):
            cell = QRect(rect.x() + self.PADDING + i * width, rect.y(), width, rect.height())
            colour = option.palette.text().color()
            if i == current_col:
                painter.fillRect(cell, option.palette.highlight())
                colour = option.palette.highlightedText().color()
            elif diff >> i & 1:
                painter.fillRect(cell, DIFF_BACKGROUND)
            elif gap >> i & 1:
                painter.fillRect(cell, GAP_BACKGROUND)
            if gap >> i & 1 and i != current_col:
                colour = GAP_FOREGROUND
            painter.setPen(colour)
            painter.drawText(cell, Qt.AlignmentFlag.AlignCenter, ch)
        painter.restore()

    def editorEvent(self, event: QEvent, model, option: QStyleOptionViewItem, index) -> bool:
        if event.type() == QEvent.Type.MouseButtonPress and isinstance(event, QMouseEvent):
            x = event.position().x() - option.rect.x() - self.PADDING
            col = int(x // max(self._char_width(option), 1))
            if 0 <= col < len(str(model.data(index) or "")):
                self.byteClicked.emit(index.row() * BYTES_PER_ROW + col)
                return True
        return super().editorEvent(event, model, option, index)


class _PlainHeader(QHeaderView):
    """Horizontal header that never asks the selection model anything.

    QHeaderView::paintSection calls isColumnSelected() for neighbouring sections, which
    walks every row: with 1 Mi rows each selection change cost seconds.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(Qt.Orientation.Horizontal, parent)

    def paintSection(self, painter: QPainter, rect: QRect, logical_index: int) -> None:
        if not rect.isValid() or self.model() is None:
            return
        opt = QStyleOptionHeader()
        self.initStyleOption(opt)
        opt.rect = rect
        opt.section = logical_index
        opt.text = str(self.model().headerData(logical_index, self.orientation()) or "")
        align = self.model().headerData(
            logical_index, self.orientation(), Qt.ItemDataRole.TextAlignmentRole
        )
        if align is not None:
            opt.textAlignment = Qt.AlignmentFlag(align)
        last = self.count() - 1
        opt.position = (
            QStyleOptionHeader.SectionPosition.OnlyOneSection
            if last == 0
            else QStyleOptionHeader.SectionPosition.Beginning
            if logical_index == 0
            else QStyleOptionHeader.SectionPosition.End
            if logical_index == last
            else QStyleOptionHeader.SectionPosition.Middle
        )
        painter.save()
        painter.setFont(self.font())
        self.style().drawControl(QStyle.ControlElement.CE_Header, opt, painter, self)
        painter.restore()


# -- the widget --------------------------------------------------------------------------


class BufferView(QWidget):
    """Hex/ASCII viewer with go-to, find and compare. Emits the selected byte's address."""

    addressSelected = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._title = ""
        self._compare_title = ""
        self._model = HexTableModel(self)
        self._font = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        self._font.setStyleHint(QFont.StyleHint.Monospace)
        self._build_toolbar()
        self._build_table()
        self._build_actions()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(4)
        layout.addWidget(self.title_label)
        layout.addLayout(self._toolbar)
        layout.addWidget(self.compare_bar)
        layout.addWidget(self._table, 1)
        layout.addWidget(self.status_label)
        self._update_title()
        self._update_compare_label()

    # -- construction -------------------------------------------------------------------

    def _build_toolbar(self) -> None:
        self.title_label = QLabel()
        bold = self.title_label.font()
        bold.setBold(True)
        self.title_label.setFont(bold)

        self.goto_edit = QLineEdit()
        self.goto_edit.setPlaceholderText("0x1234 or 4660")
        self.goto_edit.returnPressed.connect(self._on_goto_entered)
        self.find_edit = QLineEdit()
        self.find_edit.setPlaceholderText('DE AD BE EF or "text"')
        self.find_edit.returnPressed.connect(self._on_find_entered)
        self._toolbar = QHBoxLayout()
        for label, edit, stretch in (("Go to:", self.goto_edit, 1), ("Find:", self.find_edit, 2)):
            edit.setFont(self._font)
            edit.setClearButtonEnabled(True)
            self._toolbar.addWidget(QLabel(label))
            self._toolbar.addWidget(edit, stretch)

        # compare mode only: summary plus previous/next difference
        self.compare_bar = QWidget()
        self.compare_label = QLabel()
        self.compare_label.setWordWrap(True)
        self.prev_button = QToolButton()
        self.next_button = QToolButton()
        bar = QHBoxLayout(self.compare_bar)
        bar.setContentsMargins(0, 0, 0, 0)
        bar.addWidget(self.compare_label, 1)
        bar.addWidget(self.prev_button)
        bar.addWidget(self.next_button)

        self.status_label = QLabel()
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

    def _build_table(self) -> None:
        table = QTableView(self)
        table.setModel(self._model)
        table.setFont(self._font)
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectItems)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setAlternatingRowColors(True)
        table.setShowGrid(False)
        table.setWordWrap(False)
        table.setCornerButtonEnabled(False)
        table.setHorizontalHeader(_PlainHeader(table))
        table.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerItem)
        table.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        vheader = table.verticalHeader()
        vheader.hide()
        vheader.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        vheader.setDefaultSectionSize(table.fontMetrics().height() + 4)
        hheader = table.horizontalHeader()
        hheader.setFont(self._font)
        hheader.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        hheader.setHighlightSections(False)
        hheader.setStretchLastSection(True)
        self._ascii_delegate = _AsciiDelegate(table)
        self._ascii_delegate.byteClicked.connect(self._on_ascii_clicked)
        table.setItemDelegateForColumn(ASCII_COL, self._ascii_delegate)
        table.selectionModel().currentChanged.connect(self._on_current_changed)
        self._table = table
        self._apply_column_widths()

    def _build_actions(self) -> None:
        context = Qt.ShortcutContext.WidgetWithChildrenShortcut
        self.next_action = QAction("Next difference", self)
        self.next_action.setShortcut(QKeySequence("Ctrl+D"))
        self.prev_action = QAction("Previous difference", self)
        self.prev_action.setShortcut(QKeySequence("Ctrl+Shift+D"))
        for action, button, slot in (
            (self.next_action, self.next_button, self.next_difference),
            (self.prev_action, self.prev_button, self.previous_difference),
        ):
            action.setShortcutContext(context)
            action.setToolTip(f"{action.text()} ({action.shortcut().toString()})")
            action.triggered.connect(slot)
            self.addAction(action)
            button.setDefaultAction(action)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)

    def _apply_column_widths(self) -> None:
        metrics = self._table.fontMetrics()
        char = metrics.horizontalAdvance("0")
        header = self._table.horizontalHeader()
        header.resizeSection(ADDRESS_COL, char * (self._model.address_digits + 2))
        for col in range(1, BYTES_PER_ROW + 1):
            header.resizeSection(col, char * 3 + 4)
        header.resizeSection(ASCII_COL, char * BYTES_PER_ROW + 2 * _AsciiDelegate.PADDING + 4)

    # -- public API ---------------------------------------------------------------------

    @property
    def model(self) -> HexTableModel:
        return self._model

    @property
    def table(self) -> QTableView:
        return self._table

    @property
    def comparison(self) -> Comparison | None:
        return self._model.comparison

    def set_buffer(
        self, data: bytes | bytearray | memoryview, base: int = 0, title: str = ""
    ) -> None:
        """Show ``data`` (copied, so later changes to the caller's buffer cannot tear the
        view) with its first byte at address ``base``. Leaves compare mode."""
        self._load(bytes(data), base, None, title)

    def set_image(self, image: MemoryImage, fill: int = 0xFF, title: str = "") -> None:
        """Show ``image`` from its lowest to highest address; gaps show ``fill``, greyed."""
        if image.is_empty:
            self._load(b"", 0, None, title)
            self.status_label.setText("The image holds no data.")
            return
        ranges = [(seg.start, seg.end) for seg in image.segments]
        self._load(bytes(image.filled(fill)), image.min_address, SegmentMap(ranges), title)

    def set_compare(self, other: bytes | bytearray | memoryview | None, title: str = "") -> None:
        """Highlight bytes that differ from ``other`` (same base); None leaves compare mode."""
        self._compare_title = title
        data = self._model.data_bytes
        self._model.set_comparison(None if other is None else Comparison(data, bytes(other)))
        self._update_compare_label()
        self._table.viewport().update()

    def selected_address(self) -> int | None:
        offset = self._model.offset_of(self._table.currentIndex())
        return None if offset is None else self._model.base + offset

    def go_to(self, address: int, length: int = 1) -> bool:
        """Select ``length`` bytes from ``address`` and scroll there; False if outside."""
        offset = address - self._model.base
        if not 0 <= offset < len(self._model.data_bytes):
            return False
        self._select_range(offset, max(1, length))
        return True

    # QWidget.find(WId) is an unrelated static lookup of a widget by window id
    def find(self, pattern: bytes, start: int | None = None) -> int | None:  # type: ignore[override]
        """Address of the next ``pattern`` at or after ``start`` (default: just past the
        current selection), wrapping around to the beginning. Selects the match."""
        data = self._model.data_bytes
        if not pattern or not data:
            return None
        if start is None:
            current = self.selected_address()
            offset = 0 if current is None else current - self._model.base + 1
        else:
            offset = start - self._model.base
        offset = min(max(offset, 0), len(data))
        found = data.find(pattern, offset)
        if found < 0:  # wrap: the tail overlap up to offset + len - 1 was not searched yet
            found = data.find(pattern, 0, min(offset + len(pattern) - 1, len(data)))
        if found < 0:
            return None
        self._select_range(found, len(pattern))
        return self._model.base + found

    def next_difference(self) -> int | None:
        return self._step_difference(forward=True)

    def previous_difference(self) -> int | None:
        return self._step_difference(forward=False)

    # -- internals ----------------------------------------------------------------------

    def _load(self, data: bytes, base: int, segments: SegmentMap | None, title: str) -> None:
        self._title = title
        self._compare_title = ""
        self._model.set_data(data, base, segments)
        self._apply_column_widths()
        self._table.scrollToTop()
        self.status_label.clear()
        self._update_title()
        self._update_compare_label()

    def _select_range(self, offset: int, length: int) -> None:
        model = self._model
        end = min(offset + length, len(model.data_bytes))
        selection = QItemSelection()
        pos = offset
        while pos < end:
            row_end = min(end, (pos // BYTES_PER_ROW + 1) * BYTES_PER_ROW)
            selection.select(model.index_of(pos), model.index_of(row_end - 1))
            pos = row_end
        first = model.index_of(offset)
        selection_model = self._table.selectionModel()
        selection_model.setCurrentIndex(first, QItemSelectionModel.SelectionFlag.NoUpdate)
        selection_model.select(selection, QItemSelectionModel.SelectionFlag.ClearAndSelect)
        self._table.scrollTo(first, QAbstractItemView.ScrollHint.PositionAtCenter)

    def _step_difference(self, forward: bool) -> int | None:
        comparison = self._model.comparison
        if comparison is None:
            self.status_label.setText("Not comparing: nothing to step through.")
            return None
        current = self.selected_address()
        offset = current - self._model.base if current is not None else None
        if forward:
            hit = comparison.next_after(-1 if offset is None else offset)
        else:
            size = len(self._model.data_bytes)
            hit = comparison.previous_before(size if offset is None else offset)
        if hit is None:
            self.status_label.setText("No differences.")
            return None
        found, wrapped = hit
        self._select_range(found, 1)
        where = "first" if forward else "last"
        self.status_label.setText(f"Wrapped to the {where} difference." if wrapped else "")
        return self._model.base + found

    def _update_title(self) -> None:
        data = self._model.data_bytes
        if not data:
            self.title_label.setText(self._title or "No data")
            return
        base = self._model.base
        span = f"{_format_size(len(data))} at 0x{base:X}–0x{base + len(data) - 1:X}"
        self.title_label.setText(f"{self._title} — {span}" if self._title else span)

    def _update_compare_label(self) -> None:
        comparison = self._model.comparison
        enabled = comparison is not None and comparison.count > 0
        self.next_action.setEnabled(enabled)
        self.prev_action.setEnabled(enabled)
        self.compare_bar.setHidden(comparison is None)
        if comparison is None:
            self.compare_label.clear()
            return
        against = f" vs {self._compare_title}" if self._compare_title else ""
        if comparison.count == 0:
            text = f"<span style='color:#1b7a2e'>Identical{against}</span>"
        else:
            first = self._model.base + int(comparison.offsets[0])
            text = (
                f"<span style='color:#b00020'><b>{comparison.count:,}</b> bytes differ"
                f"{against}, first at 0x{first:X}</span>"
            )
        if comparison.length_delta:
            longer = "longer" if comparison.length_delta > 0 else "shorter"
            text += f" (other is {abs(comparison.length_delta):,} bytes {longer})"
        self.compare_label.setText(text)

    def _on_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        # the ASCII cell of a row marks the current byte, so repaint both rows' cells
        self._table.viewport().update()
        offset = self._model.offset_of(current)
        if offset is not None:
            self.addressSelected.emit(self._model.base + offset)

    def _on_ascii_clicked(self, offset: int) -> None:
        if offset < len(self._model.data_bytes):
            self._select_range(offset, 1)

    def _on_goto_entered(self) -> None:
        try:
            address = parse_address(self.goto_edit.text())
        except ValueError as exc:
            self.status_label.setText(str(exc).capitalize())
            return
        if self.go_to(address):
            self.status_label.clear()
            return
        data, base = self._model.data_bytes, self._model.base
        if not data:
            self.status_label.setText("Nothing loaded.")
        else:
            self.status_label.setText(
                f"0x{address:X} is outside 0x{base:X}–0x{base + len(data) - 1:X}."
            )

    def _on_find_entered(self) -> None:
        text = self.find_edit.text()
        try:
            pattern = parse_pattern(text)
        except ValueError as exc:
            self.status_label.setText(str(exc).capitalize())
            return
        before = self.selected_address()
        found = self.find(pattern)
        if found is None:
            self.status_label.setText(f"Not found: {text.strip()}")
        elif before is not None and found <= before:
            self.status_label.setText(f"Found at 0x{found:X} (wrapped around).")
        else:
            self.status_label.setText(f"Found at 0x{found:X}.")
