"""Planner properties: erase covers every written byte, stays inside the part, and the
skip logic never skips a byte that differs."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from app.algorithms.base import EraseBlock, Geometry
from app.core.image import MemoryImage
from app.engine.planner import cover_units, plan_program

NOR = Geometry(
    size=256 * 1024,
    page_size=256,
    erase_blocks=(
        EraseBlock(0x20, 4096, 45, 400),
        EraseBlock(0x52, 32768, 120, 1600),
        EraseBlock(0xD8, 65536, 150, 2000),
    ),
    chip_erase=EraseBlock(0xC7, 256 * 1024, 1000, 5000),
    erased_value=0xFF,
    program_ms_typ=0.4,
    program_ms_max=3,
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
    for seg in plan.expected.segments:
        assert bytes(after[seg.start : seg.end]) == bytes(seg.data)


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
    plan = cover_units(units, NOR.erase_blocks, NOR.size)
    assert [(b.size, a) for b, a in plan] == [(65536, 0), (65536, 0x10000), (4096, 0x21000)]


def test_blank_pages_are_skipped_after_erase() -> None:
    image = MemoryImage.from_bytes(b"\xff" * 256 + b"\x00" * 256, 0)
    plan = plan_program(NOR, image, "auto")
    assert [addr for addr, _ in plan.writes] == [256]


def test_eeprom_without_erase_writes_only_image_bytes() -> None:
    eeprom = Geometry(1024, 16, (), None, 0xFF, 3, 5, fill_pages=False)
    image = MemoryImage.from_segments([(5, b"abc"), (14, b"0123")])
    plan = plan_program(eeprom, image, "auto")
    assert plan.writes == ((5, b"abc"), (14, b"01"), (16, b"23"))
    full = plan_program(eeprom, image, "full")
    assert len(full.writes) == 1024 // 16 and full.expected.data_bytes == 1024
