"""MemoryImage: merging, overlap errors, reads with fill, relocation, crop, equality."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.core.errors import ImageRangeError
from app.core.image import MemoryImage


def test_adjacent_data_merges_into_one_segment() -> None:
    image = MemoryImage()
    image.add(0x10, b"\x01\x02", source="a")
    image.add(0x12, b"\x03", source="b")
    image.add(0x0E, b"\x00\x00", source="c")
    assert [(s.start, bytes(s.data)) for s in image.segments] == [(0x0E, b"\0\0\1\2\3")]


def test_overlap_names_both_sources() -> None:
    image = MemoryImage()
    image.add(0x100, b"\xaa" * 16, source="boot.hex")
    with pytest.raises(ImageRangeError) as err:
        image.add(0x108, b"\xbb" * 16, source="app.hex")
    message = str(err.value)
    assert "app.hex" in message and "boot.hex" in message and "0x108" in message


def test_last_wins_replaces_bytes() -> None:
    image = MemoryImage.from_bytes(b"\x00" * 8, 0)
    image.add(4, b"\xff" * 8, last_wins=True)
    assert image.read(0, 12) == b"\x00" * 4 + b"\xff" * 8
    assert len(image.segments) == 1


def test_read_fills_gaps_and_outside() -> None:
    image = MemoryImage.from_segments([(2, b"\x01"), (5, b"\x02\x03")])
    assert image.read(0, 8, fill=0xEE) == bytes([0xEE, 0xEE, 1, 0xEE, 0xEE, 2, 3, 0xEE])


def test_filled_view_is_zero_copy_for_one_segment() -> None:
    image = MemoryImage.from_bytes(bytes(range(16)), 0x1000)
    view = image.filled()
    assert isinstance(view, memoryview)
    assert bytes(view) == bytes(range(16))


def test_relocation_moves_data_and_start_address() -> None:
    image = MemoryImage.from_bytes(b"abc", 0x100)
    image.start_address = 0x100
    moved = image.relocated(-0x100)
    assert moved.min_address == 0 and moved.start_address == 0
    with pytest.raises(ImageRangeError):
        moved.relocated(-1)


def test_crop_and_range_check() -> None:
    image = MemoryImage.from_segments([(0, b"a" * 10), (0x20, b"b" * 4)], source="fw.hex")
    assert image.cropped(5, 0x22).segments[0].start == 5
    assert image.cropped(5, 0x22).max_address == 0x22
    with pytest.raises(ImageRangeError) as err:
        image.check_within(0, 0x21, "W25Q80")
    assert "[0x21, 0x24)" in str(err.value) and "W25Q80" in str(err.value)
    assert "fw.hex" in str(err.value)
    image.check_within(0, 0x24)


def test_equality_is_by_content() -> None:
    a = MemoryImage.from_segments([(0, b"ab"), (2, b"cd")])
    b = MemoryImage.from_bytes(b"abcd")
    assert a == b
    b.add(10, b"x")
    assert a != b


segments_strategy = st.lists(
    st.tuples(st.integers(0, 4096), st.binary(min_size=1, max_size=64)), max_size=12
)


@given(segments_strategy)
def test_last_wins_matches_a_flat_model(pieces: list[tuple[int, bytes]]) -> None:
    model: dict[int, int] = {}
    image = MemoryImage()
    for start, data in pieces:
        image.add(start, data, last_wins=True)
        for i, b in enumerate(data):
            model[start + i] = b
    assert image.data_bytes == len(model)
    segs = image.segments
    assert all(a.end < b.start for a, b in itertools.pairwise(segs))
    for seg in segs:
        for i, b in enumerate(seg.data):
            assert model[seg.start + i] == b
