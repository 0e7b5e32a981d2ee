"""The OpenAPI 3.1 description of the remote-control API (served at /openapi.json)."""

from __future__ import annotations

from typing import Any


def _op(summary: str, role: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "description": f"Needs the {role} token (Authorization: Bearer TOKEN).",
        "responses": {
            "200": {"description": "OK", "content": {"application/json": {}}},
            "400": {"$ref": "#/components/responses/Error"},
            "401": {"$ref": "#/components/responses/Error"},
            "403": {"$ref": "#/components/responses/Error"},
            "409": {"$ref": "#/components/responses/Error"},
            "413": {"$ref": "#/components/responses/Error"},
        },
    }
    if body is not None:
        op["requestBody"] = {
            "required": False,
            "content": {"application/json": {"schema": {"type": "object", "properties": body}}},
        }
    return op


_LOG_PARAMS = [
    {"name": n, "in": "query", "required": False, "schema": {"type": "string"}, "description": d}
    for n, d in (
        ("since", "ISO 8601 time, inclusive"),
        ("until", "ISO 8601 time, exclusive"),
        ("job", "job id"),
        ("station", "station name"),
        ("operator", "operator name"),
    )
]

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "Socketeer station API",
        "version": "1",
        "description": "Remote control of one programming station for MES systems and"
        ' handlers. Errors are JSON objects {"error": message}.',
    },
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "responses": {
            "Error": {
                "description": "the request was refused; nothing changed",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {"error": {"type": "string"}},
                            "required": ["error"],
                        }
                    }
                },
            }
        },
    },
    "security": [{"bearer": []}],
    "paths": {
        "/api/v1/station": {"get": _op("the open job, run state and every site", "operator")},
        "/api/v1/jobs": {"get": _op("the jobs in the station's jobs folder", "operator")},
        "/api/v1/job": {
            "post": _op(
                "open a locked job by path or barcode (unlocked: engineer)",
                "operator",
                {
                    "path": {"type": "string"},
                    "barcode": {"type": "string"},
                    "allow_unlocked": {"type": "boolean"},
                },
            )
        },
        "/api/v1/start": {
            "post": _op(
                "start a production cycle on all or some sites",
                "operator",
                {"sites": {"type": "array", "items": {"type": "integer"}}},
            )
        },
        "/api/v1/stop": {"post": _op("stop the run in progress", "operator", {})},
        "/api/v1/results": {
            "get": {
                **_op("results of this session's cycles, newest last", "operator"),
                "parameters": [{"name": "limit", "in": "query", "schema": {"type": "integer"}}],
            }
        },
        "/api/v1/log": {
            "get": {
                **_op("production log records", "operator"),
                "parameters": [
                    *_LOG_PARAMS,
                    {"name": "limit", "in": "query", "schema": {"type": "integer"}},
                ],
            }
        },
        "/api/v1/log/summary": {
            "get": {
                **_op("counts and yield per site and station", "operator"),
                "parameters": _LOG_PARAMS,
            }
        },
        "/api/v1/line": {
            "get": _op(
                "what the line view shows: sites, yield, rate, stations, last failures",
                "operator",
            )
        },
        "/api/v1/events": {
            "get": {
                **_op("live events as server-sent events (text/event-stream)", "operator"),
                "responses": {"200": {"description": "data: one JSON event per message"}},
            }
        },
    },
}


def markdown_reference(doc: dict[str, Any] = OPENAPI) -> str:
    """The API reference table README carries (`python -m app.api.openapi` prints it)."""
    lines = ["| method | path | what | token |", "|---|---|---|---|"]
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            role = "engineer" if "engineer token (" in op["description"] else "operator"
            params = [p["name"] for p in op.get("parameters", [])]
            body = list(
                op.get("requestBody", {})
                .get("content", {})
                .get("application/json", {})
                .get("schema", {})
                .get("properties", {})
            )
            shown = path + (f"?{'&'.join(params)}" if params else "")
            what = op["summary"] + (f" (JSON body: {', '.join(body)})" if body else "")
            lines.append(f"| {method.upper()} | `{shown}` | {what} | {role} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown_reference(), end="")
