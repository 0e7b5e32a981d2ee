"""The remote-control API for MES systems and handlers: HTTP + JSON on Starlette (served
by uvicorn, `socketeer serve`), described by OpenAPI (app.api.openapi).

Every request carries ``Authorization: Bearer TOKEN``: the operator token may read, open
locked jobs and start/stop runs; the engineer token may do all that and open an unlocked
job for a trial run. A request without a valid token, with a body over MAX_BODY bytes,
with a body that is not a JSON object, or that the station cannot do now gets a JSON
error (``{"error": "..."}``) and changes nothing; a run in progress goes on.

Live events (site state, progress, results) stream at ``/api/v1/events`` as
server-sent events, one JSON object per ``data:`` line.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import os
import queue
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from app.api.line_view import LINE_VIEW_HTML
from app.api.openapi import OPENAPI
from app.core.errors import SocketeerError, UsageError
from app.engine.production_log import ProductionLog, iso_time
from app.engine.station_service import StationControl

MAX_BODY = 64 * 1024
LINE_FAILURES = 10  # the last failures the line view lists
OPERATOR, ENGINEER = "operator", "engineer"
SSE_POLL_S = 0.25  # how often a waiting event stream checks that its client is there


@dataclass(frozen=True)
class Tokens:
    operator: str
    engineer: str

    def role(self, presented: str) -> str | None:
        """The role a bearer token grants (compared in constant time), or None."""
        if hmac.compare_digest(presented.encode(), self.engineer.encode()):
            return ENGINEER
        if hmac.compare_digest(presented.encode(), self.operator.encode()):
            return OPERATOR
        return None


MIN_TOKEN = 16


def load_tokens(path: Path | None) -> Tokens:
    """The two tokens from ``path`` (JSON {"operator", "engineer"}) or, without one, from
    $SOCKETEER_API_OPERATOR_TOKEN and $SOCKETEER_API_ENGINEER_TOKEN."""
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
    return Tokens(operator, engineer)


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


Handler = Callable[[Request], Awaitable[Response]]


def build_app(service: StationControl, tokens: Tokens, log_location: Any = None) -> Starlette:
    """The API over ``service``; ``log_location`` is the production log the log queries
    read (None: this station's file or $SOCKETEER_DB_URL, as the station writes it)."""

    def guarded(needs: str, handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            header = request.headers.get("authorization", "")
            scheme, _, presented = header.partition(" ")
            role = tokens.role(presented.strip()) if scheme.lower() == "bearer" else None
            if role is None:
                return error(401, "missing or wrong bearer token (Authorization: Bearer ...)")
            if needs == ENGINEER and role != ENGINEER:
                return error(403, "this needs the engineer token")
            request.state.role = role
            try:
                return await handler(request)
            except QueryError as err:
                return error(400, str(err))
            except SocketeerError as err:  # the station cannot do it now; nothing changed
                return error(409, str(err))

        return endpoint

    async def body(request: Request) -> dict[str, Any]:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
            raise BodyError(413, f"request body over {MAX_BODY} bytes")
        raw = b""
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > MAX_BODY:
                raise BodyError(413, f"request body over {MAX_BODY} bytes")
        if not raw.strip():
            return {}
        try:
            doc = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as err:
            raise BodyError(400, f"request body is not JSON: {err}") from None
        if not isinstance(doc, dict):
            raise BodyError(400, "request body must be a JSON object")
        return doc

    def with_body(handler: Callable[[Request, dict[str, Any]], Awaitable[Response]]) -> Handler:
        async def endpoint(request: Request) -> Response:
            try:
                doc = await body(request)
            except BodyError as err:
                return error(err.status, err.message)
            return await handler(request, doc)

        return endpoint

    async def station(request: Request) -> Response:
        return JSONResponse(service.status())

    async def jobs(request: Request) -> Response:
        return JSONResponse({"jobs": service.jobs()})

    async def open_job(request: Request, doc: dict[str, Any]) -> Response:
        path, barcode = doc.get("path"), doc.get("barcode")
        unlocked = doc.get("allow_unlocked", False)
        if not all(isinstance(v, str | None) for v in (path, barcode)):
            return error(400, "path and barcode are strings")
        if not isinstance(unlocked, bool):
            return error(400, "allow_unlocked is true or false")
        if unlocked and request.state.role != ENGINEER:
            return error(403, "an unlocked job (trial run) needs the engineer token")
        job = await asyncio.to_thread(service.open_job, path, barcode, allow_unlocked=unlocked)
        return JSONResponse({"job": job})

    async def start(request: Request, doc: dict[str, Any]) -> Response:
        sites = doc.get("sites")
        if sites is not None and not (
            isinstance(sites, list) and all(type(s) is int for s in sites)
        ):
            return error(400, "sites is a list of site numbers")
        service.start(sites)
        return JSONResponse({"started": sites or "all"}, status_code=202)

    async def stop(request: Request, doc: dict[str, Any]) -> Response:
        return JSONResponse({"stopping": service.stop()})

    async def results(request: Request) -> Response:
        limit = _int_param(request, "limit", 100, 1, 1000)
        return JSONResponse({"results": service.results(limit)})

    async def log_records(request: Request) -> Response:
        limit = _int_param(request, "limit", 100, 1, 10_000)
        query = _log_query(request)

        def fetch() -> list[dict[str, Any]]:
            with ProductionLog(log_location) as log:
                rows = [r.to_json() for r in log.records(**query)]
            return rows[-limit:]

        return JSONResponse({"records": await asyncio.to_thread(fetch)})

    async def log_summary(request: Request) -> Response:
        query = _log_query(request)

        def fetch() -> dict[str, Any]:
            with ProductionLog(log_location) as log:
                summary = log.summary(**query)
            for key in ("first_time", "last_time"):
                if summary[key] is not None:
                    summary[key] = iso_time(summary[key])
            summary["per_site"] = {str(k): v for k, v in summary["per_site"].items()}
            return summary

        return JSONResponse(await asyncio.to_thread(fetch))

    async def events(request: Request) -> Response:
        listener = service.listen()

        async def stream() -> AsyncIterator[str]:
            try:
                yield ": connected\n\n"
                while not await request.is_disconnected():
                    try:
                        item = await asyncio.to_thread(listener.get, True, SSE_POLL_S)
                    except queue.Empty:
                        continue
                    if item is None:
                        return
                    yield f"data: {json.dumps(item)}\n\n"
            finally:
                service.forget(listener)

        return StreamingResponse(stream(), media_type="text/event-stream")

    async def openapi(request: Request) -> Response:
        return JSONResponse(OPENAPI)

    async def line_page(request: Request) -> Response:
        return HTMLResponse(LINE_VIEW_HTML)

    async def line(request: Request) -> Response:
        status = service.status()
        job_id = status["job"]["job_id"] if status["job"] else None

        def fetch() -> dict[str, Any]:
            with ProductionLog(log_location) as log:
                summary = log.summary(job_id=job_id)
                failed = log.last_failures(LINE_FAILURES, job_id)
            for key in ("first_time", "last_time"):
                summary.pop(key)
            summary["per_site"] = {str(k): v for k, v in summary["per_site"].items()}
            return {"summary": summary, "failures": [r.to_json() for r in failed]}

        line_sites = await asyncio.to_thread(service.line_sites)
        return JSONResponse(
            {
                **status,
                **(await asyncio.to_thread(fetch)),
                "line": line_sites,
            }
        )

    routes = [
        Route("/openapi.json", openapi),
        Route("/line", line_page),
        Route("/api/v1/line", guarded(OPERATOR, line)),
        Route("/api/v1/station", guarded(OPERATOR, station)),
        Route("/api/v1/jobs", guarded(OPERATOR, jobs)),
        Route("/api/v1/job", guarded(OPERATOR, with_body(open_job)), methods=["POST"]),
        Route("/api/v1/start", guarded(OPERATOR, with_body(start)), methods=["POST"]),
        Route("/api/v1/stop", guarded(OPERATOR, with_body(stop)), methods=["POST"]),
        Route("/api/v1/results", guarded(OPERATOR, results)),
        Route("/api/v1/log", guarded(OPERATOR, log_records)),
        Route("/api/v1/log/summary", guarded(OPERATOR, log_summary)),
        Route("/api/v1/events", guarded(OPERATOR, events)),
    ]

    async def not_found(request: Request, exc: Exception) -> Response:
        return error(404, f"no {request.method} {request.url.path} here (see /openapi.json)")

    async def not_allowed(request: Request, exc: Exception) -> Response:
        return error(405, f"{request.method} is not allowed on {request.url.path}")

    return Starlette(routes=routes, exception_handlers={404: not_found, 405: not_allowed})


class BodyError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _int_param(request: Request, name: str, default: int, lo: int, hi: int) -> int:
    text = request.query_params.get(name)
    if text is None:
        return default
    if not text.isdigit() or not lo <= int(text) <= hi:
        raise QueryError(f"{name} must be a whole number within {lo}..{hi}")
    return int(text)


def _log_query(request: Request) -> dict[str, Any]:
    query: dict[str, Any] = {}
    for name in ("since", "until"):
        text = request.query_params.get(name)
        if text is not None:
            try:
                when = datetime.fromisoformat(text)
            except ValueError:
                raise QueryError(f"{name}={text!r} is not an ISO 8601 time") from None
            query[name] = when if when.tzinfo else when.replace(tzinfo=UTC)
    for name, key in (("job", "job_id"), ("station", "station"), ("operator", "operator")):
        if request.query_params.get(name) is not None:
            query[key] = request.query_params[name]
    return query


class QueryError(SocketeerError):
    """A bad query parameter (reported as 409 by the guard: a client error)."""
