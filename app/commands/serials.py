"""`socketeer serials list|void JOB`: the serial ledger of a job's numbering scheme."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from app.commands import help_for
from app.commands.job import require_engineer
from app.core.errors import UsageError
from app.core.job_files import load_job
from app.engine.job_setup import open_ledger
from app.engine.ledger import STATES

DB_HELP = "the shared PostgreSQL ledger (default: $SOCKETEER_DB_URL, else this station's file)"


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("serials", help=help_for("serials"))
    serial_sub = parser.add_subparsers(dest="serials_command", metavar="ACTION")
    p = serial_sub.add_parser("list", help="every number issued, with its state and history")
    p.add_argument("job", type=Path)
    p.add_argument("--db", metavar="URL", help=DB_HELP)
    p.add_argument("--state", choices=STATES, help="only numbers in this state")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=cmd_list)
    p = serial_sub.add_parser("void", help="retire a reserved or failed number for good")
    p.add_argument("job", type=Path)
    p.add_argument("--db", metavar="URL", help=DB_HELP)
    p.add_argument("index", type=int, help="the number's index in the ledger (see list)")
    p.add_argument("--note", required=True, help="why (recorded in the ledger)")
    p.set_defaults(func=cmd_void)
    parser.set_defaults(func=None, _help=parser)


def _ledger(path: Path, db_url: str | None):
    ledger = open_ledger(load_job(path, check_lock=False), db_url=db_url)
    if ledger is None:
        raise UsageError(f"{path}: the job has no serialization")
    return ledger


def cmd_list(args: argparse.Namespace) -> int:
    with _ledger(args.job, args.db) as ledger:
        entries = [e for e in ledger.entries() if args.state in (None, e.state)]
        counts = ledger.counts()
        if args.json:
            doc = {
                "counts": counts,
                "serials": [
                    {
                        "index": e.index,
                        "text": e.text,
                        "state": e.state,
                        "site": e.site,
                        "updated_at": e.updated_at,
                        "device_record": e.device_record,
                        "note": e.note,
                        "history": [h.state for h in ledger.history(e.index)],
                    }
                    for e in entries
                ],
            }
            print(json.dumps(doc, indent=2))
            return 0
    print("  ".join(f"{state} {counts[state]}" for state in STATES))
    for e in entries:
        site = f"site {e.site}" if e.site is not None else ""
        note = f"  ({e.note})" if e.note else ""
        print(f"{e.index:>6}  {e.text:<16} {e.state:<9} {site:<8} {e.updated_at}{note}")
    return 0


def cmd_void(args: argparse.Namespace) -> int:
    require_engineer("nothing was voided")
    with _ledger(args.job, args.db) as ledger:
        ledger.void(args.index, args.note)
        entry = ledger.entries()[args.index]
    print(f"serial {entry.text} (index {entry.index}) voided: {args.note}")
    return 0
