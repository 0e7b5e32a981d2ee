"""`socketeer serve`: the station's remote-control API (app.api.server) on HTTP.

Listens on 127.0.0.1 unless told otherwise (``--host 0.0.0.0`` exposes the station to the
network: do that behind the factory's firewall only). The two bearer tokens come from
``--tokens FILE`` (JSON ``{"operator": "...", "engineer": "..."}``) or from
$SOCKETEER_API_OPERATOR_TOKEN and $SOCKETEER_API_ENGINEER_TOKEN; without both the server
does not start.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from app.commands import help_for

DEFAULT_PORT = 8750


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help=help_for("serve"))
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port ({DEFAULT_PORT})")
    p.add_argument("--programmer", metavar="URL", help="override the jobs' programmer URL")
    p.add_argument(
        "--jobs",
        type=Path,
        metavar="DIR",
        help="the job library opened by barcode (default: $SOCKETEER_JOBS_DIR)",
    )
    p.add_argument("--tokens", type=Path, metavar="FILE", help='JSON {"operator", "engineer"}')
    p.add_argument("--db", metavar="URL", help="a line's shared PostgreSQL database")
    p.add_argument("--operator", default="remote", help="operator name in the production log")
    p.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from app.api.server import build_app, load_tokens
    from app.devicedb import load_database
    from app.engine.station_service import JOBS_DIR_ENV, StationService

    tokens = load_tokens(args.tokens)
    library = args.jobs or os.environ.get(JOBS_DIR_ENV)
    service = StationService(
        load_database(),
        programmer_url=args.programmer,
        jobs_dir=Path(library) if library else None,
        db_url=args.db,
        operator=args.operator,
    )
    app = build_app(service, tokens, args.db)
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    finally:
        service.close()
    return 0
