"""JSON Schema checks of device files and package tables, with readable messages.

The validators are compiled once per process. Each error comes back as a
(JSON path, message) pair; the path is a tuple like ("devices", 12, "erase", 1).
"""

from __future__ import annotations

import difflib
import functools
import json
from collections.abc import Iterator
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from app.devicedb.files import schema_dir

JsonPath = tuple[str | int, ...]

DEVICE_SCHEMA = "device.schema.json"
PACKAGES_SCHEMA = "packages.schema.json"


@functools.cache
def validator(name: str) -> Draft202012Validator:
    """The compiled validator of schema ``name`` (a file in device_db/schema/).

    Local ``$ref``s are inlined first: the file stays readable with ``$defs``, and
    validation runs about twice as fast without reference lookups (this is most of
    the time of loading the database).
    """
    schema = json.loads((schema_dir() / name).read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(inline_refs(schema))


def inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with every ``{"$ref": "#/$defs/name", ...}`` replaced by that definition
    (keywords beside the ``$ref``, such as a more specific description, win)."""
    defs = schema.get("$defs", {})

    def resolve(node: Any, stack: tuple[str, ...]) -> Any:
        if isinstance(node, list):
            return [resolve(item, stack) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if ref is None:
            return {
                key: value if key in ("const", "enum") else resolve(value, stack)
                for key, value in node.items()
                if key != "$defs"
            }
        name = ref.removeprefix("#/$defs/")
        if name == ref or name not in defs or name in stack:
            raise ValueError(f"schema $ref {ref!r} is not a non-recursive local definition")
        siblings = {key: value for key, value in node.items() if key != "$ref"}
        return {**resolve(defs[name], (*stack, name)), **resolve(siblings, stack)}

    return resolve(schema, ())


def format_path(path: JsonPath) -> str:
    """("devices", 12, "erase", 1) -> "$.devices[12].erase[1]"."""
    out = ["$"]
    for elem in path:
        out.append(f"[{elem}]" if isinstance(elem, int) else f".{elem}")
    return "".join(out)


def schema_errors(name: str, document: Any) -> Iterator[tuple[JsonPath, str]]:
    """Every schema violation of ``document`` as (path, message)."""
    for error in validator(name).iter_errors(document):
        yield from _explain(error)


def _explain(error: ValidationError) -> Iterator[tuple[JsonPath, str]]:
    path: JsonPath = tuple(error.absolute_path)
    kind = error.validator
    schema = error.schema if isinstance(error.schema, dict) else {}
    if kind == "additionalProperties" and isinstance(error.instance, dict):
        allowed = sorted(schema.get("properties", {}))
        for key in error.instance:
            if key not in schema.get("properties", {}):
                hint = difflib.get_close_matches(key, allowed, n=1)
                tip = f" (did you mean '{hint[0]}'?)" if hint else ""
                yield (*path, key), f"unknown field{tip}"
        return
    if kind == "required":
        missing = [k for k in error.validator_value if k not in error.instance]
        for key in missing:
            yield path, f"missing required field '{key}'"
        return
    message = error.message
    if kind == "const":
        message = f"{error.instance!r} must be {error.validator_value!r}"
    description = schema.get("description")
    if description and kind not in ("minItems", "maxItems", "uniqueItems"):
        message += f" (expected {description})"
    yield path, message
