"""Property tests: every writer/reader pair round-trips; junk raises only ImageFormatError."""

from __future__ import annotations

import contextlib
import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.core.errors import ImageFormatError
from app.core.formats import write_image
from app.core.formats.ihex import read_ihex
from app.core.formats.srec import read_srec
from app.core.formats.titxt import read_titxt
from app.core.image import MemoryImage

READERS = {"ihex": read_ihex, "srec": read_srec, "ti-txt": read_titxt}


@st.composite
def images(draw: st.DrawFn, max_address: int = 0xFFFF_FF00) -> MemoryImage:
    image = MemoryImage()
    for _ in range(draw(st.integers(0, 6))):
        low = st.integers(0, min(0x2_0000, max_address))
        start = draw(st.one_of(low, st.integers(0, max_address)))
        data = draw(st.binary(min_size=1, max_size=300))[: max_address + 1 - start]
        image.add(start, data, last_wins=True)
    if draw(st.booleans()):
        image.start_address = draw(st.integers(0, 0xFFFF_FFFF))
    return image


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(images(), st.sampled_from(sorted(READERS)), st.integers(1, 64))
def test_text_formats_round_trip(image: MemoryImage, fmt: str, line_bytes: int) -> None:
    out = io.BytesIO()
    write_image(image, out, fmt, record_bytes=line_bytes)
    back = READERS[fmt](out.getvalue(), "mem")
    assert back == image
    if fmt != "ti-txt":
        assert back.start_address == image.start_address


@given(images(max_address=0xFFFF), st.sampled_from([2, 3, 4]))
def test_srec_forced_address_size_round_trips(image: MemoryImage, address_bytes: int) -> None:
    image.start_address = None
    out = io.BytesIO()
    write_image(image, out, "srec", address_bytes=address_bytes)
    record_type = {2: b"S1", 3: b"S2", 4: b"S3"}[address_bytes]
    if not image.is_empty:
        assert record_type in out.getvalue()
    assert read_srec(out.getvalue()) == image


@given(images(max_address=0x10_0000))
def test_binary_round_trips_filled_range(image: MemoryImage) -> None:
    out = io.BytesIO()
    write_image(image, out, "bin", fill=0xFF)
    if image.is_empty:
        assert out.getvalue() == b""
        return
    back = MemoryImage.from_bytes(out.getvalue(), image.min_address)
    assert back.read(image.min_address, image.max_address) == image.read(
        image.min_address, image.max_address
    )


@pytest.mark.parametrize("fmt", sorted(READERS))
@given(junk=st.binary(max_size=400))
def test_arbitrary_bytes_raise_only_format_errors(fmt: str, junk: bytes) -> None:
    try:
        READERS[fmt](junk, "junk")
    except ImageFormatError as err:
        assert err.path == "junk"


@pytest.mark.parametrize("fmt", sorted(READERS))
@given(data=st.data())
def test_mutated_valid_files_raise_only_format_errors(fmt: str, data: st.DataObject) -> None:
    image = data.draw(images(max_address=0x3_0000))
    out = io.BytesIO()
    write_image(image, out, fmt)
    text = bytearray(out.getvalue())
    for _ in range(data.draw(st.integers(1, 4))):
        if not text:
            break
        pos = data.draw(st.integers(0, len(text) - 1))
        text[pos] = data.draw(st.sampled_from(b"0123456789ABCDEFSq:@ \r\nG\x00\xff"))
    with contextlib.suppress(ImageFormatError):
        READERS[fmt](bytes(text), "mutated")


def _ihex(count_addr_type_data: str) -> bytes:
    body = bytes.fromhex(count_addr_type_data)
    return b":" + (body + bytes([(-sum(body)) & 0xFF])).hex().upper().encode() + b"\n"


def _srec(kind: str, body_hex: str) -> bytes:
    body = bytes.fromhex(body_hex)
    body = bytes([len(body) + 1]) + body
    return kind.encode() + (body + bytes([(~sum(body)) & 0xFF])).hex().upper().encode() + b"\n"


EOF_RECORD = b":00000001FF\n"


def test_ihex_segment_addressing_wraps_inside_a_record() -> None:
    # 02 record: segment base 0x1000 -> 0x10000; data at offset 0xFFFE runs over 64 KiB.
    text = _ihex("0200000210 00") + _ihex("04FFFE00 01020304") + EOF_RECORD
    image = read_ihex(text)
    assert image.read(0x1FFFE, 0x20000) == b"\x01\x02"
    assert image.read(0x10000, 0x10002) == b"\x03\x04"


def test_ihex_without_eof_record_is_refused() -> None:
    with pytest.raises(ImageFormatError, match="end-of-file"):
        read_ihex(b":0100000000FF\n", "x.hex")


def test_ihex_overlapping_records_name_both_lines() -> None:
    text = _ihex("02000000 0102") + _ihex("02000100 0304") + EOF_RECORD
    with pytest.raises(ImageFormatError) as err:
        read_ihex(text, "ov.hex")
    assert err.value.line == 2 and "line 1" in str(err.value)


def test_srec_count_record_is_checked() -> None:
    text = _srec("S1", "0000 AABB") + _srec("S5", "0002")
    with pytest.raises(ImageFormatError) as err:
        read_srec(text, "c.s19")
    assert err.value.line == 2 and "counts 2" in str(err.value)


def test_ihex_accepts_crlf_lowercase_and_blank_lines() -> None:
    text = _ihex("02000000 0102").lower().replace(b"\n", b"\r\n") + b"\r\n:00000001ff\r\n"
    assert read_ihex(text).read(0, 2) == b"\x01\x02"
