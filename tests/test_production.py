"""Production runs on the simulator: serials, log, count-down, auto-start, socket wear."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from app.core.image import MemoryImage
from app.engine.events import CycleFinished, LogEvent
from app.engine.ledger import SerialLedger
from app.engine.production import Production
from app.engine.production_log import ProductionLog
from app.engine.serialization import SerialConfig, SerialSource
from app.engine.site_runner import CycleSpec
from app.engine.socket_wear import SocketWear
from app.engine.station import Station
from app.hal.programmer import open_programmer

SERIAL_AT = 0x100


def make_run(
    tmp_path: Path,
    database,
    url: str,
    *,
    count: int | None = None,
    policy: str = "void",
    wear_threshold: int | None = None,
) -> tuple:
    device = database.get("winbond.w25x10cl")
    programmer = open_programmer(url, device=device, database=database)
    image = MemoryImage.from_bytes(bytes(range(256)) * 8, 0)
    config = SerialConfig(
        kind="incremental",
        address=SERIAL_AT,
        policy=policy,
        start=1000,
        width=6,
        encoding="ascii-dec",
    )
    ledger = SerialLedger(tmp_path / "ledger.sqlite3", "job-1", SerialSource(config), policy)
    log = ProductionLog(tmp_path / "log.sqlite3")
    events: list = []
    production = Production(
        CycleSpec("program", device, image),
        job_id="job-1",
        job_hash="abc",
        log=log,
        wear=SocketWear(tmp_path / "log.sqlite3"),
        ledger=ledger,
        serial_address=SERIAL_AT,
        count_limit=count,
        wear_threshold=wear_threshold,
        operator="olga",
    )
    station = Station(programmer, events.append, production=production)
    return Run(station, production), programmer, ledger, log, events


class Run:
    """A job's station as `socketeer run` drives it: once (Start) or auto-start."""

    def __init__(self, station: Station, production: Production) -> None:
        self.station = station
        self.production = production

    def run_once(self) -> Production:
        self.station.run(self.production.spec, counted=True)
        return self.production

    def run_auto(self, idle_timeout_s: float) -> Production:
        self.station.run_auto(self.production.spec, idle_timeout_s=idle_timeout_s)
        return self.production


def test_serial_is_patched_committed_and_logged(tmp_path: Path, database) -> None:
    run, programmer, ledger, log, _ = make_run(tmp_path, database, "sim://?sites=4")
    summary = run.run_once()
    assert summary.good == 4
    serials = sorted(
        bytes(site.chip.memory[SERIAL_AT : SERIAL_AT + 6]) for site in programmer.sites
    )
    assert serials == [b"001000", b"001001", b"001002", b"001003"]
    assert ledger.counts()["used"] == 4
    records = list(log.records(job_id="job-1"))
    assert sorted(r.serial for r in records) == ["001000", "001001", "001002", "001003"]
    assert all(r.operator == "olga" and r.result == "pass" for r in records)


def test_failed_device_voids_its_serial(tmp_path: Path, database) -> None:
    run, _, ledger, log, _ = make_run(tmp_path, database, "sim://?sites=3&fault=2:verify@0x10")
    summary = run.run_once()
    assert (summary.good, summary.failed) == (2, 1)
    assert ledger.counts()["used"] == 2 and ledger.counts()["voided"] == 1
    failed = [r for r in log.records() if r.result == "fail"]
    assert len(failed) == 1 and failed[0].failed_step == "verify" and failed[0].serial


def test_count_down_with_auto_start_and_handler(tmp_path: Path, database) -> None:
    url = "sim://?sites=8&handler=0.06&fault=5:verify@0x10"
    run, programmer, ledger, log, events = make_run(
        tmp_path, database, url, count=20, policy="reuse"
    )
    summary = run.run_auto(idle_timeout_s=10)
    assert summary.good == 20
    records = list(log.records(job_id="job-1"))
    passed = [r for r in records if r.result == "pass"]
    assert len(passed) == 20
    assert len({r.serial for r in passed}) == 20, "a serial was used twice"
    assert ledger.counts()["used"] == 20
    assert any(r.site == 5 and r.result == "fail" for r in records)
    finished = [e for e in events if isinstance(e, CycleFinished)]
    assert finished[-1].remaining == 0
    # Every cycle after a site's first ran on a part the handler inserted.
    assert sum(site.insertions for site in programmer.sites) >= len(records) - 8


def test_auto_start_waits_for_insertion(tmp_path: Path, database) -> None:
    run, programmer, _, _, events = make_run(tmp_path, database, "sim://?sites=1", count=1)
    site = programmer.sites[0]
    site.insert_part(False)
    worker = threading.Thread(target=run.run_auto, kwargs={"idle_timeout_s": 10})
    worker.start()
    threading.Event().wait(0.1)
    assert not [e for e in events if isinstance(e, CycleFinished)]  # nothing without a part
    site.insert_part(True)
    worker.join(10)
    assert not worker.is_alive()
    assert [e.result.passed for e in events if isinstance(e, CycleFinished)] == [True]


def test_socket_wear_warning(tmp_path: Path, database) -> None:
    run, _, _, _, events = make_run(tmp_path, database, "sim://?sites=1", wear_threshold=2)
    run.run_once()
    assert not [e for e in events if isinstance(e, LogEvent) and e.level == "warning"]
    run.run_once()
    warnings = [e.message for e in events if isinstance(e, LogEvent) and e.level == "warning"]
    assert warnings and "2 insertions" in warnings[0]


@pytest.mark.parametrize("count", [1, 3])
def test_count_limit_is_never_exceeded(tmp_path: Path, database, count: int) -> None:
    run, _, ledger, _, _ = make_run(tmp_path, database, "sim://?sites=8", count=count)
    summary = run.run_once()
    assert summary.good == count
    assert ledger.counts()["used"] == count


def test_every_record_names_its_host_and_programmer(tmp_path: Path) -> None:
    import socket

    from app.devicedb import load_database

    database = load_database()
    device = database.get("winbond.w25q128jv")
    log = ProductionLog(tmp_path / "production.sqlite3")
    production = Production(
        CycleSpec("program", device, MemoryImage.from_bytes(b"\x12" * 256)),
        job_id="job-1",
        job_hash=None,
        log=log,
        wear=SocketWear(tmp_path / "production.sqlite3"),
        station="line-3",
    )
    programmer = open_programmer("sim://?sites=2", device=device, database=database)
    Station(programmer, lambda _e: None, None, production).run(production.spec, counted=True)
    records = list(log.records())
    assert len(records) == 2 and {r.station for r in records} == {"line-3"}
    assert {r.host for r in records} == {socket.gethostname()}
    assert {r.programmer for r in records} == {programmer.url}
