"""Programming benchmarks on the simulated programmer (issues 4 and 14).

1. Whole process, as a user runs it: `socketeer program` of a random 16 MiB image onto
   winbond.w25q128jv on `sim://?timing=instant` (erase + program + verify), against
   flashrom's C emulator of the same chip (`flashrom -p dummy:emulate=W25Q128FV,image=
   CHIP -w IMAGE`, a blank chip file each run), paired in one run. Goals: time <= 1.0x;
   peak memory <= 1.5x flashrom's; 16 sites x 16 MiB (simulated chips included) <= 450
   MiB. The in-process time follows as a second line.
2. Multi-site scaling: 16 sites vs 1 site, real-time typical timing, small part.
   Target: 16-site wall time <= 1.10x one site. CPU use printed.
3. Chip-bound efficiency: one site, real-time typical timing: measured time /
   (sum of typical chip times + bus transfer time at the site's clock). Target <= 1.05.

Run: .venv/bin/python tests/bench/bench_program.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from whole_process import compare, report, run_once, socketeer, tool

from app.algorithms.spi_nor import spi_nor_geometry
from app.core.image import MemoryImage
from app.devicedb import load_database
from app.engine.planner import plan_program
from app.engine.site_runner import CycleSpec
from app.engine.station import Station
from app.hal.programmer import open_programmer

SMALL_PART = "winbond.w25x10cl"


def run(url: str, device, database, image: MemoryImage):
    programmer = open_programmer(url, device=device, database=database)
    station = Station(programmer, lambda _e: None)
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    outcome = station.run(CycleSpec("program", device, image))
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    assert outcome.all_passed, [r.message for r in outcome.results]
    return wall, cpu, programmer


def host_overhead(database, runs: int) -> bool:
    device = database.get("winbond.w25q128jv")
    data = os.urandom(device.size_bytes)
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        image_file = Path(tmp) / "image.bin"
        chip_file = Path(tmp) / "chip.bin"
        image_file.write_bytes(data)

        def ours(sites: int) -> list[str]:
            url = f"sim://?timing=instant&sites={sites}"
            return socketeer("program", "--programmer", url, "--device", device.id, str(image_file))

        flashrom = tool("flashrom")
        if flashrom is None:
            print("[1] flashrom not installed (apt-get install flashrom): own figures only")
            one = run_once(ours(1))
            print(f"    socketeer 16 MiB: {one.wall_s:.2f} s, peak {one.peak_mib:.0f} MiB")
        else:
            reference = [flashrom, "-p", f"dummy:emulate=W25Q128FV,image={chip_file}", "-w"]
            pair = compare(
                ours(1),
                [*reference, str(image_file)],
                runs,
                before_b=lambda: chip_file.write_bytes(b"\xff" * device.size_bytes),
            )
            ok &= report(
                "[1] whole process: socketeer program 16 MiB (sim, instant) vs flashrom dummy",
                pair,
                "socketeer",
                "flashrom",
                1.0,
            )
            memory = pair.a_peak_mib / pair.b_peak_mib
            print(
                f"    peak memory: socketeer {pair.a_peak_mib:.0f} MiB, flashrom"
                f" {pair.b_peak_mib:.0f} MiB: {memory:.2f}x (goal <= 1.5x)"
                f"  {'ok' if memory <= 1.5 else 'MISSED'}"
            )
            ok &= memory <= 1.5
        many = run_once(ours(16))
        print(
            f"    16 sites x 16 MiB: peak {many.peak_mib:.0f} MiB (goal <= 450 MiB),"
            f" {many.wall_s:.1f} s  {'ok' if many.peak_mib <= 450 else 'MISSED'}"
        )
        ok &= many.peak_mib <= 450
    image = MemoryImage.from_bytes(data)
    wall, _cpu, _ = run("sim://?sites=1", device, database, image)
    print(f"    in-process (second line): erase + program + verify 16 MiB {wall:.2f} s")
    return ok


def scaling(database) -> None:
    device = database.get(SMALL_PART)
    image = MemoryImage.from_bytes(os.urandom(device.size_bytes))
    one, cpu1, _ = run("sim://?sites=1&timing=typ", device, database, image)
    many, cpu16, _ = run("sim://?sites=16&timing=typ", device, database, image)
    print(f"[2] {device.part} 1 site: {one:.3f} s wall, {cpu1:.3f} s CPU ({100 * cpu1 / one:.0f}%)")
    share = 100 * cpu16 / many
    print(f"    16 sites: {many:.3f} s wall, {cpu16:.3f} s CPU ({share:.0f}% of one core)")
    print(f"    ratio 16 sites / 1 site: {many / one:.3f} (target <= 1.10)")


def efficiency(database) -> None:
    device = database.get(SMALL_PART)
    image = MemoryImage.from_bytes(os.urandom(device.size_bytes))
    geometry = spi_nor_geometry(device)
    plan = plan_program(geometry, image, "auto")
    chip_s = (
        sum(b.timing.ms_typ for b, _ in plan.erase) + len(plan.writes) * geometry.program.ms_typ
    ) / 1000
    wall, _, programmer = run("sim://?sites=1&timing=typ", device, database, image)
    bus = programmer.sites[0].spi
    transfer_s = bus.bits_transferred / bus.clock_hz
    ideal = chip_s + transfer_s
    print(
        f"[3] {device.part} typical chip time {chip_s:.3f} s + bus {transfer_s:.3f} s"
        f" at {bus.clock_hz / 1e6:g} MHz = {ideal:.3f} s; measured {wall:.3f} s"
    )
    print(f"    ratio measured / ideal: {wall / ideal:.3f} (target <= 1.05)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="paired whole-process runs")
    args = parser.parse_args()
    database = load_database(use_overlay=False)
    ok = host_overhead(database, args.runs)
    scaling(database)
    efficiency(database)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
