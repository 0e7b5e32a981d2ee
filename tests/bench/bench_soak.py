"""Soak: a long production run with auto-start, as a handler feeds parts.

Run: .venv/bin/python tests/bench/bench_soak.py [--cycles 100000] [--sites 8]

The simulated handler swaps parts after every pass or fail, with swap times drawn from
0 to 100 ms per site (`handler=` of sim://, one value per site); the station runs the
engine's auto-start loop with a job's full production bookkeeping (serials, durable
production log, socket wear). Reports cycles per second, the process's resident memory
at the start and the end (goal: growth <= 20 MB), and the sites that stopped getting
cycles (goal: 0).
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.core.image import MemoryImage
from app.devicedb import load_database
from app.engine.cycle import build_cycle_spec, part_names
from app.engine.events import CycleFinished, Event
from app.engine.ledger import SerialLedger
from app.engine.production import Production
from app.engine.production_log import ProductionLog
from app.engine.serialization import SerialConfig, SerialSource
from app.engine.socket_wear import SocketWear
from app.engine.station import Station
from app.hal.programmer import open_programmer

GROWTH_GOAL_MB = 20.0


def rss_mb() -> float:
    """Resident set size now (Linux /proc), else the peak (getrusage)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=100_000)
    parser.add_argument("--sites", type=int, default=8)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    database = load_database()
    device = database.get("microchip.24lc01b")  # a small part: the bookkeeping dominates
    rng = random.Random(args.seed)
    swaps = [rng.uniform(0.0, 0.1) for _ in range(args.sites)]
    url = f"sim://?sites={args.sites}&timing=instant&handler={min(swaps):.4f}"
    programmer = open_programmer(url, device=device, database=database)
    for site, swap in zip(programmer.sites, swaps, strict=True):
        site.handler_s = swap  # each site's own handler speed, 0-100 ms
    image = MemoryImage.from_bytes(bytes(range(128)))
    with tempfile.TemporaryDirectory() as folder:
        folder_path = Path(folder)
        config = SerialConfig(kind="incremental", address=0x70, width=8)
        ledger = SerialLedger(folder_path / "serials.sqlite3", "soak", SerialSource(config), "void")
        log = ProductionLog(folder_path / "production.sqlite3")
        production = Production(
            build_cycle_spec("program", device, database, image=image),
            job_id="soak",
            job_hash=None,
            log=log,
            wear=SocketWear(folder_path / "production.sqlite3"),
            ledger=ledger,
            serial_address=config.address,
            count_limit=args.cycles,
            operator="soak",
        )
        last_cycle = {site.index: time.monotonic() for site in programmer.sites}
        lock = threading.Lock()

        def on_event(event: Event) -> None:
            if isinstance(event, CycleFinished):
                with lock:
                    last_cycle[event.site] = time.monotonic()

        station = Station(programmer, on_event, part_names(database), production)
        start_rss = rss_mb()
        t0 = time.monotonic()
        runner = threading.Thread(
            target=station.run_auto, args=(production.spec,), kwargs={"idle_timeout_s": 30}
        )
        runner.start()
        while runner.is_alive():
            runner.join(5)
            done = production.good + production.failed
            print(f"  {done:>7} cycles, {rss_mb():7.1f} MB", flush=True)
        elapsed = time.monotonic() - t0
        end_rss = rss_mb()
        now = time.monotonic()
        stuck = [s for s, t in last_cycle.items() if production.remaining and now - t > 30]
        cycles = production.good + production.failed
        log.close()
        ledger.close()
    programmer.close()
    growth = end_rss - start_rss
    print(f"soak: {cycles} cycles on {args.sites} sites in {elapsed:.1f} s")
    print(f"  cycles per second: {cycles / elapsed:.0f}")
    print(f"  RSS: {start_rss:.1f} MB at the start, {end_rss:.1f} MB at the end,"
          f" growth {growth:.1f} MB (goal <= {GROWTH_GOAL_MB:g} MB)")  # fmt: skip
    print(f"  stuck sites: {len(stuck)} (goal 0){': ' + str(stuck) if stuck else ''}")
    return 0 if growth <= GROWTH_GOAL_MB and not stuck and cycles >= args.cycles else 1


if __name__ == "__main__":
    sys.exit(main())
