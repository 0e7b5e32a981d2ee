"""Sparse memory image: what a firmware file describes and what gets programmed.

A MemoryImage holds sorted, non-overlapping, non-adjacent segments (adjacent data is
merged). Every byte added is tagged with where it came from, so an overlap error can
name both sources.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from app.core.errors import ImageRangeError


@dataclass(frozen=True)
class Segment:
    """One contiguous run of data: the half-open range [start, end)."""

    start: int
    data: bytes | bytearray | memoryview

    @property
    def end(self) -> int:
        return self.start + len(self.data)


@dataclass(frozen=True)
class _Provenance:
    start: int
    end: int
    source: str


def format_range(start: int, end: int) -> str:
    return f"[0x{start:X}, 0x{end:X})"


class MemoryImage:
    """Sparse byte image addressed by int; see module docstring."""

    def __init__(self, *, start_address: int | None = None, header: bytes | None = None) -> None:
        self._starts: list[int] = []
        self._datas: list[bytearray] = []
        self._provenance: list[_Provenance] = []
        self.start_address = start_address
        self.header = header
        #: what the reader noticed but did not refuse (e.g. no termination record)
        self.warnings: list[str] = []

    # -- building -------------------------------------------------------------------

    @classmethod
    def from_bytes(cls, data: bytes, base: int = 0, *, source: str = "data") -> MemoryImage:
        image = cls()
        image.add(base, data, source=source)
        return image

    @classmethod
    def from_segments(
        cls,
        segments: Iterable[tuple[int, bytes | bytearray]],
        *,
        source: str = "data",
        last_wins: bool = False,
    ) -> MemoryImage:
        image = cls()
        for start, data in segments:
            image.add(start, data, source=source, last_wins=last_wins)
        return image

    def add(
        self,
        start: int,
        data: bytes | bytearray | memoryview,
        *,
        source: str = "data",
        last_wins: bool = False,
    ) -> None:
        """Place ``data`` at ``start``.

        Overlapping existing data is an ImageRangeError naming both sources, unless
        ``last_wins`` is set, in which case the new bytes replace the old ones.
        """
        if not data:
            return
        if start < 0:
            raise ImageRangeError(f"{source}: negative address {start}")
        end = start + len(data)
        first = bisect.bisect_right(self._starts, start) - 1
        if first < 0:
            first = 0
        # Segments touching or overlapping [start, end) are merged into one.
        lo = first
        while lo < len(self._starts) and self._starts[lo] + len(self._datas[lo]) < start:
            lo += 1
        hi = lo
        while hi < len(self._starts) and self._starts[hi] <= end:
            seg_start = self._starts[hi]
            seg_end = seg_start + len(self._datas[hi])
            if seg_start < end and seg_end > start and not last_wins:
                other = self._source_at(max(seg_start, start), min(seg_end, end))
                raise ImageRangeError(
                    f"{source}: data at {format_range(max(seg_start, start), min(seg_end, end))}"
                    f" overlaps data from {other}"
                )
            hi += 1
        self._provenance.append(_Provenance(start, end, source))
        if lo == hi:
            self._starts.insert(lo, start)
            self._datas.insert(lo, bytearray(data))
            return
        new_start = min(start, self._starts[lo])
        last_end = self._starts[hi - 1] + len(self._datas[hi - 1])
        new_end = max(end, last_end)
        if lo + 1 == hi and self._starts[lo] <= start and last_end >= end:
            # Entirely inside one segment (last_wins): patch in place.
            buf = self._datas[lo]
            offset = start - self._starts[lo]
            buf[offset : offset + len(data)] = data
            return
        merged = bytearray(new_end - new_start)
        for i in range(lo, hi):
            offset = self._starts[i] - new_start
            merged[offset : offset + len(self._datas[i])] = self._datas[i]
        merged[start - new_start : end - new_start] = data
        self._starts[lo:hi] = [new_start]
        self._datas[lo:hi] = [merged]

    def _adopt_sorted(self, runs: list[tuple[int, bytearray]], source: str) -> None:
        """Take sorted, disjoint, non-adjacent runs without copying (readers' fast path)."""
        if self._starts:
            raise ValueError("_adopt_sorted needs an empty image")
        self._starts = [start for start, _ in runs]
        self._datas = [data for _, data in runs]
        if runs:
            self._provenance = [_Provenance(runs[0][0], runs[-1][0] + len(runs[-1][1]), source)]

    def _source_at(self, start: int, end: int) -> str:
        names = [p.source for p in self._provenance if p.start < end and p.end > start]
        unique = list(dict.fromkeys(names))
        return ", ".join(unique) if unique else "an earlier segment"

    # -- queries --------------------------------------------------------------------

    @property
    def segments(self) -> list[Segment]:
        return [Segment(s, d) for s, d in zip(self._starts, self._datas, strict=True)]

    @property
    def is_empty(self) -> bool:
        return not self._starts

    @property
    def min_address(self) -> int:
        if not self._starts:
            raise ImageRangeError("the image holds no data")
        return self._starts[0]

    @property
    def max_address(self) -> int:
        """Exclusive end of the highest segment."""
        if not self._starts:
            raise ImageRangeError("the image holds no data")
        return self._starts[-1] + len(self._datas[-1])

    @property
    def data_bytes(self) -> int:
        return sum(len(d) for d in self._datas)

    def read(self, start: int, end: int, fill: int = 0xFF) -> bytes:
        """The bytes of [start, end), gaps filled with ``fill``."""
        return bytes(self._read_view(start, end, fill))

    def _read_view(self, start: int, end: int, fill: int) -> bytes | memoryview | bytearray:
        if end < start:
            raise ImageRangeError(f"empty range {format_range(start, end)}")
        i = bisect.bisect_right(self._starts, start) - 1
        if i >= 0:
            seg_start = self._starts[i]
            data = self._datas[i]
            if seg_start <= start and end <= seg_start + len(data):
                return memoryview(data)[start - seg_start : end - seg_start]
        out = bytearray([fill & 0xFF]) * (end - start)
        for seg in self.segments_in(start, end):
            s = max(seg.start, start)
            e = min(seg.end, end)
            out[s - start : e - start] = memoryview(seg.data)[s - seg.start : e - seg.start]
        return out

    def filled(
        self, fill: int = 0xFF, start: int | None = None, end: int | None = None
    ) -> bytes | memoryview | bytearray:
        """A bytes-like view of [start, end) (default: lowest to highest address).

        When one segment covers the range this is a zero-copy memoryview; otherwise a
        new buffer with gaps set to ``fill``.
        """
        lo = self.min_address if start is None else start
        hi = self.max_address if end is None else end
        return self._read_view(lo, hi, fill)

    def segments_in(self, start: int, end: int) -> Iterator[Segment]:
        i = max(bisect.bisect_right(self._starts, start) - 1, 0)
        while i < len(self._starts) and self._starts[i] < end:
            seg_end = self._starts[i] + len(self._datas[i])
            if seg_end > start:
                yield Segment(self._starts[i], self._datas[i])
            i += 1

    # -- transforms -----------------------------------------------------------------

    def relocated(self, offset: int) -> MemoryImage:
        """A copy with every address moved by ``offset`` (may be negative)."""
        if self._starts and self._starts[0] + offset < 0:
            raise ImageRangeError(
                f"offset {offset:#x} moves data at 0x{self._starts[0]:X} below address 0"
            )
        out = MemoryImage(header=self.header)
        if self.start_address is not None:
            out.start_address = self.start_address + offset
        out._starts = [s + offset for s in self._starts]
        out._datas = [bytearray(d) for d in self._datas]
        out._provenance = [
            _Provenance(p.start + offset, p.end + offset, p.source) for p in self._provenance
        ]
        return out

    def cropped(self, start: int, end: int) -> MemoryImage:
        """A copy holding only the data inside [start, end)."""
        out = MemoryImage(start_address=self.start_address, header=self.header)
        for seg in self.segments_in(start, end):
            s = max(seg.start, start)
            e = min(seg.end, end)
            out._starts.append(s)
            out._datas.append(bytearray(memoryview(seg.data)[s - seg.start : e - seg.start]))
        out._provenance = [p for p in self._provenance if p.start < end and p.end > start]
        return out

    def check_within(self, start: int, end: int, what: str = "the device") -> None:
        """Raise ImageRangeError naming the first data outside [start, end)."""
        for seg_start, data in zip(self._starts, self._datas, strict=True):
            seg_end = seg_start + len(data)
            if seg_start < start or seg_end > end:
                out_lo = seg_start if seg_start < start else max(seg_start, end)
                out_hi = min(seg_end, start) if seg_start < start else seg_end
                raise ImageRangeError(
                    f"{self._source_at(out_lo, out_hi)}: data at {format_range(out_lo, out_hi)}"
                    f" lies outside {what} range {format_range(start, end)}"
                )

    def copy(self) -> MemoryImage:
        return self.relocated(0)

    # -- comparison -----------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        """Images are equal when they hold the same bytes at the same addresses."""
        if not isinstance(other, MemoryImage):
            return NotImplemented
        return self._starts == other._starts and self._datas == other._datas

    def __hash__(self) -> int:  # mutable container
        raise TypeError("MemoryImage is mutable and not hashable")

    def __repr__(self) -> str:
        ranges = ", ".join(format_range(s.start, s.end) for s in self.segments[:4])
        more = "" if len(self._starts) <= 4 else f", ... ({len(self._starts)} segments)"
        return f"MemoryImage({ranges}{more})"
