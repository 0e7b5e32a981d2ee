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

from app.commands import help_for
from app.commands.job import require_engineer
from app.commands.output import result_line, say
from app.core.errors import UsageError
from app.core.job import load_job
from app.devicedb import load_database
from app.engine.cycle import part_names
from app.engine.events import CycleFinished, Event, LogEvent
from app.engine.job_setup import prepare_job
from app.engine.station import Station
from app.engine.station_setup import open_station_programmer, programmable_device


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help=help_for("run"))
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
    p.add_argument(
        "--allow-incomplete",
        action="store_true",
        help="run a job whose image the reader warns about (e.g. truncated S-records)",
    )
    p.add_argument(
        "--db",
        metavar="URL",
        help="shared serial ledger on a PostgreSQL server, e.g."
        " postgresql://socketeer@line-server/production (default: $SOCKETEER_DB_URL, else"
        " this station's own file)",
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
    if loaded.image.warnings and not args.allow_incomplete:
        raise UsageError(
            f"{args.job}: {loaded.image.warnings[0]}; add --allow-incomplete to run it anyway"
        )
    database = load_database()
    device = programmable_device(database, loaded.job.device_id)
    prepared = prepare_job(
        loaded,
        device,
        database,
        operator=args.operator,
        count_limit=args.count,
        db_url=args.db,
    )
    if prepared.recovered_serials and not args.json:
        say(
            f"voided {len(prepared.recovered_serials)} serial(s) left reserved by an"
            " interrupted run"
        )
    lock = threading.Lock()
    results: list[dict[str, Any]] = []

    def on_event(event: Event) -> None:
        with lock:
            if isinstance(event, CycleFinished):
                results.append(
                    {**event.result.to_json(), "serial": event.serial, "record_id": event.record_id}
                )
                if not args.json:
                    say(_finished_line(event))
            elif isinstance(event, LogEvent) and event.level != "info" and not args.json:
                say(f"{event.level}: {event.message}")

    url = args.programmer or loaded.job.programmer
    programmer = open_station_programmer(url, device, database)
    station = Station(programmer, on_event, part_names(database), prepared.production)
    spec = prepared.production.spec
    try:
        previous = signal.signal(signal.SIGINT, lambda *_: station.stop())
        try:
            if args.auto:
                outcome = station.run_auto(spec, idle_timeout_s=args.idle_timeout)
            else:
                outcome = station.run(spec, counted=True)
        finally:
            signal.signal(signal.SIGINT, previous)
    finally:
        programmer.close()
    good, failed = prepared.production.good, prepared.production.failed
    if args.json:
        say(
            json.dumps(
                {
                    "job": str(args.job),
                    "good": good,
                    "failed": failed,
                    "remaining": outcome.remaining,
                    "devices": results,
                },
                indent=2,
            )
        )
    else:
        left = f", {outcome.remaining} to go" if outcome.remaining is not None else ""
        say(f"run: {good} good, {failed} failed{left}")
    return outcome.exit_code


def _finished_line(event: CycleFinished) -> str:
    serial = f" serial {event.serial}" if event.serial else ""
    left = f" ({event.remaining} to go)" if event.remaining is not None else ""
    return f"site {event.site}:{serial} {result_line(event.result)}{left}"
