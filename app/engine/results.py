"""The result of one device cycle, as the operator, the log and the CLI see it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

PASS, FAIL, CANCELLED, LINK_LOST = "pass", "fail", "cancelled", "link-lost"
#: the station could not complete the cycle (storage failure, a bug): not the part's fault
ERROR = "error"
STATUSES = (PASS, FAIL, CANCELLED, LINK_LOST, ERROR)


@dataclass(frozen=True)
class Mismatch:
    """How read-back data differs from what was expected."""

    address: int  # first differing address
    expected: int
    found: int
    differing_bytes: int
    bits_set: int  # bits that read 1 where 0 was expected
    bits_cleared: int  # bits that read 0 where 1 was expected

    def describe(self) -> str:
        return (
            f"0x{self.address:X}: expected 0x{self.expected:02X}, found 0x{self.found:02X}"
            f" ({self.differing_bytes} byte(s) differ; {self.bits_set} bit(s) set,"
            f" {self.bits_cleared} bit(s) cleared)"
        )


def compare(base: int, expected: bytes, found: bytes) -> Mismatch | None:
    """First difference of two equal-length buffers starting at ``base``, or None."""
    if expected == found:
        return None
    import numpy as np  # only a failing compare needs it (~100 ms of start-up otherwise)

    a = np.frombuffer(expected, dtype=np.uint8)
    b = np.frombuffer(found, dtype=np.uint8)
    diff = np.flatnonzero(a != b)
    x = a[diff]
    y = b[diff]
    bits_set = int(np.unpackbits(y & ~x).sum())
    bits_cleared = int(np.unpackbits(x & ~y).sum())
    first = int(diff[0])
    return Mismatch(base + first, int(a[first]), int(b[first]), len(diff), bits_set, bits_cleared)


def merge_mismatches(items: list[Mismatch]) -> Mismatch | None:
    if not items:
        return None
    first = min(items, key=lambda m: m.address)
    return Mismatch(
        first.address,
        first.expected,
        first.found,
        sum(m.differing_bytes for m in items),
        sum(m.bits_set for m in items),
        sum(m.bits_cleared for m in items),
    )


@dataclass(frozen=True)
class DeviceResult:
    site: int
    action: str
    device_id: str | None
    status: str  # one of STATUSES
    message: str  # in words, for the operator
    failed_step: str | None = None
    address: int | None = None
    chip_id: str | None = None
    candidates: tuple[str, ...] = ()
    unique_id: str | None = None
    mismatch: Mismatch | None = None
    timings: Mapping[str, float] = field(default_factory=dict)
    data: bytes | None = field(default=None, repr=False, compare=False)

    @property
    def passed(self) -> bool:
        return self.status == PASS

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc.pop("data")
        doc["passed"] = self.passed
        doc["timings"] = {k: round(v, 6) for k, v in self.timings.items()}
        if self.address is not None:
            doc["address"] = f"0x{self.address:X}"
        if self.mismatch is not None:
            m = self.mismatch
            doc["mismatch"] = {
                "address": f"0x{m.address:X}",
                "expected": f"0x{m.expected:02X}",
                "found": f"0x{m.found:02X}",
                "differing_bytes": m.differing_bytes,
                "bits_set": m.bits_set,
                "bits_cleared": m.bits_cleared,
            }
        doc["candidates"] = list(self.candidates)
        return doc
