"""Small text formatters shared by the widgets."""

from __future__ import annotations


def size_text(size: int) -> str:
    """1048576 -> '1 MiB', 4096 -> '4 KiB', 100 -> '100 B' (exact binary units only)."""
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}"
    return f"{size} B"
