"""Station: runs a device cycle on many sites in parallel, one worker thread per site."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from app.engine.events import Event, SiteFinished
from app.engine.results import DeviceResult
from app.engine.site_runner import CycleSpec, SiteRunner


@dataclass(frozen=True)
class StationResult:
    results: tuple[DeviceResult, ...]

    @property
    def passed(self) -> int:
        return sum(1 for r in self.results if r.passed)

    @property
    def failed(self) -> int:
        return len(self.results) - self.passed

    @property
    def all_passed(self) -> bool:
        return bool(self.results) and self.failed == 0


class Station:
    """Owns a programmer's sites; ``on_event`` is called from worker threads."""

    def __init__(
        self,
        programmer: Any,
        on_event: Callable[[Event], None],
        identify_candidates: Callable[[str], list[str]] | None = None,
    ) -> None:
        self.programmer = programmer
        self.on_event = on_event
        self.identify_candidates = identify_candidates
        self._cancel = threading.Event()
        self._lock = threading.Lock()

    @property
    def site_numbers(self) -> list[int]:
        return [site.index for site in self.programmer.sites]

    def _emit(self, event: Event) -> None:
        with self._lock:  # consumers need not be thread-safe
            self.on_event(event)

    def cancel(self) -> None:
        self._cancel.set()

    def run_site(self, index: int, spec: CycleSpec, cancel: threading.Event) -> DeviceResult:
        site = next(s for s in self.programmer.sites if s.index == index)
        runner = SiteRunner(site, self._emit, self.identify_candidates)
        result = runner.run(spec, cancel)
        self._emit(SiteFinished(index, result))
        return result

    def run(self, spec: CycleSpec, sites: Iterable[int] | None = None) -> StationResult:
        """Run ``spec`` on ``sites`` (default all) at once; returns when all are done."""
        self._cancel.clear()
        chosen = list(sites) if sites is not None else self.site_numbers
        unknown = sorted(set(chosen) - set(self.site_numbers))
        if unknown:
            raise ValueError(f"no site(s) {unknown} on this programmer")
        results: dict[int, DeviceResult] = {}

        def work(index: int) -> None:
            results[index] = self.run_site(index, spec, self._cancel)

        threads = [
            threading.Thread(target=work, args=(i,), name=f"site-{i}", daemon=True) for i in chosen
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return StationResult(tuple(results[i] for i in chosen))
