"""The serial ledger on a real PostgreSQL server (a throwaway cluster, tests/pg_cluster.py)
and, for the same promises, on SQLite: lifecycle, guards, migrations, stations, and many
station processes allocating at once while some are killed with SIGKILL."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ledger_worker import log_location  # tests/ is on sys.path

from app.engine.ledger import LEDGER_FILE, SerialLedger, SerialStateError
from app.engine.production_log import ProductionLog
from app.engine.serialization import SerialConfig, SerialSource
from app.engine.sqlite_store import StorageError

WORKER = Path(__file__).with_name("ledger_worker.py")
ROOT = Path(__file__).resolve().parents[1]


def source() -> SerialSource:
    return SerialSource(SerialConfig(kind="incremental", address=0, width=4))


def test_the_lifecycle_on_postgres(pg_url: str) -> None:
    with SerialLedger(pg_url, "job", source(), "reuse", station="st1") as ledger:
        assert "socketeer@" in str(ledger.path)
        first, second = ledger.reserve(1), ledger.reserve(2)
        assert (first.index, second.index) == (0, 1)
        ledger.commit(first, "rec-1")
        assert ledger.fail(second, "verify failed") == "failed"
        again = ledger.reserve(3)  # policy reuse: the failed number first
        assert again.index == 1 and again.text == second.text
        with pytest.raises(SerialStateError, match="stale"):
            ledger.commit(second)
        ledger.commit(again, "rec-2")
        with pytest.raises(SerialStateError, match="already used"):
            ledger.void(0, "no")
        assert ledger.counts() == {"reserved": 0, "used": 2, "failed": 0, "voided": 0}
        states = [e.state for e in ledger.history(1)]
        assert states == ["reserved", "failed", "reserved", "used"]


def test_the_guards_hold_on_the_server(pg_url: str) -> None:
    import psycopg

    with SerialLedger(pg_url, "job", source(), "void", station="st1") as ledger:
        ledger.commit(ledger.reserve(1))
    with psycopg.connect(pg_url, autocommit=True) as conn:
        for sql, message in (
            ("UPDATE serial_events SET note = 'x'", "append-only"),
            ("DELETE FROM serials", "never deleted"),
            ("UPDATE serials SET state = 'reserved'", "never changes state"),
        ):
            with pytest.raises(psycopg.Error, match=message):
                conn.execute(sql)
        (version,) = conn.execute(
            "SELECT version FROM socketeer_schema WHERE kind = 'serial ledger'"
        ).fetchone()
    assert version == LEDGER_FILE.version


def test_a_newer_database_is_refused_and_a_bad_url_is_named(pg_url: str) -> None:
    import psycopg

    SerialLedger(pg_url, "job", source(), "void").close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE socketeer_schema SET version = 99")
    with pytest.raises(StorageError, match="format 99 is newer"):
        SerialLedger(pg_url, "job", source(), "void")
    bad = pg_url.rsplit(":", 1)[0] + ":1/nothing"  # port 1: nobody listens
    with pytest.raises(StorageError, match="cannot connect for the serial ledger"):
        SerialLedger(bad.replace("socketeer@", "socketeer:secret@"), "job", source(), "void")
    try:
        SerialLedger(bad.replace("socketeer@", "socketeer:secret@"), "job", source(), "void")
    except StorageError as err:
        assert "secret" not in str(err)  # the password is never shown


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_station_recovers_only_its_own_reservations(backend, tmp_path: Path, request) -> None:
    location = (
        str(tmp_path / "serials.sqlite3")
        if backend == "sqlite"
        else request.getfixturevalue("pg_url")
    )
    with (
        SerialLedger(location, "job", source(), "void", station="line-1") as one,
        SerialLedger(location, "job", source(), "void", station="line-2") as two,
    ):
        mine, theirs = one.reserve(1), two.reserve(1)
        assert one.recover() == [mine.index]  # line-1 restarted: its own number voided
        two.commit(theirs, "rec")  # line-2's live cycle was not disturbed
        assert two.counts(station="line-2")["used"] == 1
        assert one.counts(station="line-1")["voided"] == 1


def run_stations(location: str, stations: int, each: int, kills: int, seed: int) -> int:
    """``stations`` worker processes commit ``each`` serials apiece; ``kills`` times a
    random running one is killed (SIGKILL) and started again. Returns the kills done."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    rng = random.Random(seed)

    def start(n: int) -> subprocess.Popen[bytes]:
        command = [sys.executable, str(WORKER), location, "job", f"station-{n}", str(each)]
        return subprocess.Popen(command, env=env, stderr=subprocess.PIPE)

    procs = {n: start(n) for n in range(stations)}
    done = 0
    deadline = time.monotonic() + 600
    while done < kills and time.monotonic() < deadline:
        time.sleep(rng.uniform(0.3, 1.2))
        running = [n for n, p in procs.items() if p.poll() is None]
        if not running:
            break
        victim = rng.choice(running)
        procs[victim].send_signal(signal.SIGKILL)
        procs[victim].wait()
        procs[victim] = start(victim)
        done += 1
    for n, proc in procs.items():
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, f"station-{n}: {err.decode()[-2000:]}"
    return done


def check_ledger(location: str, stations: int, each: int) -> dict[str, int]:
    with SerialLedger(location, "job", source(), "void", station="auditor") as ledger:
        entries = ledger.entries()
        counts = ledger.counts()
    with ProductionLog(log_location(location)) as log:
        passed = {r.serial: r for r in log.records(job_id="job") if r.passed}
        summary = log.summary(job_id="job")
    indexes = [e.index for e in entries]
    assert indexes == list(range(len(indexes)))  # no gaps: every issued index is there
    assert len({e.text for e in entries}) == len(entries)  # no serial twice
    assert counts["reserved"] == counts["failed"] == 0  # every killed station recovered
    assert counts["used"] == stations * each
    used = [e for e in entries if e.state == "used"]
    for entry in used:  # every committed number has its device's passing record
        assert entry.text in passed and entry.device_record is not None
    # a record written just before a kill keeps its number (recover finds it): no
    # passing record without a used number
    assert set(passed) == {e.text for e in used}
    assert set(summary["per_station"]) == {f"station-{n}" for n in range(stations)}
    return counts


def test_eight_stations_on_postgres_with_kills(pg_url: str) -> None:
    kills = run_stations(pg_url, stations=8, each=1000, kills=6, seed=17)
    counts = check_ledger(pg_url, stations=8, each=1000)
    assert kills >= 3 and counts["voided"] <= kills  # a kill voids at most its reservation


def test_eight_stations_on_sqlite_with_kills(tmp_path: Path) -> None:
    location = str(tmp_path / "serials.sqlite3")
    kills = run_stations(location, stations=8, each=250, kills=4, seed=5)
    counts = check_ledger(location, stations=8, each=250)
    assert kills >= 1 and counts["voided"] <= kills


def test_the_production_log_on_postgres(pg_url: str) -> None:
    import io

    from ledger_worker import record

    with ProductionLog(pg_url) as log:
        assert log.shared
        ids = [log.append(record(station, f"SN{n}")) for n, station in enumerate("aab")]
        assert ids == sorted(ids) and len(set(ids)) == 3
        assert log.passing_record("SN1") == str(ids[1])
        summary = log.summary(job_id="job")
        assert summary["passed"] == 3
        assert {k: v["total"] for k, v in summary["per_station"].items()} == {"a": 2, "b": 1}
        assert log.summary(station="b")["total"] == 1
        out = io.StringIO()
        assert log.export(out, "jsonl", station="a") == 2
        assert [r.serial for r in log.records(station="a")] == ["SN0", "SN1"]
