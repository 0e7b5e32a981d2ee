"""Bounded log model for the log panes: 100k lines stay fast because the model keeps a
ring of records and the views filter through a proxy (level, site, search text)."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

from PySide6.QtCore import QModelIndex, QObject, QSortFilterProxyModel, Qt
from PySide6.QtGui import QBrush, QColor

from app.ui.table_model import Index, RowsTableModel

LEVELS = ("debug", "info", "warning", "error")
_LEVEL_RANK = {name: i for i, name in enumerate(LEVELS)}
_LEVEL_COLOURS = {"warning": QColor("#8a5a00"), "error": QColor("#b00020")}
COLUMNS = ("Time", "Site", "Level", "Message")


@dataclass(frozen=True)
class LogRecord:
    when: float
    site: int | None
    level: str
    message: str

    def text(self) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(self.when))
        site = f"site {self.site}" if self.site is not None else "station"
        return f"{stamp}\t{site}\t{self.level}\t{self.message}"


class LogModel(RowsTableModel):
    columns = COLUMNS
    rows: deque[LogRecord]  # a ring: the oldest records drop out at ``capacity``

    def __init__(self, capacity: int = 100_000, parent: QObject | None = None) -> None:
        super().__init__(deque(), parent)
        self.capacity = capacity

    def record(self, row: int) -> LogRecord:
        return self.rows[row]

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid():
            return None
        rec = self.rows[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 0:
                return time.strftime("%H:%M:%S", time.localtime(rec.when))
            if col == 1:
                return "" if rec.site is None else str(rec.site)
            if col == 2:
                return rec.level
            return rec.message
        if role == Qt.ItemDataRole.ForegroundRole and rec.level in _LEVEL_COLOURS:
            return QBrush(_LEVEL_COLOURS[rec.level])
        return None

    def append(self, record: LogRecord) -> None:
        if len(self.rows) >= self.capacity:
            drop = max(1, self.capacity // 100)  # drop in batches: one model reset-free removal
            self.beginRemoveRows(QModelIndex(), 0, drop - 1)
            for _ in range(drop):
                self.rows.popleft()
            self.endRemoveRows()
        row = len(self.rows)
        self.beginInsertRows(QModelIndex(), row, row)
        self.rows.append(record)
        self.endInsertRows()

    def clear(self) -> None:
        self.beginResetModel()
        self.rows.clear()
        self.endResetModel()


class LogFilter(QSortFilterProxyModel):
    """Shows records at or above ``min_level``, of one site (or all), containing text."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._min_rank = _LEVEL_RANK["info"]
        self._site: int | None = None
        self._text = ""

    def set_min_level(self, level: str) -> None:
        self.beginFilterChange()
        self._min_rank = _LEVEL_RANK[level]
        self.endFilterChange()

    def set_site(self, site: int | None) -> None:
        self.beginFilterChange()
        self._site = site
        self.endFilterChange()

    def set_text(self, text: str) -> None:
        self.beginFilterChange()
        self._text = text.casefold()
        self.endFilterChange()

    def filterAcceptsRow(self, source_row: int, source_parent: Index) -> bool:
        model = self.sourceModel()
        assert isinstance(model, LogModel)
        rec = model.record(source_row)
        if _LEVEL_RANK.get(rec.level, 1) < self._min_rank:
            return False
        if self._site is not None and rec.site != self._site:
            return False
        return not self._text or self._text in rec.message.casefold()
