"""Planner: which blocks to erase, which pages to program, what to verify.

- ``auto`` erases only the smallest erase units the image touches, covered with the
  largest aligned erase commands that fit, region by region (a part's erase regions may
  differ: STM32 F4 sectors are 16, 64 and 128 KiB); ``full`` erases the chip; ``none``
  erases nothing.
- After an erase, pages whose bytes are all the erased value are not programmed.
- With ``current`` (the part's present content), units whose content already matches
  the image are neither erased nor programmed.
- Inside an erased unit, bytes the image does not define end up erased; verify checks
  them too (expected = image, erased value elsewhere in erased units).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from app.algorithms.base import EraseBlock, EraseRegion, Geometry
from app.core.image import MemoryImage

ContentReader = Callable[[int, int], bytes]


@dataclass(frozen=True)
class Plan:
    chip_erase: bool
    erase: tuple[tuple[EraseBlock, int], ...]  # (block kind, address)
    writes: tuple[tuple[int, bytes], ...]  # (address, data within one page)
    expected: MemoryImage  # what the part must hold afterwards, where it is checked
    skipped_units: tuple[int, ...] = field(default=())  # addresses of units left as they were

    @property
    def erase_bytes(self) -> int:
        return sum(block.size for block, _ in self.erase)

    @property
    def program_bytes(self) -> int:
        return sum(len(d) for _, d in self.writes)

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


def _holds_image(image: MemoryImage, current: ContentReader, lo: int, hi: int) -> bool:
    """Whether the part's [lo, hi) already holds the image's bytes there."""
    have = current(lo, hi)
    return all(
        have[s - lo : e - lo] == bytes(seg.data[s - seg.start : e - seg.start])
        for seg in image.segments_in(lo, hi)
        for s, e in [(max(seg.start, lo), min(seg.end, hi))]
    )


def _page_writes(
    image: MemoryImage, geometry: Geometry, ranges: list[tuple[int, int]], skip_erased: bool
) -> list[tuple[int, bytes]]:
    """Writes for the image data inside ``ranges``, split at page boundaries."""
    page = geometry.page_size
    erased = geometry.erased_value
    blank_page = bytes([erased]) * page
    writes: list[tuple[int, bytes]] = []
    for lo, hi in ranges:
        for seg in image.segments_in(lo, hi):
            s, e = max(seg.start, lo), min(seg.end, hi)
            if geometry.fill_pages:
                first = s - s % page
                for addr in range(first, e, page):
                    if writes and writes[-1][0] == addr:
                        continue
                    data = image.read(addr, addr + page, erased)
                    if skip_erased and data == blank_page:
                        continue
                    writes.append((addr, data))
            else:
                pos = s
                while pos < e:
                    stop = min(e, pos - pos % page + page)
                    data = bytes(seg.data[pos - seg.start : stop - seg.start])
                    if not (skip_erased and data == blank_page[: len(data)]):
                        writes.append((pos, data))
                    pos = stop
    writes.sort(key=lambda w: w[0])
    return writes


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
    if erase_mode == "full":
        if can_erase or geometry.chip_erase:
            expected = MemoryImage.from_bytes(bytes([erased]) * geometry.size)
            for seg in image.segments:
                expected.add(seg.start, seg.data, last_wins=True)
            writes = _page_writes(image, geometry, [(0, geometry.size)], skip_erased=True)
            chip = geometry.chip_erase is not None
            every_unit = () if chip else tuple(_cover_all(geometry.regions))
            return Plan(chip, every_unit, tuple(writes), expected)
        # No erase command (EEPROM): write the erased value over the whole part.
        full = MemoryImage.from_bytes(bytes([erased]) * geometry.size)
        for seg in image.segments:
            full.add(seg.start, seg.data, last_wins=True)
        writes = _page_writes(full, geometry, [(0, geometry.size)], skip_erased=False)
        return Plan(False, (), tuple(writes), full)

    if erase_mode == "none" or not can_erase:
        # On NOR the erased-value fill around the image's bytes in a page programs
        # nothing, so only the image's own bytes are checked afterwards.
        writes = _page_writes(image, geometry, [(0, geometry.size)], skip_erased=False)
        return Plan(False, (), tuple(writes), image.copy())

    blocks: list[tuple[EraseBlock, int]] = []
    skipped: list[int] = []
    for region in geometry.regions:
        units = touched_units(image, region)
        if current is not None:
            same = {a for a in units if _holds_image(image, current, a, a + region.unit)}
            skipped += sorted(same)
            units = [a for a in units if a not in same]
        blocks += cover_units(units, region)
    expected = MemoryImage()
    for lo, hi in _coalesce((addr, addr + block.size) for block, addr in blocks):
        expected.add(lo, bytes([erased]) * (hi - lo))
    for seg in image.segments:
        expected.add(seg.start, seg.data, last_wins=True)
    ranges = [(addr, addr + block.size) for block, addr in blocks]
    writes = _page_writes(image, geometry, ranges, skip_erased=True)
    return Plan(False, tuple(blocks), tuple(writes), expected, tuple(skipped))
