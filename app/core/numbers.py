"""Numbers the user types (addresses, sizes, offsets, ranges): one bounded parser.

Accepts 4096, 0x1000, 0b1010, 0o17 and the binary multiples 4K, 16M, 1G, with single
underscores between digits as Python allows (0x1_0000). Refuses anything else, and any
value beyond ``limit`` (default: the 4 GiB address space every image format and part
lives in), before doing arithmetic on it, so a 5,000-digit number is one clear error.
"""

from __future__ import annotations

import re

from app.core.errors import UsageError

#: one past the highest address any supported image format or part can hold
ADDRESS_SPACE = 1 << 32
_MAX_DIGITS = 40
_NUMBER = re.compile(
    r"\s*(?P<sign>-?)(?P<digits>0[xX](?:_?[0-9a-fA-F])+|0[bB](?:_?[01])+|0[oO](?:_?[0-7])+"
    r"|[0-9](?:_?[0-9])*)\s*(?P<suffix>[kKmMgG]?)\s*"
)
_SUFFIX = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def parse_number(
    text: str, what: str = "number", *, limit: int = ADDRESS_SPACE, signed: bool = False
) -> int:
    """``text`` as an integer within [-limit, limit] (signed) or [0, limit]."""
    match = _NUMBER.fullmatch(text) if len(text) <= _MAX_DIGITS else None
    if match is None:
        raise UsageError(f"{what} {text!r} is not a number (use 4096, 0x1000 or 4K)")
    value = int(match["digits"], 0) * _SUFFIX[match["suffix"].lower()]
    if match["sign"]:
        if not signed:
            raise UsageError(f"{what} {text!r} must not be negative")
        value = -value
    if abs(value) > limit:
        raise UsageError(f"{what} {text!r} is beyond 0x{limit:X}")
    return value


def parse_range(text: str, what: str = "range", *, limit: int = ADDRESS_SPACE) -> tuple[int, int]:
    """START:END (half-open) within [0, limit]; END must not be below START."""
    if ":" not in text:
        raise UsageError(f"{what} {text!r} must be START:END, e.g. 0x0:0x8000")
    lo_text, hi_text = text.split(":", 1)
    lo = parse_number(lo_text, f"{what} start", limit=limit)
    hi = parse_number(hi_text, f"{what} end", limit=limit)
    if hi < lo:
        raise UsageError(f"{what} {text!r}: END must be >= START")
    return lo, hi


def parse_byte(text: str, what: str = "fill") -> int:
    """A byte value 0x00-0xFF."""
    return parse_number(text, what, limit=0xFF)
