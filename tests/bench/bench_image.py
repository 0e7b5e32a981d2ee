"""Benchmark: a 16 MiB Intel HEX image read (record checksums checked) and CRC-32'd.

Whole process, as a user runs it: `socketeer image checksum FILE --algo crc32` against
SRecord's `srec_cat FILE -intel -o OUT -binary` on the same file, paired in one run
(goal: ratio <= 1.0). Second lines, in-process: the load + CRC alone, and its peak
traced memory (goal <= 4x the image size).

Run: .venv/bin/python tests/bench/bench_image.py [--mib 16] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from whole_process import compare, report, run_once, socketeer, tool

from app.core.formats import load_image, save_image
from app.core.image import MemoryImage


def load_and_crc(path: Path) -> int:
    image = load_image(path).image
    return zlib.crc32(image.filled())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=16)
    parser.add_argument("--runs", type=int, default=5, help="paired runs (median)")
    args = parser.parse_args()
    size = args.mib << 20
    with tempfile.TemporaryDirectory() as tmp:
        hex_path = Path(tmp) / "random.hex"
        save_image(MemoryImage.from_bytes(os.urandom(size)), hex_path, "ihex")
        file_mib = hex_path.stat().st_size / 2**20
        print(f"image: {args.mib} MiB random, Intel HEX file {file_mib:.1f} MiB")
        ours = socketeer("image", "checksum", str(hex_path), "--algo", "crc32")
        srec_cat = tool("srec_cat")
        ok = True
        if srec_cat is None:
            print("srec_cat not installed (apt-get install srecord): own figures only")
            run = run_once(ours)
            print(f"socketeer image checksum: {run.wall_s:.3f} s, peak {run.peak_mib:.0f} MiB")
        else:
            out = str(Path(tmp) / "out.bin")
            pair = compare(
                ours, [srec_cat, str(hex_path), "-intel", "-o", out, "-binary"], args.runs
            )
            ok = report(
                "whole process: socketeer image checksum --algo crc32 vs srec_cat -intel -> binary",
                pair,
                "socketeer",
                "srec_cat",
                1.0,
            )
            peaks = f"socketeer {pair.a_peak_mib:.0f} MiB, srec_cat {pair.b_peak_mib:.0f} MiB"
            print(f"    peak memory: {peaks}")

        times = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            load_and_crc(hex_path)
            times.append(time.perf_counter() - t0)
        tracemalloc.start()
        load_and_crc(hex_path)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        print(f"in-process (second line): load + CRC-32 {statistics.median(times):.3f} s;")
        print(
            f"    peak traced memory {peak / 2**20:.1f} MiB = {peak / size:.2f}x image (goal <= 4x)"
        )
        ok &= peak <= 4 * size
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
