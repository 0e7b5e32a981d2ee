"""Render the application icon's PNG sizes and the Windows ICO from its SVG, with Qt.

    python packaging/make_icons.py [ICONS_DIR]

ICONS_DIR defaults to resources/icons in this checkout. Reads socketeer.svg there and
writes app/socketeer-<size>.png for every size below and socketeer.ico (16..256). The
outputs are checked in; run this again after changing the SVG. It needs no display (Qt's
offscreen platform unless QT_QPA_PLATFORM says otherwise).

Qt's own "ico" image writer stores one bitmap per file, so the ICO container is written
here: an ICONDIR header, one 16-byte ICONDIRENTRY per size, then each size as a PNG
(Windows Vista and later read PNG-compressed entries at every size).
"""

from __future__ import annotations

import os
import struct
import sys
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QImage, QPainter
from PySide6.QtSvg import QSvgRenderer

PNG_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)
DEFAULT_DIR = Path(__file__).resolve().parent.parent / "resources" / "icons"


def render(renderer: QSvgRenderer, size: int) -> QImage:
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    renderer.render(painter)
    painter.end()
    return image.convertToFormat(QImage.Format.Format_ARGB32)


def ico_bytes(pngs: dict[int, bytes]) -> bytes:
    """An ICO file holding ``pngs`` (size -> PNG data), smallest first."""
    sizes = sorted(pngs)
    header = struct.pack("<HHH", 0, 1, len(sizes))  # reserved, type 1 = icon, count
    offset = len(header) + 16 * len(sizes)
    entries, blobs = b"", b""
    for size in sizes:
        if not 1 <= size <= 256:
            raise ValueError(f"an ICO entry is 1..256 pixels, not {size}")
        blob = pngs[size]
        # width, height (0 means 256), colours, reserved, planes, bits, size, offset
        side = size % 256
        entries += struct.pack("<BBBBHHII", side, side, 0, 0, 1, 32, len(blob), offset)
        offset += len(blob)
        blobs += blob
    return header + entries + blobs


def main(argv: list[str]) -> int:
    icons = Path(argv[0]) if argv else DEFAULT_DIR
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    app = QGuiApplication.instance() or QGuiApplication([])  # noqa: F841 (QPainter needs it)
    source = icons / "socketeer.svg"
    renderer = QSvgRenderer(str(source))
    if not renderer.isValid():
        print(f"{source}: not a valid SVG", file=sys.stderr)
        return 1
    (icons / "app").mkdir(exist_ok=True)
    pngs: dict[int, bytes] = {}
    for size in PNG_SIZES:
        path = icons / "app" / f"socketeer-{size}.png"
        if not render(renderer, size).save(str(path)):
            print(f"{path}: Qt could not write it", file=sys.stderr)
            return 1
        pngs[size] = path.read_bytes()
        print(f"wrote {path} ({len(pngs[size])} bytes)")
    ico = icons / "socketeer.ico"
    ico.write_bytes(ico_bytes({size: pngs[size] for size in ICO_SIZES}))
    print(f"wrote {ico} ({ico.stat().st_size} bytes, sizes {', '.join(map(str, ICO_SIZES))})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
