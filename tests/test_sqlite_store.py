"""The SQLite layer: durability settings, versioned migrations, transactions, errors."""

from __future__ import annotations

import re
import sqlite3
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from app.engine.ledger import LEDGER_FILE, SerialLedger
from app.engine.production_log import PRODUCTION_FILE, ProductionLog
from app.engine.serialization import SerialConfig, SerialSource
from app.engine.socket_wear import SocketWear
from app.engine.sqlite_store import (
    Migration,
    Schema,
    SqliteStore,
    StorageError,
    split_statements,
)

V1 = Migration("notes", "CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, text TEXT)")
V2 = Migration("notes have an author", "ALTER TABLE notes ADD COLUMN author TEXT")
NOTES = Schema("note book", (V1, V2), ("notes",))


def raw(path: Path, *statements: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in statements:
        conn.execute(statement)
    return conn


def version(path: Path) -> int:
    conn = raw(path)
    try:
        return conn.execute("PRAGMA user_version").fetchone()[0]
    finally:
        conn.close()


def columns(path: Path, table: str) -> list[str]:
    conn = raw(path)
    try:
        return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
    finally:
        conn.close()


def test_a_new_file_gets_every_migration_and_the_durability_settings(tmp_path: Path) -> None:
    path = tmp_path / "notes.sqlite3"
    with SqliteStore(path, NOTES) as store, store.read() as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
        assert conn.execute("PRAGMA foreign_keys").fetchone() == (1,)
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000
    assert version(path) == 2
    assert columns(path, "notes") == ["id", "text", "author"]


def test_an_old_file_is_migrated_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "notes.sqlite3"
    raw(path, V1.script, "INSERT INTO notes (text) VALUES ('kept')", "PRAGMA user_version = 1")
    with SqliteStore(path, NOTES) as store, store.read() as conn:
        assert conn.execute("SELECT text, author FROM notes").fetchall() == [("kept", None)]
    assert version(path) == 2


def test_the_first_migration_accepts_a_file_that_already_holds_the_tables(tmp_path: Path) -> None:
    path = tmp_path / "notes.sqlite3"
    raw(path, V1.script, "INSERT INTO notes (text) VALUES ('kept')")  # user_version 0
    with SqliteStore(path, NOTES) as store, store.read() as conn:
        assert conn.execute("SELECT text FROM notes").fetchall() == [("kept",)]
    assert version(path) == 2


def test_a_failing_migration_leaves_the_file_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "notes.sqlite3"
    raw(path, V1.script, "INSERT INTO notes (text) VALUES ('kept')", "PRAGMA user_version = 1")
    before = path.read_bytes()
    broken = Migration("half done", "CREATE TABLE extra (x); INSERT INTO nowhere VALUES (1)")
    schema = Schema("note book", (V1, broken), ("notes",))
    with pytest.raises(StorageError) as info:
        SqliteStore(path, schema)
    message = str(info.value)
    assert message.startswith(f"{path}: cannot migrate the note book to version 2 (half done):")
    assert "no such table: nowhere" in message and message.endswith("the file is unchanged")
    assert path.read_bytes() == before
    assert version(path) == 1
    conn = raw(path)
    tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
    conn.close()
    assert tables == {"notes"}  # the first statement of the migration was rolled back too


def test_a_newer_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.sqlite3"
    SqliteStore(path, NOTES).close()
    raw(path, "PRAGMA user_version = 7").close()
    with pytest.raises(StorageError, match=r"note book format 7 is newer than .* \(2\)"):
        SqliteStore(path, NOTES)


@pytest.mark.parametrize("user_version", [0, 1, 2])
def test_another_programs_file_is_refused_untouched(tmp_path: Path, user_version: int) -> None:
    path = tmp_path / "theirs.sqlite3"
    raw(path, "CREATE TABLE theirs (x)", f"PRAGMA user_version = {user_version}").close()
    before = path.read_bytes()
    with pytest.raises(StorageError, match=re.escape(f"{path}: not a note book")):
        SqliteStore(path, NOTES)
    assert path.read_bytes() == before


def test_junk_missing_and_unreachable_files_are_named(tmp_path: Path) -> None:
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"not a database at all" * 100)
    with pytest.raises(StorageError, match=re.escape(f"{junk}: cannot open the note book")):
        SqliteStore(junk, NOTES)
    missing = tmp_path / "missing.sqlite3"
    with pytest.raises(StorageError, match=re.escape(f"{missing}: no note book there")):
        SqliteStore(missing, NOTES, create=False)
    assert not missing.exists()
    with pytest.raises(StorageError, match="cannot open the note book"):
        SqliteStore(tmp_path / "no-such-dir" / "n.sqlite3", NOTES)


def test_a_transaction_commits_or_rolls_back_as_a_whole(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "n.sqlite3", NOTES) as store:
        with store.transaction() as conn:
            conn.execute("INSERT INTO notes (text) VALUES ('one')")
        other = raw(store.path)  # committed: another connection sees it at once
        assert other.execute("SELECT text FROM notes").fetchall() == [("one",)]
        with pytest.raises(KeyError), store.transaction() as conn:  # the caller's own error
            conn.execute("INSERT INTO notes (text) VALUES ('two')")
            raise KeyError("not stored")
        failed = pytest.raises(StorageError, match=re.escape(f"{store.path}: note book error:"))
        with failed, store.transaction() as conn:
            conn.execute("INSERT INTO notes (text) VALUES ('three')")
            conn.execute("INSERT INTO nowhere VALUES (1)")
        assert other.execute("SELECT text FROM notes").fetchall() == [("one",)]
        other.close()


def test_threads_share_one_store(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "n.sqlite3", NOTES) as store:

        def work() -> None:
            for _ in range(50):
                with store.transaction() as conn:
                    (n,) = conn.execute("SELECT COUNT(*) FROM notes").fetchone()
                    conn.execute("INSERT INTO notes (text) VALUES (?)", (str(n),))

        pool = [threading.Thread(target=work) for _ in range(4)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        with store.read() as conn:
            texts = [t for (t,) in conn.execute("SELECT text FROM notes ORDER BY id")]
    assert texts == [str(n) for n in range(200)]  # each read-then-write was atomic


def test_a_closed_store_says_so(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "n.sqlite3", NOTES)
    store.close()
    store.close()
    assert store.closed
    with pytest.raises(StorageError, match="the note book is closed"), store.read():
        pass


def test_split_statements_keeps_trigger_bodies_whole() -> None:
    script = """
    CREATE TABLE a (x);
    CREATE TRIGGER t BEFORE DELETE ON a BEGIN SELECT RAISE(ABORT, 'no; never'); END;
    INSERT INTO a VALUES (';');
    """
    statements = split_statements(script)
    assert len(statements) == 3
    assert statements[1].startswith("CREATE TRIGGER") and statements[1].endswith("END;")
    with pytest.raises(ValueError, match="incomplete"):
        split_statements("CREATE TRIGGER t BEFORE DELETE ON a BEGIN SELECT 1;")  # no END


# -- the stores' own files ----------------------------------------------------------------

# The production file exactly as Socketeer wrote it before migrations (user_version 1).
PRODUCTION_V1 = """
CREATE TABLE production (
    id INTEGER PRIMARY KEY AUTOINCREMENT, time_us INTEGER NOT NULL, station TEXT NOT NULL,
    operator TEXT NOT NULL, job_id TEXT, job_hash TEXT, site INTEGER NOT NULL,
    socket_insertions INTEGER, device_id TEXT, chip_id TEXT, unique_id TEXT, serial TEXT,
    result TEXT NOT NULL CHECK (result IN ('pass', 'fail', 'cancelled', 'link-lost')),
    failed_step TEXT, message TEXT NOT NULL, details TEXT NOT NULL, timings TEXT NOT NULL);
CREATE INDEX production_time ON production (time_us);
CREATE INDEX production_job ON production (job_id, time_us);
CREATE TABLE socket_wear (key TEXT PRIMARY KEY, count INTEGER NOT NULL,
    updated_us INTEGER NOT NULL);
CREATE TABLE socket_wear_resets (id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL,
    time_us INTEGER NOT NULL, by TEXT NOT NULL, previous_count INTEGER NOT NULL);
INSERT INTO production (time_us, station, operator, site, result, message, details, timings)
    VALUES (1795334400000000, 'bench-1', 'ann', 2, 'pass', 'ok', '{}', '{"program": 1.5}');
INSERT INTO socket_wear VALUES ('sim://#site2', 7, 1795334400000000);
INSERT INTO socket_wear_resets (key, time_us, by, previous_count)
    VALUES ('sim://#site2', 1795330000000000, 'bob', 9000);
PRAGMA user_version = 1;
"""


def test_a_production_file_of_the_previous_version_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "production.sqlite3"
    conn = raw(path, "PRAGMA journal_mode = WAL")
    conn.executescript(PRODUCTION_V1)
    conn.close()
    with ProductionLog(path) as log, SocketWear(path) as wear:
        (record,) = log.records()
        assert (record.station, record.site, record.timings) == ("bench-1", 2, {"program": 1.5})
        assert wear.count("sim://#site2") == 7
        (old,) = wear.resets()
        assert (old.by, old.previous_count, old.reason) == ("bob", 9000, "")
        wear.reset("sim://#site2", "carol", "socket replaced")
        # version 3: a station error is a result of its own (the old CHECK refused it)
        error = replace(record, result="error", serial="SN-7", message="log write failed")
        log.append(error)
        assert [r.result for r in log.records()] == ["pass", "error"]
        assert log.passing_record("SN-7") is None
        # version 4: records name the host and the programmer (the old one: unknown)
        assert [r.host for r in log.records()] == [None, None]
        log.append(replace(record, host="bench-pc", programmer="ftdi://ftdi:232h:FT1/1"))
        assert [r.programmer for r in log.records()][-1] == "ftdi://ftdi:232h:FT1/1"
    assert version(path) == PRODUCTION_FILE.version == 5  # 5: the line's live site states
    assert columns(path, "socket_wear_resets")[-1] == "reason"


def test_a_version_1_ledger_file_gains_stations_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "serials.sqlite3"
    conn = raw(path, "PRAGMA journal_mode = WAL")
    conn.executescript(f"{LEDGER_FILE.migrations[0].script}; PRAGMA user_version = 1;")
    conn.execute(
        "INSERT INTO serials VALUES ('job', 0, 'SN1', '534e31', 'used', 1, 't', 't', 'r', NULL)"
    )
    conn.close()
    source = SerialSource(SerialConfig(kind="incremental", address=0, width=3))
    with SerialLedger(path, "job", source, "void") as ledger:
        assert [(e.index, e.text, e.state) for e in ledger.entries()] == [(0, "SN1", "used")]
        assert ledger.reserve(1).index == 1
        assert [e.state for e in ledger.entries()] == ["used", "reserved"]
    assert version(path) == LEDGER_FILE.version == 2
    rows = raw(path).execute("SELECT idx, station FROM serials ORDER BY idx").fetchall()
    assert rows[0] == (0, None) and rows[1][1]  # old rows: no station; new ones name it


def test_a_ledger_and_a_production_log_are_told_apart(tmp_path: Path) -> None:
    ledger, log = tmp_path / "serials.sqlite3", tmp_path / "production.sqlite3"
    source = SerialSource(SerialConfig(kind="incremental", address=0, width=3))
    SerialLedger(ledger, "job", source, "void").close()
    ProductionLog(log).close()
    with pytest.raises(StorageError, match="not a production log"):
        ProductionLog(ledger)
    with pytest.raises(StorageError, match="not a serial ledger"):  # not "newer"
        SerialLedger(log, "job", source, "void")
