"""Events a station emits while it runs (frozen dataclasses, safe to pass across threads).

Consumers (CLI, GUI controller) receive them from worker threads and must throttle
progress themselves; the engine sends one per page batch or read chunk.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.engine.results import DeviceResult


@dataclass(frozen=True)
class PhaseStarted:
    site: int
    phase: str


@dataclass(frozen=True)
class ProgressEvent:
    site: int
    phase: str
    done: int
    total: int


@dataclass(frozen=True)
class LogEvent:
    site: int | None
    level: str  # "info", "warning", "error"
    message: str


@dataclass(frozen=True)
class CycleStarted:
    """A cycle began on ``site``; exactly one CycleFinished follows for it."""

    site: int
    action: str
    counted: bool  # a production cycle (serial, log record, counts), not a service one


@dataclass(frozen=True)
class CycleFinished:
    """The one result of a started cycle, emitted after its records are durable.

    ``good`` and ``remaining`` are the job's count-down after this cycle (production
    cycles only); ``serial`` and ``record_id`` what the cycle used and wrote.
    """

    site: int
    result: DeviceResult
    counted: bool = False
    serial: str | None = None
    record_id: int | None = None
    good: int | None = None
    remaining: int | None = None


@dataclass(frozen=True)
class SiteIdle:
    """A site did not start a cycle: the job's count is reached."""

    site: int


Event = PhaseStarted | ProgressEvent | LogEvent | CycleStarted | CycleFinished | SiteIdle
