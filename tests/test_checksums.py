"""Checksums against known check values and independent computations."""

from __future__ import annotations

import hashlib
import zlib

from hypothesis import given
from hypothesis import strategies as st

from app.core.checksums import ChecksumSpec, checksum, checksum_bytes
from app.core.image import MemoryImage

CHECK = b"123456789"


def test_catalogue_check_values() -> None:
    # Check values from the CRC catalogue (reveng) for "123456789".
    assert checksum_bytes(CHECK, "crc32") == "0xCBF43926"
    assert checksum_bytes(CHECK, "crc16") == "0x29B1"
    assert checksum_bytes(CHECK, "sum8") == f"0x{sum(CHECK) & 0xFF:02X}"
    assert checksum_bytes(b"\xff" * 300, "sum16") == "0x2AD4"  # 76500 mod 65536
    assert checksum_bytes(b"\xff" * 300, "sum8") == f"0x{(300 * 255) & 0xFF:02X}"
    assert checksum_bytes(CHECK, "sha256") == hashlib.sha256(CHECK).hexdigest()


def test_data_only_skips_gaps_filled_counts_them() -> None:
    image = MemoryImage.from_segments([(0, b"ab"), (4, b"cd")])
    assert checksum(image, ChecksumSpec("crc32")) == f"0x{zlib.crc32(b'abcd'):08X}"
    filled = ChecksumSpec("crc32", fill=0x00)
    assert checksum(image, filled) == f"0x{zlib.crc32(b'ab' + bytes(2) + b'cd'):08X}"
    ranged = ChecksumSpec("crc32", fill=0xFF, start=0, end=8)
    expected = zlib.crc32(b"ab" + b"\xff" * 2 + b"cd" + b"\xff" * 2)
    assert checksum(image, ranged) == f"0x{expected:08X}"


def test_excluded_ranges_are_left_out() -> None:
    image = MemoryImage.from_bytes(b"HEADER" + b"SN0001" + b"BODY")
    spec = ChecksumSpec("crc32", exclude=((6, 12),))
    assert checksum(image, spec) == f"0x{zlib.crc32(b'HEADERBODY'):08X}"
    other = MemoryImage.from_bytes(b"HEADER" + b"SN9999" + b"BODY")
    assert checksum(other, spec) == checksum(image, spec)
    filled = ChecksumSpec("sum32", fill=0xFF, start=0, end=32, exclude=((6, 12), (16, 32)))
    assert checksum(image, filled) == checksum(other, filled)


@given(st.binary(max_size=3000), st.sampled_from(["sum8", "sum16", "sum32"]))
def test_sums_are_truncated_byte_sums(data: bytes, algo: str) -> None:
    bits = int(algo[3:])
    assert checksum_bytes(data, algo) == f"0x{sum(data) % (1 << bits):0{bits // 4}X}"
