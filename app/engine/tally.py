"""Counting results: the one definition of yield and of a run's exit code.

Yield is passes over every cycle that judged a part: an operator's stop (cancelled) is
left out; a failure, a lost link and a station error count against it, because each
left a part unprogrammed. The production log summary, the statistics pane, the site
tiles and the CLI all count through :class:`Tally`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from app.engine.results import CANCELLED, ERROR, FAIL, LINK_LOST, PASS, DeviceResult


def counts_for_production(result: DeviceResult) -> bool:
    """Whether ``result`` moves production counts, yield and statistics: a program
    cycle that judged a part. Service operations (detect, read, verify, erase, blank
    check), an operator's stop and an empty socket are reported, not counted."""
    return (
        result.action == "program" and result.status != CANCELLED and result.failed_step != "socket"
    )


@dataclass(frozen=True)
class Tally:
    passed: int = 0
    failed: int = 0
    cancelled: int = 0
    link_lost: int = 0
    errors: int = 0

    @classmethod
    def of(cls, statuses: Iterable[str]) -> Tally:
        tally = cls()
        for status in statuses:
            tally = tally.add(status)
        return tally

    def add(self, status: str) -> Tally:
        field = _FIELDS.get(status)
        if field is None:
            raise ValueError(f"unknown result status {status!r}")
        return Tally(**{**self.__dict__, field: getattr(self, field) + 1})

    def __add__(self, other: Tally) -> Tally:
        return Tally(*(getattr(self, n) + getattr(other, n) for n in _FIELDS.values()))

    def minus(self, earlier: Tally) -> Tally:
        """The cycles counted since ``earlier`` (a snapshot of this tally)."""
        return Tally(*(getattr(self, name) - getattr(earlier, name) for name in _FIELDS.values()))

    @property
    def total(self) -> int:
        return self.passed + self.failed + self.cancelled + self.link_lost + self.errors

    @property
    def judged(self) -> int:
        """Cycles that count for yield (all but the operator's stops)."""
        return self.total - self.cancelled

    @property
    def rejected(self) -> int:
        """Judged cycles that did not pass (failures, lost links, station errors): the
        "fail" beside "pass" in the window's counts."""
        return self.judged - self.passed

    @property
    def yield_percent(self) -> float | None:
        return 100.0 * self.passed / self.judged if self.judged else None

    @property
    def exit_code(self) -> int:
        """The CLI's exit code for these results: 1 a part failed or the run was
        stopped, 3 a link or the station failed, 0 every cycle passed."""
        if self.failed or self.cancelled:
            return 1
        if self.link_lost or self.errors:
            return 3
        return 0


_FIELDS = {
    PASS: "passed",
    FAIL: "failed",
    CANCELLED: "cancelled",
    LINK_LOST: "link_lost",
    ERROR: "errors",
}
