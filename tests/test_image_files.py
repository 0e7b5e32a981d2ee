"""Every reference image loads to exactly what SRecord says; every bad file is refused."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from app.core.checksums import ChecksumSpec, checksum
from app.core.errors import ImageFormatError
from app.core.formats import load_image

IMAGES = Path(__file__).parent / "data" / "images"
MANIFEST = json.loads((IMAGES / "MANIFEST.json").read_text())["files"]


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_reference_image_matches_manifest(name: str) -> None:
    expected = MANIFEST[name]
    loaded = load_image(IMAGES / name)
    image = loaded.image
    assert loaded.format == expected["format"]
    assert [[hex(s.start), hex(s.end)] for s in image.segments] == expected["segments"]
    assert image.data_bytes == expected["data_bytes"]
    start = expected["start_address"]
    assert image.start_address == (None if start is None else int(start, 16))
    assert checksum(image, ChecksumSpec("crc32")) == expected["crc32_data_concat"]
    lo, hi = (int(v, 16) for v in expected["fill_range"])
    filled = ChecksumSpec("crc32", fill=0xFF, start=lo, end=hi)
    assert checksum(image, filled) == expected["crc32_filled_0xFF"]
    sha = ChecksumSpec("sha256", fill=0xFF, start=lo, end=hi)
    assert checksum(image, sha) == expected["sha256_filled_0xFF"]


def _bad_files() -> list[tuple[str, int]]:
    """(file, line) from bad/README.md, so the expectations live with the data."""
    text = (IMAGES / "bad" / "README.md").read_text()
    return [(n, int(ln)) for n, ln in re.findall(r"^- (\S+): .*?line (\d+)", text, flags=re.M)]


BAD_REASONS = {
    "bad_checksum.hex": "checksum",
    "html_saved_as.hex": "expected ':'",
    "truncated.hex": "promises 16 data bytes",
    "bad_hexdigit.s28": "'G' is not a hex digit",
}


@pytest.mark.parametrize(("name", "line"), _bad_files())
def test_bad_file_is_refused_naming_file_and_line(name: str, line: int) -> None:
    with pytest.raises(ImageFormatError) as err:
        load_image(IMAGES / "bad" / name)
    assert err.value.line == line
    assert err.value.path is not None and err.value.path.endswith(name)
    assert f"{name}:{line}:" in str(err.value)
    assert BAD_REASONS[name] in str(err.value)


def test_every_bad_file_is_covered_by_the_readme() -> None:
    listed = {name for name, _ in _bad_files()}
    on_disk = {p.name for p in (IMAGES / "bad").iterdir() if p.name != "README.md"}
    assert listed == on_disk


def test_intelhex_package_agrees_on_reference_files() -> None:
    """Cross-check our fast reader against the independent intelhex package."""
    intelhex = pytest.importorskip("intelhex")
    for name in ("composite_linear.hex", "composite_segment.hex", "optiboot_atmega328.hex"):
        ours = load_image(IMAGES / name).image
        theirs = intelhex.IntelHex(str(IMAGES / name))
        assert [(s.start, s.end) for s in ours.segments] == theirs.segments()
        for seg in ours.segments:
            assert bytes(seg.data) == theirs.tobinstr(start=seg.start, end=seg.end - 1)
