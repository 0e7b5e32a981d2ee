"""`socketeer serve`: the station's remote-control API (app.api.server) on HTTP.

Listens on 127.0.0.1 unless told otherwise (``--host 0.0.0.0`` exposes the station to the
network: do that behind the factory's firewall only). The two bearer tokens come from
``--tokens FILE`` (JSON ``{"operator": "...", "engineer": "..."}``) or from
$SOCKETEER_API_OPERATOR_TOKEN and $SOCKETEER_API_ENGINEER_TOKEN; without both the server
does not start.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from app.commands import help_for
from app.core.errors import UsageError

DEFAULT_PORT = 8750
MIN_TOKEN = 16


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help=help_for("serve"))
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port ({DEFAULT_PORT})")
    p.add_argument("--programmer", metavar="URL", help="override the jobs' programmer URL")
    p.add_argument("--jobs", type=Path, metavar="DIR", help="folder of jobs to open by barcode")
    p.add_argument("--tokens", type=Path, metavar="FILE", help='JSON {"operator", "engineer"}')
    p.add_argument("--db", metavar="URL", help="a line's shared PostgreSQL database")
    p.add_argument("--operator", default="remote", help="operator name in the production log")
    p.set_defaults(func=cmd_serve)


def load_tokens(path: Path | None) -> tuple[str, str]:
    if path is not None:
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise UsageError(f"{path}: cannot read the tokens: {err}") from None
        operator, engineer = doc.get("operator"), doc.get("engineer")
    else:
        operator = os.environ.get("SOCKETEER_API_OPERATOR_TOKEN")
        engineer = os.environ.get("SOCKETEER_API_ENGINEER_TOKEN")
    where = str(path) if path else "$SOCKETEER_API_OPERATOR_TOKEN / $SOCKETEER_API_ENGINEER_TOKEN"
    for name, token in (("operator", operator), ("engineer", engineer)):
        if not isinstance(token, str) or len(token) < MIN_TOKEN:
            raise UsageError(f"{where}: the {name} token must be at least {MIN_TOKEN} characters")
    assert isinstance(operator, str) and isinstance(engineer, str)
    if operator == engineer:
        raise UsageError(f"{where}: the operator and engineer tokens must differ")
    return operator, engineer


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from app.api.server import Tokens, build_app
    from app.devicedb import load_database
    from app.engine.station_service import StationService

    operator, engineer = load_tokens(args.tokens)
    service = StationService(
        load_database(),
        programmer_url=args.programmer,
        jobs_dir=args.jobs,
        db_url=args.db,
        operator=args.operator,
    )
    app = build_app(service, Tokens(operator, engineer), args.db)
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    finally:
        service.close()
    return 0
