"""Planner properties: erase covers every written byte, stays inside the part, and the
skip logic never skips a byte that differs; on uniform SPI NOR blocks and on non-uniform
STM32-like sectors alike."""

from __future__ import annotations

import tracemalloc

from hypothesis import given, settings
from hypothesis import strategies as st

from app.algorithms.base import EraseBlock, EraseRegion, Geometry
from app.core.image import MemoryImage
from app.devicedb.facts import Timing
from app.engine.planner import cover_units, plan_program

NOR_BLOCKS = (
    EraseBlock(0x20, 4096, Timing(45, 400)),
    EraseBlock(0x52, 32768, Timing(120, 1600)),
    EraseBlock(0xD8, 65536, Timing(150, 2000)),
)
NOR = Geometry(
    size=256 * 1024,
    page_size=256,
    regions=(EraseRegion(0, 256 * 1024, NOR_BLOCKS),),
    chip_erase=EraseBlock(0xC7, 256 * 1024, Timing(1000, 5000)),
    erased_value=0xFF,
    program=Timing(0.4, 3),
)


@st.composite
def images(draw: st.DrawFn) -> MemoryImage:
    image = MemoryImage()
    for _ in range(draw(st.integers(1, 6))):
        start = draw(st.integers(0, NOR.size - 1))
        data = draw(st.binary(min_size=1, max_size=5000))[: NOR.size - start]
        image.add(start, data, last_wins=True)
    return image


def _simulate(plan, before: bytearray) -> bytearray:
    """Apply a plan to a NOR array: erase sets erased value, program ANDs."""
    part = bytearray(before)
    if plan.chip_erase:
        part[:] = b"\xff" * len(part)
    for block, addr in plan.erase:
        part[addr : addr + block.size] = b"\xff" * block.size
    for addr, data in plan.writes:
        for i, b in enumerate(data):
            part[addr + i] &= b
    return part


@settings(max_examples=150, deadline=None)
@given(images(), st.sampled_from(["auto", "full"]))
def test_programming_the_plan_yields_the_image(image: MemoryImage, mode: str) -> None:
    before = bytearray(NOR.size)  # a part full of zeros: only erase can bring 1s back
    plan = plan_program(NOR, image, mode)
    after = _simulate(plan, before)
    for seg in image.segments:
        assert bytes(after[seg.start : seg.end]) == bytes(seg.data)
    for lo, hi in plan.expected.ranges:
        assert bytes(after[lo:hi]) == plan.expected.read(lo, hi)


@settings(max_examples=150, deadline=None)
@given(images())
def test_erase_is_aligned_inside_the_part_and_covers_writes(image: MemoryImage) -> None:
    plan = plan_program(NOR, image, "auto")
    erased = set()
    for block, addr in plan.erase:
        assert addr % block.size == 0
        assert addr >= 0 and addr + block.size <= NOR.size
        erased.update(range(addr // 4096, (addr + block.size) // 4096))
    for seg in image.segments:
        for unit in range(seg.start // 4096, (seg.end - 1) // 4096 + 1):
            assert unit in erased
    # Never erase a 4 KiB unit the image does not touch.
    touched = {
        u for seg in image.segments for u in range(seg.start // 4096, (seg.end - 1) // 4096 + 1)
    }
    assert erased == touched
    for addr, data in plan.writes:
        assert addr // NOR.page_size == (addr + len(data) - 1) // NOR.page_size
        assert data != b"\xff" * len(data)


@settings(max_examples=100, deadline=None)
@given(images(), st.data())
def test_skip_matching_never_skips_a_differing_byte(
    image: MemoryImage, data: st.DataObject
) -> None:
    before = bytearray(b"\xff" * NOR.size)
    for seg in image.segments:  # the part already holds the image, with a few changes
        before[seg.start : seg.end] = seg.data
    for _ in range(data.draw(st.integers(0, 3))):
        pos = data.draw(st.integers(0, NOR.size - 1))
        before[pos] ^= data.draw(st.integers(1, 255))
    plan = plan_program(NOR, image, "auto", current=lambda lo, hi: bytes(before[lo:hi]))
    after = _simulate(plan, before)
    for seg in image.segments:
        assert bytes(after[seg.start : seg.end]) == bytes(seg.data)


def test_largest_blocks_are_used_when_aligned() -> None:
    units = [*range(0, 0x20000, 4096), 0x21000]
    plan = cover_units(units, NOR.regions[0])
    assert [(b.size, a) for b, a in plan] == [(65536, 0), (65536, 0x10000), (4096, 0x21000)]


def test_blank_pages_are_skipped_after_erase() -> None:
    image = MemoryImage.from_bytes(b"\xff" * 256 + b"\x00" * 256, 0)
    plan = plan_program(NOR, image, "auto")
    assert [addr for addr, _ in plan.writes] == [256]


def test_eeprom_without_erase_writes_only_image_bytes() -> None:
    eeprom = Geometry(1024, 16, (), None, 0xFF, Timing(3, 5), fill_pages=False)
    image = MemoryImage.from_segments([(5, b"abc"), (14, b"0123")])
    plan = plan_program(eeprom, image, "auto")
    assert tuple(plan.writes) == ((5, b"abc"), (14, b"01"), (16, b"23"))
    full = plan_program(eeprom, image, "full")
    assert len(full.writes) == 1024 // 16 and full.expected.data_bytes == 1024


# -- non-uniform layouts (STM32 F2/F4/F7 sectors, pages elsewhere) ---------------------

UNIT_SIZES = (256, 512, 1024, 2048)


@st.composite
def layouts(draw: st.DrawFn) -> Geometry:
    """Regions of different unit sizes; some offer a bigger block too (4 units)."""
    regions = []
    start = 0
    for _ in range(draw(st.integers(1, 4))):
        unit = draw(st.sampled_from(UNIT_SIZES))
        count = draw(st.integers(1, 3)) * 4
        blocks = (EraseBlock(0x44, unit, Timing(1, 2)),)
        if draw(st.booleans()):
            blocks += (EraseBlock(0x45, 4 * unit, Timing(2, 4)),)
        regions.append(EraseRegion(start, count * unit, blocks))
        start += count * unit
    return Geometry(
        size=start,
        page_size=128,
        regions=tuple(regions),
        chip_erase=EraseBlock(0xFF, start, Timing(10, 20)) if draw(st.booleans()) else None,
        erased_value=draw(st.sampled_from([0xFF, 0x00])),
        program=Timing(1, 2),
    )


@st.composite
def layouts_and_images(draw: st.DrawFn) -> tuple[Geometry, MemoryImage]:
    geometry = draw(layouts())
    image = MemoryImage()
    for _ in range(draw(st.integers(1, 4))):
        start = draw(st.integers(0, geometry.size - 1))
        data = draw(st.binary(min_size=1, max_size=3000))[: geometry.size - start]
        image.add(start, data, last_wins=True)
    return geometry, image


def _unit_starts(geometry: Geometry, lo: int, hi: int) -> set[int]:
    """Starts of the smallest units overlapping [lo, hi)."""
    return {
        addr
        for region in geometry.regions
        for addr in range(region.start, region.end, region.unit)
        if addr < hi and addr + region.unit > lo
    }


@settings(max_examples=200, deadline=None)
@given(layouts_and_images())
def test_non_uniform_erase_covers_exactly_the_touched_units_once(
    case: tuple[Geometry, MemoryImage],
) -> None:
    geometry, image = case
    plan = plan_program(geometry, image, "auto")
    erased: list[int] = []  # smallest units, with repeats if erased twice
    for block, addr in plan.erase:
        region = next(r for r in geometry.regions if r.start <= addr < r.end)
        assert block in region.blocks
        assert (addr - region.start) % block.size == 0 and addr + block.size <= region.end
        erased += range(addr, addr + block.size, region.unit)
    assert len(erased) == len(set(erased)), "a unit is erased twice"
    touched = set().union(*(_unit_starts(geometry, s.start, s.end) for s in image.segments))
    assert set(erased) == touched
    ranges = plan.erased_ranges(geometry.size)
    for addr, data in plan.writes:
        assert any(lo <= addr and addr + len(data) <= hi for lo, hi in ranges), hex(addr)
        assert addr // geometry.page_size == (addr + len(data) - 1) // geometry.page_size


def _apply(plan, geometry: Geometry, before: bytearray) -> bytearray:
    """Erase sets the erased value; program writes over erased cells only."""
    part = bytearray(before)
    erased = geometry.erased_value
    for lo, hi in plan.erased_ranges(geometry.size):
        part[lo:hi] = bytes([erased]) * (hi - lo)
    for addr, data in plan.writes:
        for i, b in enumerate(data):
            if b != erased:
                assert part[addr + i] == erased, f"programming 0x{addr + i:X}, not erased"
                part[addr + i] = b
    return part


@settings(max_examples=150, deadline=None)
@given(layouts_and_images(), st.sampled_from(["auto", "full"]))
def test_non_uniform_plan_yields_the_image(case: tuple[Geometry, MemoryImage], mode: str) -> None:
    geometry, image = case
    before = bytearray([0x5A]) * geometry.size  # old firmware everywhere
    plan = plan_program(geometry, image, mode)
    after = _apply(plan, geometry, before)
    for lo, hi in plan.expected.ranges:
        assert bytes(after[lo:hi]) == plan.expected.read(lo, hi)
    for seg in image.segments:
        assert bytes(after[seg.start : seg.end]) == bytes(seg.data)
    if mode == "full":  # a chip erase, or every unit once in the largest blocks
        assert plan.chip_erase == (geometry.chip_erase is not None)
        assert sum(block.size for block, _ in plan.erase) in (0, geometry.size)
        assert _coalesced(plan.erased_ranges(geometry.size)) == [(0, geometry.size)]


def _coalesced(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if out and lo == out[-1][1]:
            out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return out


@settings(max_examples=100, deadline=None)
@given(layouts_and_images(), st.data())
def test_non_uniform_skip_matching_never_skips_a_differing_byte(
    case: tuple[Geometry, MemoryImage], data: st.DataObject
) -> None:
    geometry, image = case
    before = bytearray([geometry.erased_value]) * geometry.size
    for seg in image.segments:
        before[seg.start : seg.end] = seg.data
    for _ in range(data.draw(st.integers(0, 3))):
        pos = data.draw(st.integers(0, geometry.size - 1))
        before[pos] ^= data.draw(st.integers(1, 255))
    plan = plan_program(geometry, image, "auto", current=lambda lo, hi: bytes(before[lo:hi]))
    after = _apply(plan, geometry, before)
    for seg in image.segments:
        assert bytes(after[seg.start : seg.end]) == bytes(seg.data)


def test_stm32_f4_sectors_are_planned_by_the_planner(database) -> None:
    """16/64/128 KiB sectors: an image in sectors 1-2 erases just those two."""
    from app.algorithms.stm32_uart import Stm32Uart

    geometry = Stm32Uart(None, database.get("st.stm32f40x-f41x")).geometry
    image = MemoryImage.from_bytes(b"\x01" * 20 * 1024, 0x4000)
    plan = plan_program(geometry, image, "auto")
    assert [(block.size, addr) for block, addr in plan.erase] == [(16384, 0x4000), (16384, 0x8000)]
    image = MemoryImage.from_segments([(0xF000, b"\x02" * 0x2000), (0x30000, b"\x03")])
    plan = plan_program(geometry, image, "auto")
    assert [(block.size, addr) for block, addr in plan.erase] == [
        (16384, 0xC000),  # sector 3
        (65536, 0x10000),  # sector 4
        (131072, 0x20000),  # sector 5
    ]


# -- plans refer to the shared image instead of copying it -----------------------------


def test_a_plan_for_16_mib_holds_no_copy_of_the_image() -> None:
    image = MemoryImage.from_bytes(bytes(range(256)) * 65536)
    big = Geometry(1 << 24, 256, (EraseRegion(0, 1 << 24, NOR_BLOCKS),), None, 0xFF, NOR.program)
    tracemalloc.start()
    try:
        plan = plan_program(big, image, "auto")
        held, _peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(plan.writes) == 65536 and plan.program_bytes == 1 << 24
    assert held < 2 << 20, f"the plan holds {held} bytes for a 16 MiB image"
    assert plan.expected.data_bytes == 1 << 24


@settings(max_examples=100, deadline=None)
@given(images(), st.sampled_from(["auto", "full", "none"]))
def test_page_writes_slice_and_index_alike(image: MemoryImage, mode: str) -> None:
    writes = plan_program(NOR, image, mode).writes
    pairs = [writes[i] for i in range(len(writes))]
    assert list(writes) == pairs
    assert list(writes[3:20]) == pairs[3:20] and list(writes[-5:]) == pairs[-5:]
    assert writes.byte_count == sum(len(d) for _, d in pairs)
    for addr, data in pairs:  # whole pages, the image's bytes, erased value around them
        assert addr % NOR.page_size == 0 and len(data) == NOR.page_size
        assert data == image.read(addr, addr + NOR.page_size, 0xFF)


@settings(max_examples=100, deadline=None)
@given(images(), st.data())
def test_units_read_blank_are_programmed_without_an_erase(
    image: MemoryImage, data: st.DataObject
) -> None:
    unit = NOR.regions[0].unit
    before = bytearray(b"\xff" * NOR.size)
    for addr in range(0, NOR.size, unit):  # some units hold old data, the rest are blank
        if data.draw(st.booleans()):
            before[addr : addr + unit] = bytes([0x5A]) * unit
    plan = plan_program(NOR, image, "auto", current=lambda lo, hi: bytes(before[lo:hi]))
    erased = {a for lo, hi in plan.erased_ranges(NOR.size) for a in range(lo, hi, unit)}
    assert not erased & set(plan.blank_units)
    for a in plan.blank_units:
        assert before[a : a + unit] == b"\xff" * unit
    after = _simulate(plan, before)
    for lo, hi in plan.expected.ranges:  # the image, and blank around it where checked
        assert bytes(after[lo:hi]) == plan.expected.read(lo, hi)
