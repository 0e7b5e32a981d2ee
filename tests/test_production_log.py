"""ProductionLog: durable appends, queries, summary, export."""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
import threading
from dataclasses import fields
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from app.core.errors import InputError
from app.engine.production_log import (
    EXPORT_COLUMNS,
    ProductionLog,
    ProductionRecord,
    default_log_path,
)
from app.engine.results import DeviceResult, Mismatch

T0 = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Never the real user data folder."""
    folder = tmp_path / "data"
    monkeypatch.setenv("SOCKETEER_DATA_DIR", str(folder))
    return folder


@pytest.fixture
def log(tmp_path: Path):
    with ProductionLog(tmp_path / "log.sqlite3") as production_log:
        yield production_log


def make(
    *,
    minutes: float = 0,
    site: int = 0,
    result: str = "pass",
    job_id: str | None = "job-A",
    serial: str | None = None,
    **extra,
) -> ProductionRecord:
    values = {
        "time": T0 + timedelta(minutes=minutes),
        "station": "bench-1",
        "operator": "ann",
        "job_id": job_id,
        "job_hash": "ab" * 32,
        "site": site,
        "socket_insertions": 17,
        "device_id": "winbond.w25q128jv",
        "chip_id": "EF4018",
        "unique_id": "D267A4B1C3",
        "serial": serial,
        "result": result,
        "failed_step": None if result == "pass" else "verify",
        "message": "programmed and verified" if result == "pass" else "verify failed",
        "details": {} if result == "pass" else {"address": "0x100", "counts": [1, 0, 1]},
        "timings": {"erase": 0.5, "program": 1.25},
    }
    values.update(extra)
    return ProductionRecord(**values)


# -- records --------------------------------------------------------------------------------


def test_append_returns_increasing_ids_and_records_come_back_equal(log: ProductionLog) -> None:
    first, second = make(serial="SN1"), make(minutes=1, result="fail", serial=None)
    assert log.append(first) == 1 and log.append(second) == 2
    assert list(log.records()) == [first, second]


def test_records_are_in_time_order_not_append_order(log: ProductionLog) -> None:
    for minutes in (5, 1, 3, 1):
        log.append(make(minutes=minutes, serial=f"m{minutes}"))
    times = [r.time for r in log.records()]
    assert times == sorted(times) and len(times) == 4


def test_since_until_and_job_filters(log: ProductionLog) -> None:
    for minutes in range(10):
        log.append(make(minutes=minutes, job_id="job-A" if minutes % 2 else "job-B"))
    since, until = T0 + timedelta(minutes=3), T0 + timedelta(minutes=7)
    got = [r.time for r in log.records(since=since, until=until)]
    assert got == [T0 + timedelta(minutes=m) for m in (3, 4, 5, 6)]  # since <= t < until
    assert [r.time.minute for r in log.records(since=since, job_id="job-A")] == [3, 5, 7, 9]
    assert list(log.records(since=T0 + timedelta(days=1))) == []


def test_times_are_utc_aware_and_other_zones_are_converted(log: ProductionLog) -> None:
    cet = timezone(timedelta(hours=1))
    log.append(make(time=datetime(2026, 11, 22, 9, 0, 0, 123456, tzinfo=cet)))
    (record,) = log.records()
    assert record.time == datetime(2026, 11, 22, 8, 0, 0, 123456, tzinfo=UTC)
    assert record.time.tzinfo == UTC
    with pytest.raises(ValueError, match="timezone-aware"):
        make(time=datetime(2026, 11, 22, 8, 0))
    with pytest.raises(ValueError, match="has no time zone"):
        list(log.records(since=datetime(2026, 11, 22)))


def test_unknown_result_is_refused() -> None:
    with pytest.raises(ValueError, match="result 'ok'"):
        make(result="ok")


def test_records_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "log.sqlite3"
    with ProductionLog(path) as log:
        ids = [log.append(make(minutes=i, serial=f"SN{i}")) for i in range(3)]
    with ProductionLog(path) as log:
        assert [r.serial for r in log.records()] == ["SN0", "SN1", "SN2"]
        assert log.append(make(minutes=9)) == ids[-1] + 1
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_append_is_committed_when_it_returns(tmp_path: Path) -> None:
    """Another connection (as another process would) sees the record at once."""
    path = tmp_path / "log.sqlite3"
    with ProductionLog(path) as log:
        log.append(make(serial="SN-durable"))
        other = sqlite3.connect(path)
        assert other.execute("SELECT serial FROM production").fetchall() == [("SN-durable",)]
        with log._store.read() as conn:
            assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        other.close()


def test_concurrent_appends_from_many_threads_lose_nothing(log: ProductionLog) -> None:
    threads, per_thread = 8, 100
    ids: list[list[int]] = [[] for _ in range(threads)]
    start = threading.Barrier(threads)

    def worker(n: int) -> None:
        start.wait()
        for i in range(per_thread):
            ids[n].append(log.append(make(minutes=i, site=n, serial=f"{n}-{i}")))

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    all_ids = [i for chunk in ids for i in chunk]
    assert len(set(all_ids)) == threads * per_thread
    serials = {r.serial for r in log.records()}
    assert serials == {f"{n}-{i}" for n in range(threads) for i in range(per_thread)}
    summary = log.summary()
    assert summary["total"] == 800 and all(s["total"] == 100 for s in summary["per_site"].values())


def test_iterating_while_appending_does_not_deadlock(log: ProductionLog) -> None:
    for i in range(1200):  # more than one fetch batch
        log.append(make(minutes=i / 60))
    seen = 0
    for _ in log.records():
        if seen % 400 == 0:
            log.append(make(minutes=10_000 + seen))  # appends land after the cursor
        seen += 1
    assert seen == 1200 + 3


def test_default_path_follows_socketeer_data_dir(_data_dir: Path) -> None:
    assert default_log_path() == _data_dir / "production.sqlite3"
    with ProductionLog() as log:
        log.append(make())
    assert (_data_dir / "production.sqlite3").is_file()


def test_corrupt_or_foreign_file_is_an_input_error_naming_it(tmp_path: Path) -> None:
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"this is not a database\n" * 200)
    with pytest.raises(InputError, match=re.escape(str(junk))):
        ProductionLog(junk)
    foreign = tmp_path / "foreign.sqlite3"
    conn = sqlite3.connect(foreign)
    conn.execute("PRAGMA user_version=1")
    conn.execute("CREATE TABLE other (x)")
    conn.commit()
    conn.close()
    with pytest.raises(InputError, match="not a production log"):
        ProductionLog(foreign)
    with pytest.raises(InputError, match="no production log there"):
        ProductionLog(tmp_path / "missing.sqlite3", create=False)


def test_newer_format_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "log.sqlite3"
    ProductionLog(path).close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version=99")
    conn.commit()
    conn.close()
    with pytest.raises(InputError, match="newer"):
        ProductionLog(path)


# -- from_result ----------------------------------------------------------------------------


def test_from_result_fills_every_field() -> None:
    result = DeviceResult(
        site=3,
        action="program",
        device_id="winbond.w25q128jv",
        status="fail",
        message="verify failed at 0x1000",
        failed_step="verify",
        address=0x1000,
        chip_id="EF4018",
        candidates=("a.one", "b.two"),
        unique_id="D2",
        mismatch=Mismatch(0x1000, 0xFF, 0xFE, 3, 0, 4),
        timings={"erase": 0.1234567891, "verify": 2.0},
    )
    when = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
    record = ProductionRecord.from_result(
        result,
        station="bench-1",
        operator="ann",
        job_id="job-A",
        job_hash="cafe",
        serial="SN42",
        socket_insertions=5,
        when=when,
    )
    assert (record.time, record.station, record.operator) == (when, "bench-1", "ann")
    assert (record.job_id, record.job_hash, record.serial) == ("job-A", "cafe", "SN42")
    assert (record.site, record.socket_insertions, record.device_id) == (3, 5, result.device_id)
    assert (record.chip_id, record.unique_id, record.result) == ("EF4018", "D2", "fail")
    assert (record.failed_step, record.message) == ("verify", result.message)
    assert record.details == {
        "action": "program",
        "address": "0x1000",
        "candidates": ["a.one", "b.two"],
        "mismatch": {
            "address": "0x1000",
            "expected": "0xFF",
            "found": "0xFE",
            "differing_bytes": 3,
            "bits_set": 0,
            "bits_cleared": 4,
        },
    }
    assert record.timings == {"erase": 0.123457, "verify": 2.0}


def test_from_result_defaults_to_now_and_host_name() -> None:
    result = DeviceResult(site=0, action="program", device_id=None, status="link-lost", message="")
    before = datetime.now(UTC)
    record = ProductionRecord.from_result(result, station=None, operator="", job_id=None)
    assert before <= record.time <= datetime.now(UTC)
    assert (
        record.station and record.result == "link-lost" and record.details == {"action": "program"}
    )


# -- summary --------------------------------------------------------------------------------


def test_summary_counts_yield_sites_and_rate(log: ProductionLog) -> None:
    outcomes = ["pass"] * 6 + ["fail", "link-lost", "cancelled", "pass"]
    for i, result in enumerate(outcomes):  # 10 records over 90 minutes, sites 0 and 1
        log.append(make(minutes=10 * i, site=i % 2, result=result))
    log.append(make(minutes=500, job_id="job-B"))
    s = log.summary(job_id="job-A")
    assert (s["total"], s["passed"], s["failed"], s["link_lost"], s["cancelled"]) == (
        10,
        7,
        1,
        1,
        1,
    )
    assert s["yield_percent"] == round(100 * 7 / 9, 2)
    assert s["first_time"] == T0 and s["last_time"] == T0 + timedelta(minutes=90)
    assert s["devices_per_hour"] == round(10 / 1.5, 2)
    assert set(s["per_site"]) == {0, 1}
    site0, site1 = s["per_site"][0], s["per_site"][1]  # site 0: p p p fail cancelled
    assert (site0["total"], site0["passed"], site0["failed"], site0["cancelled"]) == (5, 3, 1, 1)
    assert site0["yield_percent"] == 75.0
    assert (site1["total"], site1["passed"], site1["link_lost"]) == (5, 4, 1)  # p p p lost p
    assert site1["yield_percent"] == 80.0
    assert log.summary(since=T0 + timedelta(minutes=400))["total"] == 1
    assert log.summary()["total"] == 11


def test_summary_of_nothing(log: ProductionLog) -> None:
    s = log.summary()
    assert s["total"] == 0 and s["yield_percent"] is None and s["devices_per_hour"] is None
    assert s["first_time"] is None and s["per_site"] == {}


# -- export ---------------------------------------------------------------------------------


def _mixed(log: ProductionLog) -> list[ProductionRecord]:
    records = [
        make(minutes=0, serial="SN,1", message='quote " and, comma'),
        make(minutes=1, result="fail", message="line one\nline two", job_hash=None),
        make(minutes=2, site=2, result="link-lost", serial=None, unique_id=None, chip_id=None),
        make(minutes=3, job_id="job-B", socket_insertions=None),
    ]
    for record in records:
        log.append(record)
    return records


def test_export_csv_parses_back_with_every_field(log: ProductionLog) -> None:
    records = _mixed(log)
    out = io.StringIO()
    assert log.export(out, "csv") == 4
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert tuple(rows[0]) == EXPORT_COLUMNS
    assert {f.name for f in fields(ProductionRecord)} <= set(rows[0])
    assert [int(r["id"]) for r in rows] == [1, 2, 3, 4]
    for row, record in zip(rows, records, strict=True):
        assert datetime.fromisoformat(row["time"]) == record.time
        assert row["message"] == record.message and row["site"] == str(record.site)
        assert row["serial"] == (record.serial or "") and row["job_hash"] == (record.job_hash or "")
        assert row["socket_insertions"] == (
            "" if record.socket_insertions is None else str(record.socket_insertions)
        )
        assert json.loads(row["details"]) == record.details
        assert json.loads(row["timings"]) == record.timings
        assert row["result"] == record.result and row["chip_id"] == (record.chip_id or "")


def test_export_jsonl_round_trips_records(log: ProductionLog) -> None:
    records = _mixed(log)
    out = io.StringIO()
    assert log.export(out, "jsonl", job_id="job-A") == 3
    lines = out.getvalue().splitlines()
    docs = [json.loads(line) for line in lines]
    assert len(docs) == 3 and all(set(d) == set(EXPORT_COLUMNS) for d in docs)
    assert docs[0]["time"] == "2026-11-22T08:00:00.000000+00:00"
    assert [ProductionRecord.from_json(d) for d in docs] == records[:3]


def test_export_filters_by_time(log: ProductionLog) -> None:
    _mixed(log)
    out = io.StringIO()
    assert log.export(out, "jsonl", since=T0 + timedelta(minutes=2)) == 2
    assert log.export(io.StringIO(), "csv", until=T0 + timedelta(minutes=1)) == 1
    with pytest.raises(ValueError, match="xml"):
        log.export(io.StringIO(), "xml")  # type: ignore[arg-type]


def test_last_failures_are_the_newest_non_passing_records(tmp_path) -> None:
    from dataclasses import replace
    from datetime import UTC, datetime, timedelta

    from app.engine.production_log import ProductionLog, ProductionRecord

    start = datetime(2026, 12, 4, tzinfo=UTC)
    base = ProductionRecord(
        time=start, station="s", operator="o", job_id="j", job_hash=None, site=1,
        socket_insertions=None, device_id=None, chip_id=None, unique_id=None, serial=None,
        result="pass", failed_step=None, message="ok",
    )  # fmt: skip
    with ProductionLog(tmp_path / "p.sqlite3") as log:
        for n in range(12):
            result = "fail" if n % 3 == 0 else "pass"
            log.append(replace(base, time=start + timedelta(seconds=n), site=n, result=result))
        log.append(replace(base, time=start + timedelta(seconds=20), result="error", job_id="k"))
        assert [r.site for r in log.last_failures(10, "j")] == [9, 6, 3, 0]
        assert [r.site for r in log.last_failures(2, "j")] == [9, 6]
        assert [r.result for r in log.last_failures(1)] == ["error"]  # every job
