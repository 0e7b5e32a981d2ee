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
class SiteFinished:
    site: int
    result: DeviceResult


Event = PhaseStarted | ProgressEvent | LogEvent | SiteFinished
