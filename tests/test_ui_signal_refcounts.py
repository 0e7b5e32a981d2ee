"""Signals to Python slots must not leak or drop references.

PySide6 6.12.0 on Python 3.11 drops one reference to None/True/False per emission to a
Python slot; after a few thousand emissions (a few minutes of a production run) the
interpreter aborts with "deallocating None". pyproject.toml excludes that release; this
test fails, instead of a shift on the production floor, if a broken one comes back.
"""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Signal

EMISSIONS = 5000


class _Emitter(QObject):
    carried = Signal(object)
    pair = Signal(int, object)


def _singleton_refs() -> tuple[int, int, int]:
    return sys.getrefcount(None), sys.getrefcount(True), sys.getrefcount(False)


def test_emitting_to_python_slots_keeps_singleton_refcounts(qapp) -> None:
    emitter = _Emitter()
    received: list[object] = []
    emitter.carried.connect(lambda value: None)
    emitter.pair.connect(lambda site, value: received.append(value))
    before = _singleton_refs()
    for i in range(EMISSIONS):
        emitter.carried.emit(i)
        emitter.pair.emit(i, None)
    received.clear()
    drift = [after - was for after, was in zip(_singleton_refs(), before, strict=True)]
    assert all(abs(d) < EMISSIONS // 10 for d in drift), f"None/True/False refs moved {drift}"
