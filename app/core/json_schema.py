"""Loading JSON Schema (draft 2020-12) files, shared by the device database and job files.

Each domain words its own messages (a device file names ``$.devices[3].erase``, a job file
the same paths its lock's field digests use); what they share is how a schema file is
read, checked and compiled.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from jsonschema.protocols import Validator

JsonPath = tuple[str | int, ...]
V = TypeVar("V", bound="Validator")


def read_schema(path: Path, validator_class: type[Validator]) -> dict[str, Any]:
    """The schema file at ``path``, checked and with its local ``$ref``s inlined.

    A broken schema is a bug, not bad input, so it raises jsonschema's SchemaError.
    Inlining keeps the file readable with ``$defs`` while validation runs about twice as
    fast without reference lookups, and lets a caller validate against one part of it.
    """
    schema = json.loads(path.read_text(encoding="utf-8"))
    validator_class.check_schema(schema)
    return inline_refs(schema)


def load_validator(path: Path, validator_class: type[V]) -> V:
    """The compiled validator of the schema file at ``path`` (see :func:`read_schema`)."""
    return validator_class(read_schema(path, validator_class))


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
