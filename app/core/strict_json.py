"""JSON the way Socketeer takes it from users (job files, device database entries):
strict where Python's parser is lenient, so the rest of the code never meets a value it
cannot use.

Refused, each with the line and column: NaN and Infinity (not JSON, and no count or
address is ever NaN), duplicate keys (a reviewer would read one value, the loader use
another), lone surrogate escapes such as "\\ud800" (they decode, then fail when written
or hashed), and nesting deeper than MAX_DEPTH (Python's parser would recurse until it
crashes).
"""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

#: deeper than any real job or device entry (they nest 5-6 levels)
MAX_DEPTH = 64
_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")


class StrictJsonError(ValueError):
    """What is wrong, and where: ``line`` and ``column`` (1-based) when known."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None):
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column

    def where(self, path: str) -> str:
        """``path:line:column: message`` (as far as the position is known)."""
        at = f":{self.line}" if self.line else ""
        at += f":{self.column}" if self.line and self.column else ""
        return f"{path}{at}: {self.message}"


def loads(text: str) -> Any:
    """``text`` parsed as strict JSON; StrictJsonError says what and where."""
    _check_depth(text)
    try:
        value = json.loads(text, parse_constant=_refuse_constant, object_pairs_hook=_object)
    except json.JSONDecodeError as err:
        raise StrictJsonError(f"invalid JSON: {err.msg}", err.lineno, err.colno) from None
    except _Refused as err:
        raise StrictJsonError(str(err), *_position(text, err.token)) from None
    if _SURROGATE_ESCAPE.search(text):  # only an escape can make one: walk only then
        _check_strings(value, "$")
    return value


class _Refused(ValueError):
    def __init__(self, message: str, token: str) -> None:
        super().__init__(message)
        self.token = token  # what to look for to say where


def _refuse_constant(name: str) -> Any:
    raise _Refused(f"{name} is not a JSON number", name)


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Refused(f"duplicate key {key!r}", json.dumps(key))
        out[key] = value
    return out


def _position(text: str, token: str) -> tuple[int | None, int | None]:
    """(line, column) of ``token``: its first occurrence (a duplicate key: its second),
    which is where the parser stopped unless the same characters also appear earlier
    inside a string."""
    at = text.find(token)
    if at < 0:
        return None, None
    if token.startswith('"'):  # a duplicate key: its second appearance
        second = text.find(token, at + 1)
        at = second if second >= 0 else at
    line = text.count("\n", 0, at) + 1
    return line, at - (text.rfind("\n", 0, at) + 1) + 1


def _check_depth(text: str) -> None:
    """Refuse deep nesting before the parser recurses into it (brackets inside strings
    do not count). Fast path in C (regular expressions); the position of the offending
    bracket is looked for only when there is one."""
    brackets = _NOT_BRACKETS.sub("", _STRINGS.sub('""', text))
    steps = (1 if ch in "[{" else -1 for ch in brackets)
    if max(itertools.accumulate(steps), default=0) > MAX_DEPTH:
        line, column = _deep_position(text)
        raise StrictJsonError(f"nested more than {MAX_DEPTH} levels deep", line, column)


def _deep_position(text: str) -> tuple[int, int]:
    """(line, column) of the first bracket deeper than MAX_DEPTH."""
    depth, line, line_start, in_string, escaped = 0, 1, 0, False, False
    for i, ch in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return line, i - line_start + 1
        elif ch in "]}":
            depth -= 1
        elif ch == "\n":
            line, line_start = line + 1, i + 1
    return line, 1


def _check_strings(value: Any, path: str) -> None:
    if isinstance(value, str):
        if _LONE_SURROGATE.search(value):
            raise StrictJsonError(f"{path}: a lone surrogate escape (\\ud800-\\udfff) is not text")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_strings(key, path)
            _check_strings(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_strings(item, f"{path}[{index}]")
