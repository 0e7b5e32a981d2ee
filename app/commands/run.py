"""`socketeer run JOB`: run a (locked) job on every site of the programmer.

Exit codes as `program`: 0 every device passed, 1 a device failed, 2 bad input, 3 a
programmer or connection error.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
from pathlib import Path
from typing import Any

from app.commands.job import require_engineer
from app.commands.programming import _candidates, _open, _programmable, fitting_adapters
from app.core.errors import UsageError
from app.core.job import load_job
from app.devicedb import load_database
from app.engine.events import LogEvent
from app.engine.job_setup import prepare_job
from app.engine.production import ProductionEvent
from app.engine.results import FAIL, LINK_LOST


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run a locked job on all sites (production)")
    p.add_argument("job", type=Path, help="job file (.json) or exported package (.sjob)")
    p.add_argument("--programmer", metavar="URL", help="override the job's programmer URL")
    p.add_argument(
        "--count",
        type=int,
        metavar="N",
        help="stop after N good devices (default: the job's count limit)",
    )
    p.add_argument(
        "--auto", action="store_true", help="auto-start: each site starts when a part is inserted"
    )
    p.add_argument(
        "--idle-timeout",
        type=float,
        default=None,
        metavar="S",
        help="with --auto: stop a site after S seconds without a new part",
    )
    p.add_argument(
        "--operator",
        default=os.environ.get("USER", "operator"),
        help="operator name for the production log",
    )
    p.add_argument(
        "--allow-unlocked",
        action="store_true",
        help="engineer trial run of an unlocked job (asks the engineer password)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    if args.count is not None and args.count < 1:
        raise UsageError("--count must be at least 1")
    loaded = load_job(args.job)
    if not loaded.job.locked:
        if not args.allow_unlocked:
            raise UsageError(
                f"{args.job}: the job is not locked; an engineer locks it after the first"
                " article (or use --allow-unlocked for an engineer trial run)"
            )
        require_engineer("no trial run")
    database = load_database()
    device = _programmable(database, loaded.job.device_id)
    url = args.programmer or loaded.job.programmer
    programmer = _open(url, device, database)
    lock = threading.Lock()
    results: list[dict[str, Any]] = []

    def on_event(event: Any) -> None:
        with lock:
            if isinstance(event, ProductionEvent):
                results.append(
                    {**event.result.to_json(), "serial": event.serial, "record_id": event.record_id}
                )
                if not args.json:
                    r = event.result
                    serial = f" serial {event.serial}" if event.serial else ""
                    left = f" ({event.remaining} to go)" if event.remaining is not None else ""
                    word = "PASS" if r.passed else f"{r.status.upper()} at {r.failed_step}"
                    print(f"site {r.site}:{serial} {word}: {r.message}{left}", flush=True)
            elif isinstance(event, LogEvent) and event.level == "warning" and not args.json:
                print(f"warning: {event.message}", flush=True)

    try:
        prepared = prepare_job(
            loaded,
            device,
            programmer,
            on_event=on_event,
            operator=args.operator,
            adapters=fitting_adapters(database, device),
            count_limit=args.count,
            identify_candidates=_candidates(database),
        )
        if prepared.recovered_serials and not args.json:
            print(
                f"voided {len(prepared.recovered_serials)} serial(s) left reserved by an"
                " interrupted run",
                flush=True,
            )
        run = prepared.run
        previous = signal.signal(signal.SIGINT, lambda *_: run.stop())
        try:
            summary = (
                run.run_auto(idle_timeout_s=args.idle_timeout) if args.auto else run.run_once()
            )
        finally:
            signal.signal(signal.SIGINT, previous)
    finally:
        programmer.close()
    if args.json:
        print(
            json.dumps(
                {
                    "job": str(args.job),
                    "good": summary.good,
                    "failed": summary.failed,
                    "remaining": summary.remaining,
                    "devices": results,
                },
                indent=2,
            )
        )
    else:
        left = f", {summary.remaining} to go" if summary.remaining is not None else ""
        print(f"run: {summary.good} good, {summary.failed} failed{left}")
    statuses = {r.status for r in summary.results}
    if FAIL in statuses or "cancelled" in statuses:
        return 1
    return 3 if LINK_LOST in statuses else 0
