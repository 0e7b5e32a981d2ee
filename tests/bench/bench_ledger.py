"""Serial allocations per second: reserve + commit of one number, on SQLite (one station's
file) and on PostgreSQL (a throwaway local cluster, tests/pg_cluster.py), from one
process and from 8 station processes at once (tests/ledger_worker.py, one job: every
allocation serialised on the job's lock, as on a production line) (issue 17).

The PostgreSQL cluster runs with fsync=off and SQLite on whatever disk holds the temp
folder, so the figures compare the stores' own costs, not the disks'.

Run: .venv/bin/python tests/bench/bench_ledger.py [--each 500]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: helpers

from pg_cluster import Cluster, find_bindir

from app.engine.ledger import SerialLedger
from app.engine.serialization import SerialConfig, SerialSource

ROOT = Path(__file__).resolve().parents[2]
WORKER = ROOT / "tests" / "ledger_worker.py"


def one_process(location: str, count: int) -> float:
    source = SerialSource(SerialConfig(kind="incremental", address=0, width=4))
    with SerialLedger(location, "bench", source, "void", station="bench") as ledger:
        t0 = time.perf_counter()
        for _ in range(count):
            ledger.commit(ledger.reserve(1), "record")
        return count / (time.perf_counter() - t0)


def eight_processes(location: str, each: int) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), location, "bench8", f"s{n}", str(each)], env=env
        )
        for n in range(8)
    ]
    for proc in procs:
        if proc.wait() != 0:
            raise SystemExit("a station process failed")
    return 8 * each / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--each", type=int, default=500, help="allocations per process (500)")
    args = parser.parse_args(argv)
    rows: list[tuple[str, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = str(Path(tmp) / "serials.sqlite3")
        rows.append(("SQLite", one_process(sqlite, args.each), eight_processes(sqlite, args.each)))
    bindir = find_bindir()
    if bindir is None:
        print("PostgreSQL binaries not found: SQLite only")
    else:
        cluster = Cluster(bindir)
        try:
            url = cluster.database()
            rows.append(
                ("PostgreSQL", one_process(url, args.each), eight_processes(url, args.each))
            )
        finally:
            cluster.stop()
    print(f"serial allocations per second (reserve + commit), {args.each} per process:")
    for name, single, eight in rows:
        print(f"  {name:<11} 1 process {single:8.0f}/s   8 processes {eight:8.0f}/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
