"""`socketeer log export|summary|wear|wear-reset`: the production log (one record per
device cycle) and the socket-wear counts kept in the same file."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from app.commands import help_for
from app.commands.job import login_name, require_engineer
from app.core.errors import InputError, UsageError
from app.core.fileio import atomic_writer
from app.engine.pg_store import DB_URL_ENV, is_postgres_url
from app.engine.production_log import EXPORT_FORMATS, ProductionLog, iso_time
from app.engine.socket_wear import SocketCount, SocketWear, WearReset

_RELATIVE = re.compile(r"\s*(\d+)\s*([smhdw])\s*", re.IGNORECASE)
_UNIT = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_WHEN_HELP = (
    "ISO date or time (2026-11-22, 2026-11-22T08:00, 2026-11-22T08:00Z; no zone = local"
    " time) or an age: 30m, 24h, 7d"
)


def parse_when(text: str, what: str = "--since", *, now: datetime | None = None) -> datetime:
    """A WHEN option value as an aware UTC datetime.

    ``30m``/``24h``/``7d``/``2w`` mean that long before ``now``; an ISO date means its local
    midnight; an ISO time without a zone is local time.
    """
    try:
        match = _RELATIVE.fullmatch(text)
        if match:
            delta = timedelta(**{_UNIT[match.group(2).lower()]: int(match.group(1))})
            return (now or datetime.now(UTC)) - delta
        return datetime.fromisoformat(text.strip()).astimezone(UTC)  # naive: local time
    except (ValueError, OverflowError):
        raise UsageError(
            f"{what} {text!r} is not a date, time or age (use 2026-11-22, 2026-11-22T08:00 or 24h)"
        ) from None


def parse_until(text: str, *, now: datetime | None = None) -> datetime:
    """Like :func:`parse_when`, but a bare date means the end of that day, so
    ``--since 2026-11-22 --until 2026-11-22`` selects that whole day."""
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        return parse_when(text, "--until", now=now)
    try:
        return datetime.combine(day + timedelta(days=1), datetime.min.time()).astimezone(UTC)
    except (ValueError, OverflowError):
        raise UsageError(f"--until {text!r} is out of range") from None


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("log", help=help_for("log"))
    log_sub = parser.add_subparsers(dest="log_command", metavar="ACTION")

    def add_db(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--db",
            type=_log_location,
            metavar="PATH|URL",
            help="use this log file, or a line's shared log on a PostgreSQL server"
            " (postgresql://...; default: $SOCKETEER_DB_URL, else production.sqlite3 in the"
            " user data folder or in $SOCKETEER_DATA_DIR)",
        )

    def add_common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--since", metavar="WHEN", help=f"from this time on; {_WHEN_HELP}")
        p.add_argument(
            "--until", metavar="WHEN", help="before this time (a bare date: through that day)"
        )
        p.add_argument("--job", metavar="JOB_ID", help="only the records of this job")
        p.add_argument("--station", metavar="NAME", help="only the records of this station")
        p.add_argument("--operator", metavar="NAME", help="only the records of this operator")
        add_db(p)

    exp = log_sub.add_parser("export", help="write records as CSV or JSON Lines")
    add_common(exp)
    exp.add_argument(
        "--format",
        choices=EXPORT_FORMATS,
        help="csv (header row, details/timings as JSON text) or jsonl (default: csv, or jsonl"
        " for an --output ending in .jsonl/.ndjson)",
    )
    exp.add_argument(
        "--output", "-o", type=Path, metavar="FILE", help="write FILE atomically (default stdout)"
    )
    exp.set_defaults(func=cmd_export)

    summ = log_sub.add_parser("summary", help="counts, yield and throughput, per site")
    add_common(summ)
    summ.add_argument("--json", action="store_true", help="print one JSON document")
    summ.set_defaults(func=cmd_summary)

    wear = log_sub.add_parser("wear", help="insertions per socket since its last reset")
    add_db(wear)
    wear.add_argument("--json", action="store_true", help="print one JSON document")
    wear.set_defaults(func=cmd_wear)

    reset = log_sub.add_parser(
        "wear-reset", help="set a socket's insertion count to 0 (engineer password)"
    )
    which = reset.add_mutually_exclusive_group(required=True)
    which.add_argument("socket", nargs="?", metavar="SOCKET", help="socket key (see 'log wear')")
    which.add_argument("--all", action="store_true", help="reset every socket")
    reset.add_argument("--reason", required=True, help="why, e.g. 'socket replaced' (recorded)")
    reset.add_argument("--by", metavar="NAME", help="who (default: the login name)")
    add_db(reset)
    reset.set_defaults(func=cmd_wear_reset)

    parser.set_defaults(func=None, _help=parser)


def _window(args: argparse.Namespace) -> tuple[datetime | None, datetime | None]:
    now = datetime.now(UTC)
    since = parse_when(args.since, "--since", now=now) if args.since else None
    until = parse_until(args.until, now=now) if args.until else None
    if since is not None and until is not None and until <= since:
        raise UsageError(f"--until {args.until!r} is not after --since {args.since!r}")
    return since, until


def _log_location(text: str) -> Path | str:
    return text if is_postgres_url(text) else Path(text)


def _open(args: argparse.Namespace) -> ProductionLog:
    # An explicit --db file must exist (a typo should not export an empty new log).
    location = args.db or os.environ.get(DB_URL_ENV) or None
    return ProductionLog(location, create=args.db is None)


def cmd_export(args: argparse.Namespace) -> int:
    since, until = _window(args)
    fmt = args.format
    if fmt is None:
        suffix = args.output.suffix.lower() if args.output is not None else ""
        fmt = "jsonl" if suffix in (".jsonl", ".ndjson") else "csv"
    with _open(args) as log:
        if args.output is None:
            log.export(sys.stdout, fmt, since=since, until=until, job_id=args.job, **_who(args))
            return 0
        count = write_atomically(
            args.output,
            lambda stream: log.export(
                stream, fmt, since=since, until=until, job_id=args.job, **_who(args)
            ),
        )
    print(f"wrote {count} record(s) to {args.output} ({fmt})")
    return 0


def write_atomically(path: Path, write: Callable[[TextIO], int]) -> int:
    """Call ``write(stream)`` on a temp file next to ``path``, then rename it over ``path``:
    readers see the old file or the complete new one, never a half-written export."""
    try:
        with atomic_writer(path, text=True) as stream:
            return write(stream)
    except OSError as err:
        raise InputError(f"{path}: cannot write: {err.strerror or err}") from None


def _who(args: argparse.Namespace) -> dict[str, str | None]:
    return {"station": args.station, "operator": args.operator}


def _summary_json(summary: dict[str, Any]) -> dict[str, Any]:
    doc = dict(summary)
    for key in ("first_time", "last_time"):
        if doc[key] is not None:
            doc[key] = iso_time(doc[key])
    doc["per_site"] = {str(site): counts for site, counts in summary["per_site"].items()}
    return doc


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} %"


def _local(when: datetime) -> str:
    return when.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def cmd_summary(args: argparse.Namespace) -> int:
    since, until = _window(args)
    with _open(args) as log:
        summary = log.summary(job_id=args.job, since=since, until=until, **_who(args))
    if args.json:
        print(json.dumps(_summary_json(summary), indent=2))
        return 0
    if summary["total"] == 0:
        print("no records")
        return 0
    rate = summary["devices_per_hour"]
    print(f"records:   {summary['total']}")
    print(f"first:     {_local(summary['first_time'])}")
    print(f"last:      {_local(summary['last_time'])}")
    print(f"passed:    {summary['passed']}")
    print(f"failed:    {summary['failed']}")
    print(f"link lost: {summary['link_lost']}")
    print(f"station errors: {summary['errors']}")
    print(f"cancelled: {summary['cancelled']}")
    print(f"yield:     {_pct(summary['yield_percent'])}  (passed / cycles not cancelled)")
    print(f"rate:      {'-' if rate is None else f'{rate:.1f}'} devices/hour")
    print()
    print(f"{'SITE':>4} {'TOTAL':>7} {'PASS':>7} {'FAIL':>7} {'LINK':>5} {'CANC':>5} {'YIELD':>8}")
    for site, c in summary["per_site"].items():
        print(
            f"{site:>4} {c['total']:>7} {c['passed']:>7} {c['failed']:>7} {c['link_lost']:>5}"
            f" {c['cancelled']:>5} {_pct(c['yield_percent']):>8}"
        )
    if len(summary["per_station"]) > 1:
        print()
        print(f"{'STATION':<16} {'TOTAL':>7} {'PASS':>7} {'FAIL':>7} {'YIELD':>8}")
        for name, c in summary["per_station"].items():
            print(
                f"{name:<16} {c['total']:>7} {c['passed']:>7} {c['failed']:>7}"
                f" {_pct(c['yield_percent']):>8}"
            )
    return 0


# -- socket wear ----------------------------------------------------------------------------


def _open_wear(args: argparse.Namespace) -> SocketWear:
    # Like _open: an explicit --db must exist.
    if isinstance(args.db, str):
        raise UsageError("socket wear is counted by each station in its own file: give a PATH")
    return SocketWear(args.db, create=args.db is None)


def _reset_json(reset: WearReset) -> dict[str, Any]:
    return {
        "time": iso_time(reset.time),
        "by": reset.by,
        "previous_count": reset.previous_count,
        "reason": reset.reason,
    }


def _reset_text(reset: WearReset) -> str:
    return f"{_local(reset.time)} by {reset.by} (was {reset.previous_count}: {reset.reason})"


def _socket_json(socket: SocketCount, history: list[WearReset]) -> dict[str, Any]:
    return {
        "socket": socket.key,
        "insertions": socket.insertions,
        "updated": iso_time(socket.updated),
        "last_reset": None if socket.last_reset is None else _reset_json(socket.last_reset),
        "resets": [_reset_json(r) for r in history if r.key == socket.key],
    }


def cmd_wear(args: argparse.Namespace) -> int:
    with _open_wear(args) as wear:
        sockets = wear.sockets()
        history = wear.resets()
    if args.json:
        doc = {"sockets": [_socket_json(s, history) for s in sockets]}
        print(json.dumps(doc, indent=2, ensure_ascii=False))
        return 0
    if not sockets:
        print("no socket insertions counted yet")
        return 0
    width = max(len("SOCKET"), *(len(s.key) for s in sockets))
    print(f"{'SOCKET':<{width}} {'INSERTIONS':>10}  LAST RESET")
    for s in sockets:
        last = "never" if s.last_reset is None else _reset_text(s.last_reset)
        print(f"{s.key:<{width}} {s.insertions:>10}  {last}")
    return 0


def cmd_wear_reset(args: argparse.Namespace) -> int:
    by = args.by or login_name()
    with _open_wear(args) as wear:
        wear.check_reset(None if args.all else args.socket, by, args.reason)
        require_engineer("nothing was reset")
        if args.all:
            resets = wear.reset_all(by, args.reason)
        else:
            resets = [wear.reset(args.socket, by, args.reason)]
    if not resets:
        print("no socket insertions counted yet; nothing to reset")
    for reset in resets:
        print(
            f"socket {reset.key}: {reset.previous_count} -> 0 insertions"
            f" (reset by {reset.by}: {reset.reason})"
        )
    return 0
