"""Checking a job document: the job JSON Schema, then the rules a schema cannot express.

The schema is ``schema/job.schema.json`` in the installed resources (draft 2020-12, like
the device database's). The rules checked here in code are the ones that depend on
this Socketeer (image formats, checksum algorithms), on two fields at once (erase mode
against operations, a binary image's base, a checksum range's ends) or on parsing (ISO
8601 times).

Every problem is one line naming the file and the JSON path, in the notation the lock's
field digests use (``checksum.range[1]``), so a refusal of an edit and a refusal of a
malformed value name a field the same way::

    job.json: field 'count_limit' must be an integer (found "10")
    job.json: missing field 'operations.verify'
    job.json: unknown field 'colour'
"""

from __future__ import annotations

import difflib
import functools
import json
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from app.core.checksums import ALGORITHMS
from app.core.errors import InputError
from app.core.formats import FORMATS
from app.core.job_model import JOB_FORMAT, PACKAGE_FORMAT
from app.core.job_seal import json_path
from app.core.json_schema import JsonPath, read_schema
from app.core.package_data import resources_dir

if TYPE_CHECKING:  # jsonschema loads when a job is first checked, not at start-up
    from jsonschema.exceptions import ValidationError
    from jsonschema.protocols import Validator

SCHEMA_FILE = "job.schema.json"

_TYPE_NAMES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "object": "an object",
    "array": "an array",
    "null": "null",
}

Problem = tuple[JsonPath, str]  # (path, "missing" | "unknown..." | what is wrong)


class JobFormatError(InputError):
    """A job document breaks the job schema or a rule checked in code.

    ``problems`` holds every problem found, one line each (file, JSON path, what is
    wrong); the message is the first of them.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = tuple(problems)
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        super().__init__(problems[0] + more)


@functools.cache
def _validators() -> dict[str, Validator]:
    """Validators of the whole document, of its lock and of a lock's first article."""
    from jsonschema import Draft202012Validator, validators

    # JSON Schema counts 10.0 as an integer; a job file means a count or an address there.
    types = Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _checker, value: isinstance(value, int) and not isinstance(value, bool)
    )
    _JobValidator = validators.extend(Draft202012Validator, type_checker=types)
    schema = read_schema(resources_dir() / "schema" / SCHEMA_FILE, _JobValidator)
    lock = schema["properties"]["lock"]
    return {
        "document": _JobValidator(schema),
        "lock": _JobValidator(lock),
        "first_article": _JobValidator(lock["properties"]["first_article"]),
    }


# -- entry points --------------------------------------------------------------------


def check_marker(doc: Mapping[str, Any], where: str) -> bool:
    """The document's format marker; True for a package (the image embedded)."""
    marker = doc.get("format")
    if marker not in (JOB_FORMAT, PACKAGE_FORMAT):
        found = "no 'format' marker" if marker is None else f"format {_show(marker)}"
        raise InputError(
            f"{where}: not a Socketeer job ({found}; expected {JOB_FORMAT!r} or {PACKAGE_FORMAT!r})"
        )
    if marker == JOB_FORMAT and "image_data" in doc:
        raise InputError(f"{where}: unknown field 'image_data' (only packages embed the image)")
    return marker == PACKAGE_FORMAT


def check_document(doc: Mapping[str, Any], where: str) -> None:
    """Raise JobFormatError unless ``doc`` (a whole job file or package) is a valid job."""
    problems = _schema_problems("document", doc, ())
    if not problems:
        problems = list(_content_rules(doc))
        if doc.get("lock") is not None:
            problems += _lock_rules(doc["lock"], ("lock",))
    _raise(where, problems)


def check_lock_record(raw: Any, where: str) -> None:
    """Raise JobFormatError unless ``raw`` is a valid ``lock`` record (checked before the
    content, which a lock check compares as it stands)."""
    problems = _schema_problems("lock", raw, ("lock",))
    if not problems and raw is not None:
        problems = list(_lock_rules(raw, ("lock",)))
    _raise(where, problems)


def check_first_article(raw: Mapping[str, Any], where: str) -> None:
    """Raise JobFormatError unless ``raw`` is a valid first-article record."""
    prefix = ("first_article",)
    problems = _schema_problems("first_article", raw, prefix)
    if not problems:
        problems = list(_first_article_rules(raw, prefix))
    _raise(where, problems)


def _raise(where: str, problems: Iterable[Problem]) -> None:
    # A set: jsonschema gives one "required" error per missing field, without saying
    # which, so each is explained as every missing field of its object.
    lines = sorted({(json_path(path), text) for path, text in problems})
    if lines:
        raise JobFormatError([f"{where}: {_line(path, text)}" for path, text in lines])


def _line(path: str, text: str) -> str:
    if text == "missing":
        return f"missing field '{path}'"
    if text.startswith("unknown"):
        return f"unknown field '{path}'{text.removeprefix('unknown')}"
    return f"field '{path}' {text}" if path else f"the document {text}"


# -- schema violations, worded ---------------------------------------------------------


def _schema_problems(part: str, instance: Any, prefix: JsonPath) -> list[Problem]:
    return [
        problem
        for error in _validators()[part].iter_errors(instance)
        for problem in _explain(error, prefix)
    ]


def _explain(error: ValidationError, prefix: JsonPath) -> Iterator[Problem]:
    path: JsonPath = (*prefix, *error.absolute_path)
    kind, value = error.validator, error.instance
    node = error.schema if isinstance(error.schema, dict) else {}
    if kind == "required":
        for key in error.validator_value:
            if key not in value:
                yield (*path, key), "missing"
    elif kind == "additionalProperties":
        known = sorted(node.get("properties", {}))
        for key in value:
            if key not in known:
                hint = difflib.get_close_matches(key, known, n=1)
                yield (*path, key), "unknown" + (f" (did you mean '{hint[0]}'?)" if hint else "")
    elif kind == "type":
        wanted = error.validator_value
        names = [wanted] if isinstance(wanted, str) else wanted
        yield path, f"must be {' or '.join(_TYPE_NAMES[n] for n in names)} (found {_show(value)})"
    elif kind == "enum":
        choices = ", ".join(str(choice) for choice in error.validator_value)
        yield path, f"must be one of {choices} (found {_show(value)})"
    elif kind in ("minimum", "maximum"):
        upper = f" and <= {node['maximum']}" if "maximum" in node else ""
        bounds = f">= {node['minimum']}{upper}" if "minimum" in node else f"<= {node['maximum']}"
        yield path, f"must be {bounds} (found {value})"
    elif kind in ("minItems", "maxItems"):
        low, high = node.get("minItems"), node.get("maxItems")
        if low == high:
            count = f"exactly {low}"
        else:
            count = f"at least {low}" if kind == "minItems" else f"at most {high}"
        yield path, f"must hold {count} items (found {len(value)})"
    elif kind == "pattern" and "description" in node:
        yield path, f"must be {node['description']} (found {_show(value)})"
    else:
        yield path, error.message


# -- rules checked in code -------------------------------------------------------------


def _content_rules(doc: Mapping[str, Any]) -> Iterator[Problem]:
    image = doc["image"]
    fmt = image["format"]
    if fmt not in FORMATS:
        yield ("image", "format"), f"must be one of {', '.join(FORMATS)} (found {_show(fmt)})"
    elif fmt != "bin" and image.get("base") is not None:
        yield ("image", "base"), f"applies to binary images only (format is {fmt!r}); use null"
    if doc["erase_mode"] == "none" and doc["operations"]["erase"]:
        yield ("erase_mode",), "is 'none' but operations.erase is true"
    checksum = doc.get("checksum")
    if checksum is not None:
        yield from _algorithm(checksum["algo"], ("checksum", "algo"))
        span = checksum.get("range")
        if span is not None and span[0] > span[1]:
            yield (
                ("checksum", "range"),
                f"must be [start, end] with 0 <= start <= end (found {_show(span)})",
            )
    yield from _time(doc.get("created_at", ""), ("created_at",))


def _lock_rules(lock: Mapping[str, Any], prefix: JsonPath) -> Iterator[Problem]:
    yield from _time(lock["approved_at"], (*prefix, "approved_at"))
    yield from _first_article_rules(lock["first_article"], (*prefix, "first_article"))


def _first_article_rules(raw: Mapping[str, Any], prefix: JsonPath) -> Iterator[Problem]:
    yield from _algorithm(raw["checksum_algo"], (*prefix, "checksum_algo"))
    yield from _time(raw["at"], (*prefix, "at"))


def _algorithm(algo: str, path: JsonPath) -> Iterator[Problem]:
    if algo not in ALGORITHMS:
        yield path, f"must be one of {', '.join(ALGORITHMS)} (found {_show(algo)})"


def _time(value: str, path: JsonPath) -> Iterator[Problem]:
    """An ISO 8601 time, or empty (not recorded)."""
    if value:
        try:
            datetime.fromisoformat(value)
        except ValueError:
            yield path, f"is not an ISO 8601 time ({value!r})"


def _show(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
