"""Collect decoded records into contiguous runs, then into a MemoryImage.

Records that continue the previous one (address == previous end) are appended to the
same bytearray, which is what keeps a million-record file cheap. Runs out of order are
sorted at the end; overlapping runs are an error that names the lines of both.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.core.errors import ImageFormatError
from app.core.image import MemoryImage, format_range


@dataclass
class _Run:
    start: int
    data: bytearray
    first_line: int
    last_line: int

    @property
    def end(self) -> int:
        return self.start + len(self.data)


class RunCollector:
    def __init__(self) -> None:
        self._runs: list[_Run] = []

    def add_records(
        self, addresses: np.ndarray, counts: np.ndarray, payload: np.ndarray, lines: np.ndarray
    ) -> None:
        """Add records in file order; ``payload`` is their data concatenated."""
        n = len(addresses)
        if n == 0:
            return
        ends = addresses + counts
        breaks = np.flatnonzero(addresses[1:] != ends[:-1]) + 1
        run_first = np.concatenate(([0], breaks))
        run_last = np.concatenate((breaks - 1, [n - 1]))
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        for f, last in zip(run_first.tolist(), run_last.tolist(), strict=True):
            start = int(addresses[f])
            data = payload[offsets[f] : offsets[last + 1]]
            line_lo, line_hi = int(lines[f]), int(lines[last])
            prev = self._runs[-1] if self._runs else None
            if prev is not None and prev.end == start:
                prev.data += data.tobytes()
                prev.last_line = line_hi
            else:
                self._runs.append(_Run(start, bytearray(data.tobytes()), line_lo, line_hi))

    def add_bytes(self, address: int, data: bytes, line: int) -> None:
        prev = self._runs[-1] if self._runs else None
        if prev is not None and prev.end == address:
            prev.data += data
            prev.last_line = line
        elif data:
            self._runs.append(_Run(address, bytearray(data), line, line))

    def to_image(self, source: str) -> MemoryImage:
        runs = sorted(self._runs, key=lambda r: r.start)
        merged: list[_Run] = []
        for run in runs:
            if merged and run.start < merged[-1].end:
                prev = merged[-1]
                raise ImageFormatError(
                    f"data at {format_range(run.start, min(run.end, prev.end))} overlaps data"
                    f" from line{_lines(prev)}",
                    path=source,
                    line=run.first_line,
                )
            if merged and run.start == merged[-1].end:
                merged[-1].data += run.data
                merged[-1].last_line = max(merged[-1].last_line, run.last_line)
            else:
                merged.append(run)
        image = MemoryImage()
        image._adopt_sorted([(r.start, r.data) for r in merged], source)
        return image


def _lines(run: _Run) -> str:
    if run.first_line == run.last_line:
        return f" {run.first_line}"
    return f"s {run.first_line}-{run.last_line}"
