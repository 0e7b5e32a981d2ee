"""serprog benchmark (issue 14): the whole `socketeer program` process against flashrom.

Both tools program the same random image onto the same emulated serprog board
(tests/serprog_emulator.py on a pty, a blank SPI NOR chip model behind it), each as the
user runs it, start-up included:

    .venv/bin/socketeer program --programmer serprog://PTY --device ID --skip-matching \
        --no-backup IMG
    flashrom -p serprog:dev=PTY:115200 -c CHIP -w IMG

flashrom reads the chip first and leaves alone what needs no change (an erase block that
already holds the image, or one that can take it without an erase, such as a blank one);
`--skip-matching` is Socketeer's option for the same read-first behaviour. Both verify.
`--no-backup`: flashrom keeps no copy of what the chip held, so Socketeer's automatic
backup of in-system parts (two full reads) is left out of the comparison.

Cases: 1 MiB (W25Q80DV, flashrom's W25Q80.V) and 4 MiB (W25Q32JV, W25Q32.V), with the chip
answering at once (timing instant: host and link cost only; goal <= 0.8x flashrom), at the
datasheet's typical times (goal <= 1.0x flashrom and <= 1.05x the chip's floor) and at half
the typical times (scale:0.5: must finish sooner than at typical).

The floor is the typical busy time of the operations the chip really did (erases and
page programs counted by the emulator) plus Socketeer's own time for the same job on an
instant chip (start-up, link and host work: everything that is not the chip).

Run: .venv/bin/python tests/bench/bench_serprog.py [--sizes 1,4] [--runs 1]
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
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from serprog_emulator import SerprogEmulator, make_chip  # noqa: E402

from app.devicedb import load_database  # noqa: E402
from app.devicedb.facts import SpiNorFacts  # noqa: E402

CASES = {1: ("winbond.w25q80dv", "W25Q80.V"), 4: ("winbond.w25q32jv", "W25Q32.V")}
TIMINGS = ("instant", "typ", "scale:0.5")
SOCKETEER = ROOT / ".venv" / "bin" / "socketeer"


@dataclass
class Run:
    seconds: float
    erases: int  # erase commands the chip saw
    pages: int  # page programs
    chip_typ_s: float  # their typical busy time, times the timing's scale


def _scale(timing: str) -> float:
    if timing == "instant":
        return 0.0
    return float(timing.split(":")[1]) if timing.startswith("scale:") else 1.0


def one_run(tool: str, device_id: str, chip_name: str, timing: str, image: Path) -> Run:
    """One whole process of ``tool`` against a fresh emulated board with a blank chip."""
    database = load_database(use_overlay=False)
    facts = database.get(device_id).facts_as(SpiNorFacts)
    erase_ms = {op.opcode: op.timing.ms_typ for op in facts.block_erases}
    if facts.chip_erase is not None:
        erase_ms[facts.chip_erase.opcode] = facts.chip_erase.timing.ms_typ
    with (
        tempfile.TemporaryDirectory() as tmp,
        SerprogEmulator(make_chip(device_id, timing), link=Path(tmp) / "ttyACM0") as emu,
    ):
        if tool == "socketeer":
            cmd = [
                str(SOCKETEER), "program", "--programmer", f"serprog://{emu.path}",
                "--device", device_id, "--skip-matching", "--no-backup", str(image),
            ]  # fmt: skip
        else:
            flashrom = shutil.which("flashrom") or "/usr/sbin/flashrom"
            cmd = [flashrom, "-p", f"serprog:dev={emu.path}:115200", "-c", chip_name]
            cmd += ["-w", str(image)]
        t0 = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - t0
        if done.returncode != 0:
            raise SystemExit(f"{tool} failed:\n{done.stdout}\n{done.stderr}")
        if bytes(emu.chip.memory[: image.stat().st_size]) != image.read_bytes():
            raise SystemExit(f"{tool} left the chip not holding the image")
        erases = {op: n for op, n in emu.opcodes.items() if op in erase_ms}
        pages = emu.opcodes[0x02]
    chip_ms = sum(n * erase_ms[op] for op, n in erases.items())
    chip_ms += pages * facts.page_program.ms_typ
    return Run(seconds, sum(erases.values()), pages, chip_ms * _scale(timing) / 1000)


def median_run(runs: list[Run]) -> Run:
    ordered = sorted(runs, key=lambda r: r.seconds)
    mid = ordered[len(ordered) // 2]
    return Run(statistics.median(r.seconds for r in runs), mid.erases, mid.pages, mid.chip_typ_s)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1,4", help="MiB: 1 (W25Q80DV), 4 (W25Q32JV)")
    parser.add_argument("--timings", default=",".join(TIMINGS))
    parser.add_argument("--runs", type=int, default=1, help="runs per figure (median)")
    args = parser.parse_args()
    have_flashrom = shutil.which("flashrom") or Path("/usr/sbin/flashrom").exists()
    if not have_flashrom:
        print("flashrom not found, own figures only (apt-get install flashrom)")
    for size in (int(s) for s in args.sizes.split(",")):
        device_id, chip_name = CASES[size]
        with tempfile.TemporaryDirectory() as tmp:
            image = Path(tmp) / "image.bin"
            data = bytearray(os.urandom(size << 20))
            image.write_bytes(bytes(b if b != 0xFF else 0x5A for b in data))
            print(f"== {size} MiB onto {device_id} (flashrom -c {chip_name}), serprog on a pty")
            own_instant: float | None = None
            typ_s: float | None = None
            for timing in args.timings.split(","):
                ours = median_run(
                    [one_run("socketeer", device_id, chip_name, timing, image)
                     for _ in range(args.runs)]
                )  # fmt: skip
                line = (
                    f"  {timing:>9}: socketeer {ours.seconds:6.2f} s"
                    f" ({ours.erases} erases, {ours.pages} pages)"
                )
                if have_flashrom:
                    ref = median_run(
                        [one_run("flashrom", device_id, chip_name, timing, image)
                         for _ in range(args.runs)]
                    )  # fmt: skip
                    line += (
                        f" | flashrom {ref.seconds:6.2f} s ({ref.erases} erases,"
                        f" {ref.pages} pages) | ratio {ours.seconds / ref.seconds:.2f}"
                    )
                print(line)
                if timing == "instant":
                    own_instant = ours.seconds
                    print("             goal: ratio <= 0.80")
                elif own_instant is not None:
                    floor = ours.chip_typ_s + own_instant
                    print(
                        f"             floor {floor:.2f} s = chip {ours.chip_typ_s:.2f} s"
                        f" + link/host {own_instant:.2f} s; socketeer / floor"
                        f" {ours.seconds / floor:.3f} (goal <= 1.05"
                        + (", and <= 1.00x flashrom)" if timing == "typ" else ")")
                    )
                if timing == "typ":
                    typ_s = ours.seconds
                elif timing.startswith("scale:") and typ_s is not None:
                    verdict = "sooner" if ours.seconds < typ_s else "NOT sooner"
                    print(f"             {timing} finishes {verdict} than typ ({typ_s:.2f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
