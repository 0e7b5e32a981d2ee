"""Benchmark: load a 16 MiB Intel HEX image (record checksums checked) and CRC-32 it.

Reference: SRecord's `srec_cat FILE -intel -o OUT -binary` on the same file.
Targets (issue 2): time ratio <= 1.0, peak traced memory <= 4x the image size.

Run: .venv/bin/python tests/bench/bench_image.py [--mib 16] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.core.formats import load_image, save_image
from app.core.image import MemoryImage


def load_and_crc(path: Path) -> int:
    image = load_image(path).image
    return zlib.crc32(image.filled())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mib", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    size = args.mib << 20
    with tempfile.TemporaryDirectory() as tmp:
        hex_path = Path(tmp) / "random.hex"
        data = os.urandom(size)
        save_image(MemoryImage.from_bytes(data), hex_path, "ihex")
        del data
        file_mib = hex_path.stat().st_size / 2**20
        print(f"image: {args.mib} MiB random, Intel HEX file {file_mib:.1f} MiB")

        ours = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            load_and_crc(hex_path)
            ours.append(time.perf_counter() - t0)
        ours_s = statistics.median(ours)

        tracemalloc.start()
        load_and_crc(hex_path)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()

        print(f"socketeer load + CRC-32:   {ours_s:.3f} s (median of {args.repeat})")
        print(
            f"peak traced memory:        {peak / 2**20:.1f} MiB = {peak / size:.2f}x image"
            f" (target <= 4.00x)"
        )
        srec_cat = shutil.which("srec_cat")
        if srec_cat is None:
            print("srec_cat not installed (apt-get install srecord): no reference ratio")
            return 0
        ref = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            subprocess.run(
                [srec_cat, str(hex_path), "-intel", "-o", str(Path(tmp) / "out.bin"), "-binary"],
                check=True,
            )
            ref.append(time.perf_counter() - t0)
        ref_s = statistics.median(ref)
        print(f"srec_cat -intel -> binary: {ref_s:.3f} s (median of {args.repeat})")
        print(f"ratio socketeer / srec_cat: {ours_s / ref_s:.2f} (target <= 1.00)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
