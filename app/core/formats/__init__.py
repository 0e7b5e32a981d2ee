"""Image file formats: detection, loading and atomic saving.

Formats are told apart by content first; the file name's extension only decides when
the content is not recognisably any text format (so a web page saved as ``.hex`` is
refused as bad Intel HEX at line 1 rather than loaded as a binary).

The text formats' modules (and numpy, which their readers use) load when a file of
theirs is first read or written: a binary image or a command that only names a format
does not pay for them.
"""

from __future__ import annotations

import importlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from app.core.errors import ImageRangeError, InputError
from app.core.fileio import atomic_writer, open_user_file
from app.core.image import MemoryImage

FORMATS = ("ihex", "srec", "ti-txt", "bin")
#: the largest image file read: the largest part in the database (256 MiB) as Intel HEX
#: with short records is under 1 GiB; anything bigger is not an image for a part
MAX_IMAGE_FILE_BYTES = 1 << 30
_BINARY_PIECE = 1 << 20

_EXTENSIONS = {
    ".hex": "ihex",
    ".ihex": "ihex",
    ".ihx": "ihex",
    ".h86": "ihex",
    ".mcs": "ihex",
    ".srec": "srec",
    ".s19": "srec",
    ".s28": "srec",
    ".s37": "srec",
    ".s": "srec",
    ".mot": "srec",
    ".mhx": "srec",
    ".txt": "ti-txt",
    ".bin": "bin",
    ".img": "bin",
    ".rom": "bin",
}

#: the module of each text format, with its read_<name> and write_<name>
_TEXT_MODULES = {"ihex": "ihex", "srec": "srec", "ti-txt": "titxt"}


def _read_text(fmt: str, stream: BinaryIO, source: str) -> MemoryImage:
    name = _TEXT_MODULES[fmt]
    module = importlib.import_module(f"app.core.formats.{name}")
    image: MemoryImage = getattr(module, f"read_{name}")(stream, source)
    return image


@dataclass
class LoadedImage:
    image: MemoryImage
    format: str
    path: Path


def sniff_format(head: bytes) -> str | None:
    """Format named by the first non-blank line of ``head``, or None if not a text format."""
    if b"\x00" in head:
        return None
    for raw in head.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith(b":") and len(line) > 1 and line[1:2] in b"0123456789abcdefABCDEF":
            return "ihex"
        if line[:1] in (b"S", b"s") and line[1:2].isdigit():
            return "srec"
        if line.startswith(b"@") and line[1:2] in b"0123456789abcdefABCDEF":
            return "ti-txt"
        return None
    return None


def format_from_extension(path: Path) -> str | None:
    return _EXTENSIONS.get(path.suffix.lower())


def detect_format(path: Path, head: bytes) -> str:
    """Content decides; a ``.bin`` name is always binary (its first bytes may look like text)."""
    by_content = sniff_format(head)
    by_name = format_from_extension(path)
    if path.suffix.lower() == ".bin":
        return "bin"
    if by_content is not None:
        return by_content
    return by_name or "bin"


def load_image(path: str | Path, fmt: str | None = None, base: int = 0) -> LoadedImage:
    """Read an image file. ``fmt`` forces a format; ``base`` places raw binaries."""
    path = Path(path)
    with open_user_file(path, max_bytes=MAX_IMAGE_FILE_BYTES, noun="an image file") as stream:
        if fmt is None:
            fmt = detect_format(path, stream.read(4096))
            stream.seek(0)
        if fmt not in FORMATS:
            raise InputError(f"unknown image format {fmt!r} (known: {', '.join(FORMATS)})")
        if fmt == "bin":
            image = MemoryImage()
            image.add(base, stream.read(), source=str(path))
        else:
            image = _read_text(fmt, stream, str(path))
    return LoadedImage(image, fmt, path)


def parse_image_bytes(data: bytes, fmt: str, base: int | None, source: str) -> MemoryImage:
    """Parse an image from bytes already in memory (e.g. the very bytes that were hashed)."""
    if fmt == "bin":
        return MemoryImage.from_bytes(data, base or 0, source=source)
    if fmt not in _TEXT_MODULES:
        raise InputError(f"unknown image format {fmt!r} (known: {', '.join(FORMATS)})")
    return _read_text(fmt, io.BytesIO(data), source)


def write_image(
    image: MemoryImage,
    stream: BinaryIO,
    fmt: str,
    *,
    record_bytes: int | None = None,
    address_bytes: int | None = None,
    fill: int = 0xFF,
) -> None:
    if fmt == "ihex":
        from app.core.formats.ihex import write_ihex

        write_ihex(image, stream, record_bytes=record_bytes or 16)
    elif fmt == "srec":
        from app.core.formats.srec import write_srec

        write_srec(image, stream, record_bytes=record_bytes or 32, address_bytes=address_bytes)
    elif fmt == "ti-txt":
        from app.core.formats.titxt import write_titxt

        write_titxt(image, stream, record_bytes=record_bytes or 16)
    elif fmt == "bin":
        _write_binary(image, stream, fill)
    else:
        raise InputError(f"unknown image format {fmt!r} (known: {', '.join(FORMATS)})")


def _write_binary(image: MemoryImage, stream: BinaryIO, fill: int) -> None:
    """The image from its lowest to its highest address, gaps as ``fill``, written in
    pieces (a sparse image must not be materialised whole), and refused when the span
    is larger than any part Socketeer programs."""
    if image.is_empty:
        return
    lo, hi = image.min_address, image.max_address
    if hi - lo > MAX_IMAGE_FILE_BYTES:
        raise ImageRangeError(
            f"a binary from 0x{lo:X} to 0x{hi:X} would be {hi - lo:,} bytes, more than"
            f" {MAX_IMAGE_FILE_BYTES:,}: choose the part of the image with --range"
        )
    for start in range(lo, hi, _BINARY_PIECE):
        stream.write(image.filled(fill, start, min(hi, start + _BINARY_PIECE)))


def save_image(image: MemoryImage, path: str | Path, fmt: str, **options: int | None) -> None:
    """Write ``image`` to ``path`` atomically: a failed write leaves no half-written file."""
    with atomic_writer(path) as stream:
        write_image(image, stream, fmt, **options)  # type: ignore[arg-type]
