"""Start-up as a user meets it: whole processes against a bare Python (issue 14, item 1).

Reference: `python -c 'import json'` of the same interpreter, in the same run, paired.
Goals (ratio of medians, paired): `socketeer --version` and `--help` <= 3x,
`devices search w25q128` <= 6x, `image info` of a small Intel HEX file <= 8x, a 64 KiB
`program` on `sim://?timing=instant` <= 12x. The window's cold start to first paint is
in bench_window.py.

Run: .venv/bin/python tests/bench/bench_startup.py [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from whole_process import compare, report, socketeer

from app.core.formats import save_image
from app.core.image import MemoryImage


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="paired runs per command")
    args = parser.parse_args()
    bare = [sys.executable, "-c", "import json"]
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        small_hex = Path(tmp) / "small.hex"
        save_image(MemoryImage.from_bytes(os.urandom(4096), 0x1000), small_hex, "ihex")
        image_64k = Path(tmp) / "64k.bin"
        image_64k.write_bytes(os.urandom(65536))
        cases = [
            ("socketeer --version", socketeer("--version"), 3),
            ("socketeer --help", socketeer("--help"), 3),
            ("socketeer devices search w25q128", socketeer("devices", "search", "w25q128"), 6),
            (
                "socketeer image info small.hex (4 KiB)",
                socketeer("image", "info", str(small_hex)),
                8,
            ),
            (
                "socketeer program 64 KiB, sim://?timing=instant",
                socketeer(
                    "program",
                    "--programmer",
                    "sim://?timing=instant",
                    "--device",
                    "winbond.w25q80dv",
                    str(image_64k),
                ),
                12,
            ),
        ]
        print(f"reference: {' '.join(bare)}")
        for label, command, goal in cases:
            pair = compare(command, bare, args.runs)
            ok &= report(label, pair, "socketeer", "python", goal)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
