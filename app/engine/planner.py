"""Planner: which blocks to erase, which pages to program, what to verify.

- ``auto`` erases only the smallest erase units the image touches, covered with the
  largest aligned erase commands that fit, region by region (a part's erase regions may
  differ: STM32 F4 sectors are 16, 64 and 128 KiB); ``full`` erases the chip; ``none``
  erases nothing.
- After an erase, pages whose bytes are all the erased value are not programmed.
- With ``current`` (the part's present content), units whose content already matches
  the image are neither erased nor programmed, and units that read blank (all erased
  value) are programmed without an erase: erasing them again changes nothing but costs
  the erase time (flashrom, which reads first, skips them too).
- Inside an erased unit, bytes the image does not define end up erased; verify checks
  them too (expected = image, erased value elsewhere in erased units).
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import overload

from app.algorithms.base import EraseBlock, EraseRegion, Geometry
from app.core.image import MemoryImage

ContentReader = Callable[[int, int], bytes]


class PageWrites(Sequence[tuple[int, bytes]]):
    """The page writes of a plan, as (address, data) pairs made on demand.

    Only each write's range is stored (two machine words); the data is read from the
    shared, read-only image when the algorithm asks for it. Sixteen sites programming
    one 16 MiB image so hold one copy of it, not sixteen copies split into pages.
    """

    def __init__(self, image: MemoryImage, fill: int, ranges: Iterable[tuple[int, int]]) -> None:
        self._image = image
        self._fill = fill
        self._starts = array("q")
        self._ends = array("q")
        for lo, hi in ranges:
            self._starts.append(lo)
            self._ends.append(hi)

    def __len__(self) -> int:
        return len(self._starts)

    @overload
    def __getitem__(self, index: int) -> tuple[int, bytes]: ...

    @overload
    def __getitem__(self, index: slice) -> list[tuple[int, bytes]]: ...

    def __getitem__(self, index: int | slice) -> tuple[int, bytes] | list[tuple[int, bytes]]:
        if isinstance(index, slice):  # an algorithm's batch: a few pages, made now
            read, fill = self._image.read, self._fill
            starts, ends = self._starts[index], self._ends[index]
            return [(lo, read(lo, hi, fill)) for lo, hi in zip(starts, ends, strict=True)]
        lo = self._starts[index]
        return lo, self._image.read(lo, self._ends[index], self._fill)

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        read, fill = self._image.read, self._fill
        for lo, hi in zip(self._starts, self._ends, strict=True):
            yield lo, read(lo, hi, fill)

    @property
    def byte_count(self) -> int:
        return sum(self._ends) - sum(self._starts)


class Expected:
    """What the part must hold after a plan, where it is checked: the image's bytes, and
    the erased value in the rest of every erased range. Read on demand from the image."""

    def __init__(self, image: MemoryImage, fill: int, ranges: Iterable[tuple[int, int]]) -> None:
        self._image = image
        self.fill = fill
        self.ranges = tuple(_coalesce(ranges))

    @classmethod
    def of_image(cls, image: MemoryImage) -> Expected:
        """Exactly the image's bytes (a verify against a file)."""
        return cls(image, 0xFF, ((s.start, s.end) for s in image.segments))

    @property
    def data_bytes(self) -> int:
        return sum(hi - lo for lo, hi in self.ranges)

    def read(self, start: int, end: int) -> bytes:
        return self._image.read(start, end, self.fill)


@dataclass(frozen=True)
class Plan:
    chip_erase: bool
    erase: tuple[tuple[EraseBlock, int], ...]  # (block kind, address)
    writes: PageWrites  # each within one page
    expected: Expected  # what the part must hold afterwards, where it is checked
    skipped_units: tuple[int, ...] = field(default=())  # addresses of units left as they were
    #: units read blank before programming (``current``): programmed without an erase,
    #: as flashrom does; their erased value is still verified around the image
    blank_units: tuple[int, ...] = field(default=())

    @property
    def erase_bytes(self) -> int:
        return sum(block.size for block, _ in self.erase)

    @property
    def program_bytes(self) -> int:
        return self.writes.byte_count

    def erased_ranges(self, size: int) -> list[tuple[int, int]]:
        if self.chip_erase:
            return [(0, size)]
        return [(addr, addr + block.size) for block, addr in self.erase]


def touched_units(image: MemoryImage, region: EraseRegion) -> list[int]:
    """Start addresses of the ``region``'s smallest erase units holding image data,
    ascending."""
    unit = region.unit
    units: list[int] = []
    for seg in image.segments_in(region.start, region.end):
        lo, hi = max(seg.start, region.start), min(seg.end, region.end)
        for addr in range(lo - (lo - region.start) % unit, hi, unit):
            if not units or units[-1] != addr:
                units.append(addr)
    return units


def cover_units(units: list[int], region: EraseRegion) -> list[tuple[EraseBlock, int]]:
    """Cover the sorted unit addresses of ``region`` with the largest aligned erase blocks
    that lie entirely inside the set (never erasing a unit that is not in it)."""
    blocks = region.blocks
    wanted = set(units)
    plan: list[tuple[EraseBlock, int]] = []
    i = 0
    while i < len(units):
        addr = units[i]
        chosen = blocks[0]
        for block in reversed(blocks):
            if (addr - region.start) % block.size or addr + block.size > region.end:
                continue
            if all(a in wanted for a in range(addr, addr + block.size, region.unit)):
                chosen = block
                break
        plan.append((chosen, addr))
        end = addr + chosen.size
        while i < len(units) and units[i] < end:
            i += 1
    return plan


def _holds_image(image: MemoryImage, have: bytes, lo: int, hi: int) -> bool:
    """Whether ``have`` (the part's [lo, hi)) already holds the image's bytes there."""
    return all(
        have[s - lo : e - lo] == bytes(seg.data[s - seg.start : e - seg.start])
        for seg in image.segments_in(lo, hi)
        for s, e in [(max(seg.start, lo), min(seg.end, hi))]
    )


def _page_writes(
    image: MemoryImage, geometry: Geometry, ranges: list[tuple[int, int]], skip_erased: bool
) -> PageWrites:
    """Writes for the image data inside ``ranges``, split at page boundaries; with
    ``fill_pages`` whole pages, gaps in them filled with the erased value."""
    page = geometry.page_size
    erased = geometry.erased_value
    blank_page = bytes([erased]) * page
    spans: list[tuple[int, int]] = []
    for lo, hi in ranges:
        for seg in image.segments_in(lo, hi):
            s, e = max(seg.start, lo), min(seg.end, hi)
            if geometry.fill_pages:
                s, e = s - s % page, e + -e % page
            pos = s
            while pos < e:
                stop = min(e, pos - pos % page + page)
                new = not spans or spans[-1][0] != pos  # two segments in one page: once
                if new and not (
                    skip_erased and image.filled(erased, pos, stop) == blank_page[: stop - pos]
                ):
                    spans.append((pos, stop))
                pos = stop
    spans.sort()
    return PageWrites(image, erased, spans)


def _coalesce(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted ranges with touching neighbours joined (one buffer per run, not per block)."""
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def _cover_all(regions: tuple[EraseRegion, ...]) -> list[tuple[EraseBlock, int]]:
    """Every unit of every region, in the largest blocks."""
    return [
        pair
        for region in regions
        for pair in cover_units(list(range(region.start, region.end, region.unit)), region)
    ]


def plan_program(
    geometry: Geometry,
    image: MemoryImage,
    erase_mode: str = "auto",
    current: ContentReader | None = None,
) -> Plan:
    """Plan erase + program + verify for ``image`` (already cropped to the part)."""
    if erase_mode not in ("auto", "full", "none"):
        raise ValueError(f"erase mode {erase_mode!r}")
    can_erase = bool(geometry.regions)
    erased = geometry.erased_value
    whole = [(0, geometry.size)]
    if erase_mode == "full":
        if can_erase or geometry.chip_erase:
            writes = _page_writes(image, geometry, whole, skip_erased=True)
            chip = geometry.chip_erase is not None
            every_unit = () if chip else tuple(_cover_all(geometry.regions))
            return Plan(chip, every_unit, writes, Expected(image, erased, whole))
        # No erase command (EEPROM): write the erased value over the whole part.
        page = geometry.page_size
        pages = ((a, min(a + page, geometry.size)) for a in range(0, geometry.size, page))
        return Plan(False, (), PageWrites(image, erased, pages), Expected(image, erased, whole))

    if erase_mode == "none" or not can_erase:
        # On NOR the erased-value fill around the image's bytes in a page programs
        # nothing, so only the image's own bytes are checked afterwards.
        writes = _page_writes(image, geometry, whole, skip_erased=False)
        return Plan(False, (), writes, Expected.of_image(image))

    blocks: list[tuple[EraseBlock, int]] = []
    skipped: list[int] = []
    blank: list[tuple[int, int]] = []  # read blank: programmed without an erase
    for region in geometry.regions:
        units = touched_units(image, region)
        if current is not None:
            to_erase = []
            for a in units:
                have = current(a, a + region.unit)
                if _holds_image(image, have, a, a + region.unit):
                    skipped.append(a)
                elif have.count(erased) == len(have):
                    blank.append((a, a + region.unit))
                else:
                    to_erase.append(a)
            units = to_erase
        blocks += cover_units(units, region)
    ranges = [(addr, addr + block.size) for block, addr in blocks]
    writes = _page_writes(image, geometry, sorted(ranges + blank), skip_erased=True)
    checked = [*ranges, *blank, *((seg.start, seg.end) for seg in image.segments)]
    return Plan(
        False,
        tuple(blocks),
        writes,
        Expected(image, erased, checked),
        tuple(skipped),
        tuple(a for a, _ in blank),
    )
