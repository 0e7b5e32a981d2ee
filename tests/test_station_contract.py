"""The station's contract: every started cycle ends in exactly one result event, whatever
is raised inside it, and the run's counts and exit code follow from those results."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from app.cli import main
from app.core.formats import save_image
from app.core.image import MemoryImage
from app.core.job import load_job, save_job
from app.core.roles import RoleStore
from app.devicedb import load_database
from app.engine.cycle import build_cycle_spec, part_names
from app.engine.events import CycleFinished, CycleStarted, SiteIdle
from app.engine.job_setup import PreparedJob, prepare_job
from app.engine.station import Station
from app.hal.programmer import open_programmer

PASSWORD = "engineer-secret"
SERIAL = {"kind": "incremental", "address": 0x1F0, "policy": "void", "start": 5000, "width": 8}


def make_job(tmp_path: Path, capsys: pytest.CaptureFixture[str], **serial: int) -> Path:
    image = tmp_path / "fw.hex"
    save_image(MemoryImage.from_bytes(bytes((i * 7) % 251 for i in range(2048)), 0), image, "ihex")
    job_path = tmp_path / "job.json"
    args = ["job", "new", "--device", "winbond.w25x10cl", "--image", str(image), str(job_path)]
    assert main([*args, "--by", "erin"]) == 0
    loaded = load_job(job_path)
    from dataclasses import replace

    save_job(replace(loaded.job, serialization={**SERIAL, **serial}), job_path)
    capsys.readouterr()
    return job_path


def test_serials_running_out_fail_clearly_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reproduction from the issue: a limit of 2 numbers on 4 sites."""
    job_path = make_job(tmp_path, capsys, limit=5001)
    RoleStore().set_password(PASSWORD)
    monkeypatch.setenv("SOCKETEER_ENGINEER_PASSWORD", PASSWORD)
    argv = ["run", str(job_path), "--allow-unlocked", "--programmer"]
    code = main([*argv, "sim://?sites=4&timing=instant"])
    out, err = capsys.readouterr()
    assert code == 1
    assert "Traceback" not in out + err
    assert "run: 2 good, 2 failed" in out
    assert out.count("FAIL at serial: no serial numbers left") == 2
    assert "PASS: PASS" not in out
    code = main([*argv, "sim://?sites=4&timing=instant", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 1
    assert [d["status"] for d in doc["devices"]] == ["fail"] * 4  # nothing left at all
    assert {d["failed_step"] for d in doc["devices"]} == {"serial"}


# -- a failure injected at every step of a production cycle --------------------------------


def job_station(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sites: int = 3
) -> tuple[Station, PreparedJob, list]:
    loaded = load_job(make_job(tmp_path, capsys))
    database = load_database()
    device = database.get(loaded.job.device_id)
    prepared = prepare_job(loaded, device, database, operator="olga")
    url = f"sim://?sites={sites}&timing=instant"
    programmer = open_programmer(url, device=device, database=database)
    events: list = []
    station = Station(programmer, events.append, part_names(database), prepared.production)
    return station, prepared, events


def _raiser(exc: Exception) -> Callable[..., None]:
    def fail(*_args: object, **_kwargs: object) -> None:
        raise exc

    return fail


#: (where, what is broken, the status every cycle must end with, its failed step)
INJECTIONS = [
    (
        "wear store",
        lambda p, s: setattr(p.wear, "insert", _raiser(OSError("disk full"))),
        "error",
        "socket wear",
    ),
    (
        "serial allocation",
        lambda p, s: setattr(p.ledger, "reserve", _raiser(RuntimeError("bug"))),
        "error",
        "serial",
    ),
    (
        "the algorithm",
        lambda p, s: [
            setattr(site, "power", _raiser(KeyError("bug"))) for site in s.programmer.sites
        ],
        "error",
        "power",
    ),
    (
        "production log write",
        lambda p, s: setattr(p.log, "append", _raiser(OSError("read-only"))),
        "error",
        None,
    ),
    (
        "serial commit",
        lambda p, s: setattr(p.ledger, "commit", _raiser(OSError("locked"))),
        "error",
        None,
    ),
]


@pytest.mark.parametrize(
    ("where", "inject", "status", "step"), INJECTIONS, ids=[i[0] for i in INJECTIONS]
)
def test_a_failure_anywhere_ends_each_cycle_in_one_result(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    where: str,
    inject: Callable,
    status: str,
    step: str | None,
) -> None:
    station, prepared, events = job_station(tmp_path, capsys)
    inject(prepared.production, station)
    outcome = station.run(prepared.production.spec, counted=True)
    started = Counter(e.site for e in events if isinstance(e, CycleStarted))
    finished = [e for e in events if isinstance(e, CycleFinished)]
    assert started == Counter({1: 1, 2: 1, 3: 1})
    assert Counter(e.site for e in finished) == started, "a started cycle has no result"
    assert [r.status for r in outcome.results] == [status] * 3
    if step is not None:
        assert {r.failed_step for r in outcome.results} == {step}
    assert outcome.exit_code != 0
    assert all(r.message for r in outcome.results)
    assert not any(station.busy(i) for i in (1, 2, 3)), "a site was left busy"


def test_a_result_whose_record_failed_never_reuses_its_serial(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The part was programmed with the number but no record exists: the number is void."""
    station, prepared, _ = job_station(tmp_path, capsys, sites=1)
    prepared.production.log.append = _raiser(OSError("read-only"))  # type: ignore[method-assign]
    station.run(prepared.production.spec, counted=True)
    assert prepared.production.ledger is not None
    assert prepared.production.ledger.counts()["voided"] == 1
    assert prepared.production.ledger.counts()["reserved"] == 0


def test_a_consumer_that_raises_cannot_break_a_cycle(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    station, prepared, _ = job_station(tmp_path, capsys, sites=2)
    station.on_event = _raiser(BrokenPipeError())
    outcome = station.run(prepared.production.spec, counted=True)
    assert [r.status for r in outcome.results] == ["pass", "pass"]
    assert prepared.production.ledger is not None
    assert prepared.production.ledger.counts()["used"] == 2


def test_count_reached_starts_no_cycle_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    station, prepared, events = job_station(tmp_path, capsys, sites=3)
    prepared.production.count_limit = 1
    outcome = station.run(prepared.production.spec, counted=True)
    assert [r.status for r in outcome.results] == ["pass"]
    assert len([e for e in events if isinstance(e, SiteIdle)]) == 2
    assert outcome.remaining == 0 and outcome.exit_code == 0


def test_service_cycles_need_no_job_and_a_busy_site_starts_nothing(database) -> None:
    device = database.get("winbond.w25x10cl")
    programmer = open_programmer("sim://?sites=1&timing=typ", device=device, database=database)
    station = Station(programmer, lambda e: None, part_names(database))
    spec = build_cycle_spec("erase", device, database)
    first: list = []
    worker = threading.Thread(target=lambda: first.append(station.cycle(1, spec)))
    worker.start()
    while not station.busy(1) and worker.is_alive():
        threading.Event().wait(0.001)
    assert station.cycle(1, spec) is None  # refused: the site is running a cycle
    worker.join()
    assert first[0].passed
    with pytest.raises(ValueError, match="needs a job"):
        station.cycle(1, spec, counted=True)


@pytest.mark.parametrize("swap_s", [0.0, 0.001, 0.01])
def test_auto_start_never_misses_a_part_swapped_faster_than_it_looks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], swap_s: float
) -> None:
    """A handler that swaps a part before the site re-arms: the insertion is seen by the
    site's insertion count, so every site keeps going to the job's count."""
    loaded = load_job(make_job(tmp_path, capsys))
    database = load_database()
    device = database.get(loaded.job.device_id)
    prepared = prepare_job(loaded, device, database, operator="olga", count_limit=200)
    url = f"sim://?sites=8&timing=instant&handler={swap_s}"
    programmer = open_programmer(url, device=device, database=database)
    events: list = []
    station = Station(programmer, events.append, part_names(database), prepared.production)
    outcome = station.run_auto(prepared.production.spec, idle_timeout_s=10)
    assert outcome.remaining == 0 and outcome.passed == 200
    per_site = Counter(e.site for e in events if isinstance(e, CycleFinished))
    assert set(per_site) == set(range(1, 9)) and min(per_site.values()) > 5
    assert not [e for e in events if getattr(e, "level", "") == "warning"]  # no idle site
