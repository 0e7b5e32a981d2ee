"""Timing whole processes, as a user runs them, against a reference in the same run.

Each comparison runs A and B in turn (A B A B ...) after a warm-up of each, so a drift
in the machine's speed moves both; it reports the median wall time of each, the median
of the pair-by-pair ratios, and each process's peak resident memory (the kernel's
accounting of the reaped child, ru_maxrss).

Socketeer runs from the environment's ``socketeer`` script with bytecode caching on, as
an installed copy runs (PYTHONDONTWRITEBYTECODE, if set in the caller's shell, is
dropped for the children).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

Command = Sequence[str]


def socketeer(*args: str) -> list[str]:
    """The command line of the installed ``socketeer`` script beside this Python."""
    return [str(Path(sys.executable).with_name("socketeer")), *args]


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def tool(name: str) -> str | None:
    """A reference tool on PATH or in /usr/sbin (flashrom), or None."""
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")


@dataclass
class Run:
    wall_s: float
    peak_mib: float


def run_once(command: Command, *, before: Callable[[], None] | None = None) -> Run:
    """Run ``command`` to its end (output discarded); wall time and peak memory.
    ``before`` runs first, outside the timing (e.g. a fresh chip file)."""
    if before is not None:
        before()
    started = time.perf_counter()
    process = subprocess.Popen(
        list(command), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=child_env()
    )
    assert process.stderr is not None
    err = process.stderr.read()
    _pid, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        text = err.decode(errors="replace").strip()[-600:]
        raise SystemExit(f"{' '.join(command)} failed ({process.returncode}): {text}")
    return Run(wall, usage.ru_maxrss / 1024)


@dataclass
class Pair:
    a: list[Run]
    b: list[Run]

    @property
    def a_s(self) -> float:
        return statistics.median(r.wall_s for r in self.a)

    @property
    def b_s(self) -> float:
        return statistics.median(r.wall_s for r in self.b)

    @property
    def ratio(self) -> float:
        return statistics.median(x.wall_s / y.wall_s for x, y in zip(self.a, self.b, strict=True))

    @property
    def a_peak_mib(self) -> float:
        return max(r.peak_mib for r in self.a)

    @property
    def b_peak_mib(self) -> float:
        return max(r.peak_mib for r in self.b)


def compare(
    a: Command,
    b: Command,
    runs: int,
    *,
    before_a: Callable[[], None] | None = None,
    before_b: Callable[[], None] | None = None,
) -> Pair:
    """``runs`` paired runs of A and B after one warm-up of each."""
    run_once(a, before=before_a)
    run_once(b, before=before_b)
    pair = Pair([], [])
    for _ in range(runs):
        pair.a.append(run_once(a, before=before_a))
        pair.b.append(run_once(b, before=before_b))
    return pair


def verdict(value: float, goal: float) -> str:
    return "ok" if value <= goal else "MISSED"


def report(label: str, pair: Pair, a_name: str, b_name: str, goal: float) -> bool:
    """Two lines: both medians and the paired ratio against ``goal``; True when met."""
    print(f"{label}")
    print(
        f"    {a_name} {pair.a_s:.3f} s, {b_name} {pair.b_s:.3f} s (medians of {len(pair.a)})"
        f"  ratio {pair.ratio:.2f}x (goal <= {goal:g}x)  {verdict(pair.ratio, goal)}"
    )
    return pair.ratio <= goal
