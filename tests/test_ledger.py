"""The serial ledger: states, policies, threads, durability and crash safety."""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from app.engine.ledger import (
    INTERRUPTED_NOTE,
    DuplicateSerial,
    Reservation,
    SerialLedger,
    SerialStateError,
)
from app.engine.serialization import SerialConfig, SerialsExhausted, SerialSource

REPO = Path(__file__).resolve().parents[1]


def source(**kw: object) -> SerialSource:
    kw.setdefault("width", 6)
    return SerialSource(SerialConfig(kind="incremental", address=0, **kw))  # type: ignore[arg-type]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "serials.sqlite"


def open_ledger(
    path: Path, policy: str = "reuse", job: str = "job-1", **kw: object
) -> SerialLedger:
    return SerialLedger(path, job, source(**kw), policy)


def states(ledger: SerialLedger) -> list[tuple[int, str]]:
    return [(e.index, e.state) for e in ledger.entries()]


# -- single-threaded behaviour --------------------------------------------------------


def test_reserve_hands_out_consecutive_indexes(db: Path) -> None:
    with open_ledger(db, start=500, prefix="SN") as ledger:
        a, b = ledger.reserve(1), ledger.reserve(2)
        assert (a.index, a.text, a.data, a.site) == (0, "SN000500", b"SN000500", 1)
        assert (b.index, b.text) == (1, "SN000501")
        ledger.commit(a, "log-17")
        entry = ledger.entry(0)
        assert entry is not None
        assert (entry.state, entry.device_record, entry.site) == ("used", "log-17", 1)
        assert ledger.counts() == {"reserved": 1, "used": 1, "failed": 0, "voided": 0}


def test_reuse_policy_takes_the_lowest_failed_index_first(db: Path) -> None:
    with open_ledger(db, "reuse") as ledger:
        r = [ledger.reserve(0) for _ in range(4)]
        assert ledger.fail(r[2], "verify error") == "failed"
        assert ledger.fail(r[1], "no contact") == "failed"
        again = ledger.reserve(3)
        assert (again.index, again.text, again.site) == (1, r[1].text, 3)
        assert ledger.reserve(0).index == 2
        assert ledger.reserve(0).index == 4
        events = [(e.state, e.site, e.note) for e in ledger.history(1)]
        assert events == [
            ("reserved", 0, None),
            ("failed", 0, "no contact"),
            ("reserved", 3, None),
        ]


def test_void_policy_never_hands_a_failed_number_out_again(db: Path) -> None:
    with open_ledger(db, "void") as ledger:
        first = ledger.reserve(0)
        assert ledger.fail(first, "verify error") == "voided"
        assert ledger.reserve(0).index == 1
        assert states(ledger) == [(0, "voided"), (1, "reserved")]
        assert ledger.entry(0).note == "verify error"  # type: ignore[union-attr]


def test_commit_only_from_reserved(db: Path) -> None:
    with open_ledger(db) as ledger:
        r = ledger.reserve(0)
        ledger.commit(r)
        with pytest.raises(SerialStateError, match="it is used, not reserved"):
            ledger.commit(r)
        with pytest.raises(SerialStateError, match="it is used, not reserved"):
            ledger.fail(r, "late")
        f = ledger.reserve(0)
        ledger.fail(f, "bad part")
        with pytest.raises(SerialStateError, match="it is failed, not reserved"):
            ledger.commit(f)
        ghost = Reservation(99, "x", b"x", 0, 12345)
        with pytest.raises(SerialStateError, match="never issued"):
            ledger.commit(ghost)


def test_a_stale_reservation_cannot_commit(db: Path) -> None:
    with open_ledger(db, "reuse") as ledger:
        old = ledger.reserve(1)
        ledger.fail(old, "timeout")
        new = ledger.reserve(2)
        assert new.index == old.index
        with pytest.raises(SerialStateError, match="stale"):
            ledger.commit(old)
        ledger.commit(new)
        assert ledger.history(0)[-1].site == 2


def test_void_by_hand(db: Path) -> None:
    with open_ledger(db, "reuse") as ledger:
        a, b, c = (ledger.reserve(0) for _ in range(3))
        ledger.fail(a, "bad")
        ledger.commit(c)
        ledger.void(0, "label misprinted")
        ledger.void(1, "part dropped")
        with pytest.raises(SerialStateError, match="already used"):
            ledger.void(2, "no")
        with pytest.raises(SerialStateError, match="already voided"):
            ledger.void(0, "twice")
        with pytest.raises(SerialStateError, match="never issued"):
            ledger.void(3, "future")
        with pytest.raises(SerialStateError, match="voided, not reserved"):
            ledger.commit(b)
        assert ledger.reserve(0).index == 3  # voided numbers are not reused
        assert ledger.entry(1).note == "part dropped"  # type: ignore[union-attr]


def test_recover_voids_what_was_left_reserved(db: Path) -> None:
    with open_ledger(db, "reuse") as ledger:
        r = [ledger.reserve(s) for s in range(4)]
        ledger.commit(r[0])
        ledger.fail(r[2], "x")
    with open_ledger(db, "reuse") as ledger:
        assert ledger.recover() == [1, 3]
        assert ledger.recover() == []
        assert states(ledger) == [(0, "used"), (1, "voided"), (2, "failed"), (3, "voided")]
        assert ledger.entry(3).note == INTERRUPTED_NOTE  # type: ignore[union-attr]
        assert ledger.history(3)[-1].note == INTERRUPTED_NOTE
        assert [ledger.reserve(0).index for _ in range(2)] == [2, 4]


def test_exhaustion_records_nothing(db: Path) -> None:
    with open_ledger(db, start=1, limit=2) as ledger:
        ledger.reserve(0)
        ledger.reserve(0)
        with pytest.raises(SerialsExhausted):
            ledger.reserve(0)
        assert len(ledger.entries()) == 2
        ledger.void(1, "scrapped")
        with pytest.raises(SerialsExhausted):
            ledger.reserve(0)


def test_a_repeated_serial_is_refused(db: Path, tmp_path: Path) -> None:
    script = tmp_path / "same.py"
    script.write_text("print('AABB')\n")
    config = SerialConfig(
        kind="command", address=0, command=(sys.executable, str(script)), length=2
    )
    with SerialLedger(db, "job", SerialSource(config), "void") as ledger:
        assert ledger.reserve(0).data == b"\xaa\xbb"
        with pytest.raises(
            DuplicateSerial, match="'AABB' for index 1 was already issued as index 0"
        ):
            ledger.reserve(0)
        assert len(ledger.entries()) == 1


def test_jobs_sharing_a_file_are_independent(db: Path) -> None:
    with open_ledger(db, job="a") as a, open_ledger(db, job="b") as b:
        a.reserve(0)
        a.reserve(0)
        assert b.reserve(0).index == 0
        assert b.recover() == [0]
        assert a.counts()["reserved"] == 2


def test_durable_across_reopen(db: Path) -> None:
    with open_ledger(db, "reuse") as ledger:
        r = [ledger.reserve(0) for _ in range(3)]
        ledger.commit(r[0], "rec-1")
        ledger.fail(r[1], "verify")
        before = ledger.entries()
        # Committed before returning: another connection sees it while this one is open.
        raw = sqlite3.connect(db)
        assert raw.execute("SELECT state FROM serials WHERE idx = 1").fetchone() == ("failed",)
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        raw.close()
    with open_ledger(db, "reuse") as ledger:
        assert ledger.entries() == before
        assert ledger.reserve(0).index == 1
        assert ledger.reserve(0).index == 3
        assert len(ledger.history(0)) == 2


def test_history_cannot_be_rewritten(db: Path) -> None:
    with open_ledger(db) as ledger:
        ledger.commit(ledger.reserve(0))
    raw = sqlite3.connect(db)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        raw.execute("DELETE FROM serial_events")
    with pytest.raises(sqlite3.DatabaseError, match="never changes state"):
        raw.execute("UPDATE serials SET state = 'reserved'")
    raw.close()


def test_bad_arguments(db: Path, tmp_path: Path) -> None:
    with pytest.raises(Exception, match="policy"):
        open_ledger(db, "keep")
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"not a database at all" * 100)
    with pytest.raises(Exception, match="cannot open"):
        open_ledger(junk)
    with pytest.raises(Exception, match="cannot open"):
        open_ledger(tmp_path / "no-such-dir" / "l.sqlite")
    ledger = open_ledger(db)
    ledger.close()
    with pytest.raises(SerialStateError, match="closed"):
        ledger.reserve(0)


# -- threads --------------------------------------------------------------------------


def check_consistent(path: Path, job: str) -> dict[int, str]:
    """Ledger invariants, read straight from the file; returns index -> state."""
    raw = sqlite3.connect(path)
    try:
        rows = dict(raw.execute("SELECT idx, state FROM serials WHERE job_id = ?", (job,)))
        data = [d for (d,) in raw.execute("SELECT data_hex FROM serials WHERE job_id = ?", (job,))]
        events = raw.execute(
            "SELECT idx, state FROM serial_events WHERE job_id = ? ORDER BY id", (job,)
        ).fetchall()
    finally:
        raw.close()
    # No gaps: every index below the highest issued one is recorded.
    assert sorted(rows) == list(range(len(rows)))
    assert len(set(data)) == len(data)
    # Replay the append-only history: only legal moves, ending where the table says.
    legal = {None: {"reserved"}, "reserved": {"used", "failed", "voided"}}
    legal["failed"] = {"reserved", "voided"}
    last: dict[int, str | None] = defaultdict(lambda: None)
    for idx, state in events:
        assert state in legal.get(last[idx], set()), f"index {idx}: {last[idx]} -> {state}"
        last[idx] = state
    assert dict(last) == rows
    used_events = Counter(idx for idx, state in events if state == "used")
    assert all(n == 1 for n in used_events.values())
    assert set(used_events) == {i for i, s in rows.items() if s == "used"}
    return rows


@pytest.mark.parametrize("policy", ["reuse", "void"])
def test_threads_never_use_an_index_twice(db: Path, policy: str) -> None:
    ledgers = [open_ledger(db, policy), open_ledger(db, policy)]  # two connections, one file
    committed: list[int] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def work(site: int) -> None:
        rng = random.Random(site)
        ledger = ledgers[site % 2]
        try:
            for _ in range(25):
                r = ledger.reserve(site)
                if rng.random() < 0.3:
                    ledger.fail(r, "verify error")
                else:
                    ledger.commit(r, f"site{site}")
                    with lock:
                        committed.append(r.index)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(s,)) for s in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(committed) == len(set(committed))
    rows = check_consistent(db, "job-1")
    assert sorted(i for i, s in rows.items() if s == "used") == sorted(committed)
    counts = ledgers[0].counts()
    assert counts["reserved"] == 0
    assert counts["used"] == len(committed)
    if policy == "void":  # every reservation took a fresh number
        assert len(rows) == 200
        assert counts["voided"] == 200 - len(committed)
    else:  # failed numbers were taken again; only the last failures remain
        assert len(rows) == len(committed) + counts["failed"]
        assert counts["failed"] <= 8
    for ledger in ledgers:
        ledger.close()


# -- crash safety ---------------------------------------------------------------------

CHILD = """
import random, sys, threading, time
from pathlib import Path
from app.engine.ledger import SerialLedger
from app.engine.serialization import SerialConfig, SerialSource

path, policy, seed = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
source = SerialSource(SerialConfig(kind="incremental", address=0, width=8))
ledger = SerialLedger(path, "crash", source, policy)
ledger.recover()

def work(site):
    rng = random.Random(seed * 100 + site)
    while True:
        r = ledger.reserve(site)
        time.sleep(rng.uniform(0, 0.004))
        if rng.random() < 0.7:
            ledger.commit(r, f"dev-{r.index}")
        else:
            ledger.fail(r, "verify error")

for site in range(4):
    threading.Thread(target=work, args=(site,), daemon=True).start()
print("ready", flush=True)
time.sleep(60)
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
@pytest.mark.parametrize("policy", ["reuse", "void"])
def test_killed_station_never_reuses_or_loses_a_number(db: Path, policy: str) -> None:
    rng = random.Random(20240611)
    used_before: dict[int, int] = {}  # index -> events recorded for it when first seen used
    interrupted: set[int] = set()  # voided by recover(): may be on a part, never reused
    for iteration in range(15):
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(db), policy, str(iteration)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert child.stdout is not None
            assert child.stdout.readline() == "ready\n", child.stderr.read()  # type: ignore[union-attr]
            time.sleep(rng.uniform(0.0, 0.25))
            assert child.poll() is None, child.stderr.read()  # type: ignore[union-attr]
        finally:
            child.send_signal(signal.SIGKILL)
            child.communicate(timeout=10)
        with SerialLedger(db, "crash", source(width=8), policy) as ledger:
            left = ledger.recover()
            interrupted.update(left)
            for index in left:
                assert ledger.entry(index).note == INTERRUPTED_NOTE  # type: ignore[union-attr]
            rows = check_consistent(db, "crash")
            assert "reserved" not in rows.values()
            assert all(rows[i] == "voided" for i in interrupted)
            for index, n_events in used_before.items():
                assert rows[index] == "used"
                assert len(ledger.history(index)) == n_events  # never reserved again
            for index, state in rows.items():
                if state == "used" and index not in used_before:
                    used_before[index] = len(ledger.history(index))
    # The children did real work and were killed mid-cycle.
    assert len(used_before) > 15
    assert interrupted


# A station's cycle as production.py runs it: reserve -> (program) -> durable production
# record -> commit or fail. Killed anywhere, the next start's recover() must agree with
# the production log.
CYCLE_CHILD = """
import random, sys, threading, time
from datetime import UTC, datetime
from pathlib import Path
from app.engine.ledger import SerialLedger
from app.engine.production_log import ProductionLog, ProductionRecord
from app.engine.serialization import SerialConfig, SerialSource

folder, seed = Path(sys.argv[1]), int(sys.argv[2])
source = SerialSource(SerialConfig(kind="incremental", address=0, width=8))
ledger = SerialLedger(folder / "serials.sqlite3", "crash", source, "void")
log = ProductionLog(folder / "production.sqlite3")
ledger.recover(log.passing_record)

def work(site):
    rng = random.Random(seed * 100 + site)
    while True:
        r = ledger.reserve(site)
        time.sleep(rng.uniform(0, 0.003))
        passed = rng.random() < 0.8
        record = log.append(ProductionRecord(
            time=datetime.now(UTC), station="s", operator="o", job_id="crash",
            job_hash=None, site=site, socket_insertions=0, device_id=None, chip_id=None,
            unique_id=None, serial=r.text, result="pass" if passed else "fail",
            failed_step=None if passed else "verify", message="m", details={}, timings={}))
        if passed:
            ledger.commit(r, str(record))
        else:
            ledger.fail(r, "verify error")

for site in range(4):
    threading.Thread(target=work, args=(site,), daemon=True).start()
print("ready", flush=True)
time.sleep(60)
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_ledger_and_production_log_agree_after_fifty_kills(tmp_path: Path) -> None:
    from app.engine.production_log import ProductionLog

    rng = random.Random(20261203)
    for iteration in range(50):
        child = subprocess.Popen(
            [sys.executable, "-c", CYCLE_CHILD, str(tmp_path), str(iteration)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert child.stdout is not None
            assert child.stdout.readline() == "ready\n", child.stderr.read()  # type: ignore[union-attr]
            time.sleep(rng.uniform(0.0, 0.12))
        finally:
            child.send_signal(signal.SIGKILL)
            child.communicate(timeout=10)
    with (
        SerialLedger(tmp_path / "serials.sqlite3", "crash", source(width=8), "void") as ledger,
        ProductionLog(tmp_path / "production.sqlite3") as log,
    ):
        ledger.recover(log.passing_record)
        rows = check_consistent(tmp_path / "serials.sqlite3", "crash")
        entries = {index: ledger.entry(index) for index in rows}
        passed = [r.serial for r in log.records() if r.result == "pass"]
    used = {e.text for e in entries.values() if e is not None and e.state == "used"}
    assert "reserved" not in rows.values()
    assert len(passed) == len(set(passed)), "a serial is on two passing parts"
    assert used == set(passed), "ledger and production log disagree"
    assert len(passed) > 50  # the children did real work
