"""BufferView: a 16 MiB buffer, go-to, find, compare navigation and image gaps."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt

from app.core.image import MemoryImage
from app.ui.buffer_view import (
    ASCII_COL,
    BYTES_PER_ROW,
    DIFF_BACKGROUND,
    DIFF_MASK_ROLE,
    GAP_BACKGROUND,
    GAP_FOREGROUND,
    GAP_MASK_ROLE,
    BufferView,
    parse_address,
    parse_pattern,
)

MIB16 = 16 << 20
BASE = 0x0800_0000
BACKGROUND = Qt.ItemDataRole.BackgroundRole
FOREGROUND = Qt.ItemDataRole.ForegroundRole

# Roles are read with model.data(index, role), never index.data(role): with PySide6 6.12 on
# Python 3.11, QModelIndex.data() returning an invalid QVariant drops a reference to None,
# which eventually aborts the interpreter.


@pytest.fixture(scope="module")
def big() -> bytes:
    return np.random.default_rng(7).integers(0, 256, MIB16, dtype=np.uint8).tobytes()


@pytest.fixture
def view(qtbot) -> BufferView:
    widget = BufferView()
    qtbot.addWidget(widget)
    widget.resize(900, 500)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def _visible(view: BufferView, address: int) -> bool:
    index = view.model.index_of(address - view.model.base)
    return view.table.viewport().rect().intersects(view.table.visualRect(index))


def test_16mib_opens_fast_and_is_virtual(view: BufferView, big: bytes) -> None:
    t0 = time.perf_counter()
    view.set_buffer(big, BASE, "flash.bin")
    view.grab()  # forces a paint of the visible rows
    assert time.perf_counter() - t0 < 1.0
    model = view.model
    assert model.rowCount() == 1 << 20
    assert model.columnCount() == BYTES_PER_ROW + 2
    last = model.rowCount() - 1
    assert model.data(model.index(last, 0)) == f"{BASE + MIB16 - 16:08X}"
    assert model.data(model.index(last, 16)) == f"{big[-1]:02X}"
    headers = [model.headerData(c, Qt.Orientation.Horizontal) for c in range(18)]
    assert headers == ["Address", *(f"{i:02X}" for i in range(16)), "ASCII"]
    assert "16 MiB at 0x8000000" in view.title_label.text()


def test_go_to_selects_and_scrolls(qtbot, view: BufferView, big: bytes) -> None:
    view.set_buffer(big, BASE)
    target = BASE + 0xABCDE7
    assert not _visible(view, target)
    with qtbot.waitSignal(view.addressSelected) as blocker:
        assert view.go_to(target)
    assert blocker.args == [target]
    assert view.selected_address() == target
    assert view.table.currentIndex().column() == 0xE7 % 16 + 1
    assert _visible(view, target)
    t0 = time.perf_counter()
    view.grab()  # selection repaint must not scan 1 Mi rows (QHeaderView does)
    assert time.perf_counter() - t0 < 0.5
    assert not view.go_to(BASE - 1)
    assert not view.go_to(BASE + MIB16)
    assert view.selected_address() == target


def test_goto_line_edit(qtbot, view: BufferView) -> None:
    view.set_buffer(bytes(4096), 0x1000)
    for text, expected in (("0x1FF0", 0x1FF0), ("4097", 4097)):
        view.goto_edit.setText(text)
        qtbot.keyClick(view.goto_edit, Qt.Key.Key_Return)
        assert view.selected_address() == expected
        assert view.status_label.text() == ""


@pytest.mark.parametrize(
    ("text", "message"), [("0xZZ", "Not an address"), ("0x10", "outside"), ("-5", "not negative")]
)
def test_bad_goto_text_shows_message(qtbot, view: BufferView, text: str, message: str) -> None:
    view.set_buffer(bytes(64), 0x1000)
    view.goto_edit.setText(text)
    qtbot.keyClick(view.goto_edit, Qt.Key.Key_Return)
    assert message in view.status_label.text()
    assert view.selected_address() is None


def test_find_hex_and_ascii_wraps(qtbot, view: BufferView) -> None:
    data = bytearray(0x400)
    data[0x10:0x15] = b"hello"
    data[0x3FE:0x400] = b"he"  # a partial match at the very end must not count
    data[0x20E:0x213] = b"hello"  # crosses a row boundary
    data[0x300:0x304] = bytes.fromhex("DEADBEEF")
    view.set_buffer(data, 0x100)
    assert view.find(b"hello") == 0x110
    assert view.find(b"hello") == 0x30E
    assert view.find(b"hello") == 0x110  # wrapped around
    selected = view.table.selectionModel().selectedIndexes()
    assert sorted(view.model.offset_of(i) for i in selected) == list(range(0x10, 0x15))
    assert view.find(b"nope") is None

    view.find_edit.setText('"hello"')
    qtbot.keyClick(view.find_edit, Qt.Key.Key_Return)
    assert view.selected_address() == 0x30E
    assert "0x30E" in view.status_label.text()
    view.find_edit.setText("de ad be ef")
    qtbot.keyClick(view.find_edit, Qt.Key.Key_Return)
    assert view.selected_address() == 0x400
    view.find_edit.setText("de ad be ef")
    qtbot.keyClick(view.find_edit, Qt.Key.Key_Return)
    assert "wrapped" in view.status_label.text()
    view.find_edit.setText("XYZ")
    qtbot.keyClick(view.find_edit, Qt.Key.Key_Return)
    assert "Not hex bytes" in view.status_label.text()
    assert view.selected_address() == 0x400


def test_compare_counts_and_navigates(qtbot, view: BufferView, big: bytes) -> None:
    view.set_buffer(big, BASE)
    other = bytearray(big)
    offsets = [3, 0x10, 0x7FFF0, 0x123456, MIB16 - 1]
    for offset in offsets:
        other[offset] ^= 0x5A
    t0 = time.perf_counter()
    view.set_compare(bytes(other), "read-back")
    assert time.perf_counter() - t0 < 1.0
    assert view.comparison is not None and view.comparison.count == len(offsets)
    label = view.compare_label.text()
    assert "5</b> bytes differ vs read-back, first at 0x8000003" in label

    model = view.model
    assert model.data(model.index_of(0x10), BACKGROUND) == DIFF_BACKGROUND
    assert model.data(model.index_of(0x11), BACKGROUND) is None
    ascii_cell = model.index(1, ASCII_COL)
    assert model.data(ascii_cell, DIFF_MASK_ROLE) == 0b1

    view.table.setFocus()
    qtbot.waitUntil(view.table.hasFocus)
    visited = []
    for _ in range(len(offsets) + 1):
        qtbot.keyClick(view.table, Qt.Key.Key_D, Qt.KeyboardModifier.ControlModifier)
        visited.append(view.selected_address() - BASE)
    assert visited == [*offsets, offsets[0]]
    assert "Wrapped" in view.status_label.text()
    backwards = []
    for _ in range(len(offsets)):
        qtbot.mouseClick(view.prev_button, Qt.MouseButton.LeftButton)
        backwards.append(view.selected_address() - BASE)
    assert backwards == [offsets[-1], *reversed(offsets[1:-1]), offsets[0]]

    view.set_compare(None)
    assert view.comparison is None
    assert view.compare_bar.isHidden()


def test_compare_shorter_and_identical(view: BufferView) -> None:
    view.set_buffer(bytes(range(64)))
    view.set_compare(bytes(range(60)), "chip")
    assert view.comparison is not None and view.comparison.count == 4
    assert "4 bytes shorter" in view.compare_label.text()
    view.set_compare(bytes(range(64)), "chip")
    assert "Identical" in view.compare_label.text()
    assert not view.next_action.isEnabled()


def test_image_gaps_are_greyed(view: BufferView) -> None:
    image = MemoryImage.from_segments([(0x100, b"Hello"), (0x120, b"\x01\x02")])
    view.set_image(image, fill=0xEE, title="app.hex")
    model = view.model
    assert model.base == 0x100
    assert model.rowCount() == 3
    data_byte, gap_byte = model.index_of(0x04), model.index_of(0x05)
    assert model.data(data_byte) == "6F"
    assert model.data(gap_byte) == "EE"
    assert model.data(data_byte, FOREGROUND) is None
    assert model.data(gap_byte, FOREGROUND) == GAP_FOREGROUND
    assert model.data(gap_byte, BACKGROUND) == GAP_BACKGROUND
    assert model.data(model.index(0, ASCII_COL)) == "Hello..........."
    assert model.data(model.index(0, ASCII_COL), GAP_MASK_ROLE) == 0xFFFF & ~0b11111
    assert model.data(model.index(2, ASCII_COL), GAP_MASK_ROLE) == 0
    assert "app.hex" in view.title_label.text()


def test_click_in_ascii_selects_byte(qtbot, view: BufferView) -> None:
    view.set_buffer(b"0123456789abcdef" * 4, 0x40)
    cell = view.table.visualRect(view.model.index(2, ASCII_COL))
    char = view.table.fontMetrics().horizontalAdvance("0")
    x = cell.x() + 6 + 5 * char + char // 2  # 6 = the delegate's padding
    qtbot.mouseClick(
        view.table.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(x, cell.center().y())
    )
    assert view.selected_address() == 0x40 + 2 * 16 + 5


@pytest.mark.parametrize(
    ("text", "value"), [("0x1234", 0x1234), ("4660", 4660), ("1234h", 0x1234), ("0x1_0000", 65536)]
)
def test_parse_address(text: str, value: int) -> None:
    assert parse_address(text) == value


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("DE AD be ef", b"\xde\xad\xbe\xef"),
        ("0xDE,0xAD", b"\xde\xad"),
        ('"hi"', b"hi"),
        ("'x'", b"x"),
    ],
)
def test_parse_pattern(text: str, value: bytes) -> None:
    assert parse_pattern(text) == value


@pytest.mark.parametrize("text", ["", "ABC", "zz", '""', '"héllo"'])
def test_parse_pattern_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_pattern(text)
