"""JSON Schema checks of device files and package tables, with readable messages.

The validators are compiled once per process. Each error comes back as a
(JSON path, message) pair; the path is a tuple like ("devices", 12, "erase", 1).
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from app.core.json_schema import JsonPath, load_validator
from app.devicedb.files import schema_dir

if TYPE_CHECKING:  # jsonschema loads only when validating (a cached database skips it)
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError

DEVICE_SCHEMA = "device.schema.json"
PACKAGES_SCHEMA = "packages.schema.json"


@functools.cache
def validator(name: str) -> Draft202012Validator:
    """The compiled validator of schema ``name`` (a file in device_db/schema/); its local
    ``$ref``s are inlined, which is most of the speed of loading the database."""
    from jsonschema import Draft202012Validator

    return load_validator(schema_dir() / name, Draft202012Validator)


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
