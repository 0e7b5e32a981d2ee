"""The serial ledger: every serial number reserved, used, failed or voided, never twice.

One SQLite file (one station) or one PostgreSQL database (a line of stations,
app.engine.pg_store) may hold the ledgers of many jobs. Each state change is one
transaction committed before the method returns (SQLite: WAL, ``synchronous=FULL``), so a
power cut or a killed process loses nothing that a caller was told had happened; the
writes of one job are serialised across processes and stations (SQLite's write lock, a
PostgreSQL advisory lock named after the job).
``serials`` holds one row per issued index; ``serial_events`` is the append-only history
(triggers refuse edits).

Life of a number::

    reserve -> reserved --commit--> used            (final: the device carries it)
                        --fail----> failed           (policy "reuse": reserved again later)
                                    voided           (policy "void", void(), recover(): final)

An index is issued once: a new reservation takes ``max(idx) + 1`` (or, with policy
"reuse", the lowest failed index first), so the issued indexes never have gaps. A number
left ``reserved`` by a process that died mid-cycle may already be on a part. ``recover()``
reconciles it with the production log: when a passing record for it exists (the crash came
between the durable record and the commit), the number is used by that record; otherwise
it is voided, never handed out again. Each number records the station that reserved it,
and a station recovers only its own: on a shared database another station's live
reservations are not touched.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from app.core.errors import InputError, SocketeerError
from app.engine.pg_store import PgStore, is_postgres_url
from app.engine.production_log import default_station_name
from app.engine.serialization import POLICIES, SerialSource
from app.engine.sqlite_store import Migration, Schema, SqliteStore, UsesStore

RESERVED, USED, FAILED, VOIDED = "reserved", "used", "failed", "voided"


class Db(Protocol):
    """What the ledger's SQL runs on: an sqlite3 connection or a PgConnection."""

    def execute(self, sql: str, params: Any = ..., /) -> Any: ...


STATES = (RESERVED, USED, FAILED, VOIDED)
INTERRUPTED_NOTE = "interrupted: the station stopped before this device finished"
RECOVERED_NOTE = "recovered: the station stopped after the device's passing record was written"


def _tables(index_type: str, event_id: str) -> str:
    """The ledger's two tables and their indexes, in either dialect (the integer type of
    an index, the event id column)."""
    return f"""
CREATE TABLE IF NOT EXISTS serials (
    job_id TEXT NOT NULL,
    idx {index_type} NOT NULL CHECK (idx >= 0),
    text TEXT NOT NULL,
    data_hex TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN {STATES!r}),
    site INTEGER,
    reserved_at TEXT,
    updated_at TEXT NOT NULL,
    device_record TEXT,
    note TEXT,
    PRIMARY KEY (job_id, idx)
);
CREATE INDEX IF NOT EXISTS serials_by_state ON serials (job_id, state, idx);
CREATE INDEX IF NOT EXISTS serials_by_data ON serials (job_id, data_hex);
CREATE TABLE IF NOT EXISTS serial_events (
    {event_id},
    job_id TEXT NOT NULL,
    idx {index_type} NOT NULL,
    state TEXT NOT NULL CHECK (state IN {STATES!r}),
    site INTEGER,
    at TEXT NOT NULL,
    device_record TEXT,
    note TEXT
);
CREATE INDEX IF NOT EXISTS serial_events_by_idx ON serial_events (job_id, idx, id);
"""


_SQLITE_GUARDS = """
CREATE TRIGGER IF NOT EXISTS serial_events_append_only_u BEFORE UPDATE ON serial_events
BEGIN SELECT RAISE(ABORT, 'serial_events is append-only'); END;
CREATE TRIGGER IF NOT EXISTS serial_events_append_only_d BEFORE DELETE ON serial_events
BEGIN SELECT RAISE(ABORT, 'serial_events is append-only'); END;
CREATE TRIGGER IF NOT EXISTS serials_keep_rows BEFORE DELETE ON serials
BEGIN SELECT RAISE(ABORT, 'serial ledger rows are never deleted'); END;
CREATE TRIGGER IF NOT EXISTS serials_used_is_final BEFORE UPDATE ON serials
WHEN OLD.state IN ('used', 'voided')
BEGIN SELECT RAISE(ABORT, 'a used or voided serial never changes state'); END;
"""

_PG_GUARDS = """
CREATE OR REPLACE FUNCTION socketeer_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION '%', TG_ARGV[0]; END $$;
CREATE OR REPLACE TRIGGER serial_events_append_only BEFORE UPDATE OR DELETE ON serial_events
FOR EACH ROW EXECUTE FUNCTION socketeer_refuse('serial_events is append-only');
CREATE OR REPLACE TRIGGER serials_keep_rows BEFORE DELETE ON serials
FOR EACH ROW EXECUTE FUNCTION socketeer_refuse('serial ledger rows are never deleted');
CREATE OR REPLACE TRIGGER serials_used_is_final BEFORE UPDATE ON serials
FOR EACH ROW WHEN (OLD.state IN ('used', 'voided'))
EXECUTE FUNCTION socketeer_refuse('a used or voided serial never changes state');
"""

_TABLES = _tables("INTEGER", "id INTEGER PRIMARY KEY") + _SQLITE_GUARDS
_PG_TABLES = _tables("BIGINT", "id BIGSERIAL PRIMARY KEY") + _PG_GUARDS

_STATIONS = """
ALTER TABLE serials ADD COLUMN station TEXT;
ALTER TABLE serial_events ADD COLUMN station TEXT;
CREATE INDEX IF NOT EXISTS serials_by_station ON serials (job_id, state, station);
"""

LEDGER_FILE = Schema(
    "serial ledger",
    (
        Migration("serials, their append-only history and its guards", _TABLES),
        Migration("the station of every reservation and event", _STATIONS),
    ),
    ("serials", "serial_events"),
    (
        Migration("serials, their append-only history and its guards", _PG_TABLES),
        Migration("the station of every reservation and event", _STATIONS),
    ),
)


class SerialStateError(SocketeerError):
    """A ledger change the number's current state does not allow (e.g. commit twice)."""


class DuplicateSerial(InputError):
    """The source produced a serial this job already issued under another index."""


@dataclass(frozen=True)
class Reservation:
    """A number handed to one site for one device cycle.

    ``token`` is the id of the reservation's event: a stale reservation (its number failed
    and was reserved again by another site) can then neither commit nor fail.
    """

    index: int
    text: str
    data: bytes = field(repr=False)
    site: int
    token: int


@dataclass(frozen=True)
class LedgerEntry:
    """The current state of one issued index."""

    index: int
    text: str
    data: bytes = field(repr=False)
    state: str
    site: int | None
    reserved_at: str | None
    updated_at: str
    device_record: str | None
    note: str | None


@dataclass(frozen=True)
class LedgerEvent:
    """One row of an index's history."""

    id: int
    index: int
    state: str
    site: int | None
    at: str
    device_record: str | None
    note: str | None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


class SerialLedger(UsesStore["SqliteStore | PgStore"]):
    """Issues serial numbers for one job from ``source`` and records what became of them.

    ``location`` is an SQLite file or a ``postgresql://`` URL. ``station`` names this
    station in every reservation and event (default: $SOCKETEER_STATION or the host name).

    Thread-safe: the store serializes every call, and the job's write lock serializes
    processes and stations. ``reserve`` holds it while the source runs, so a slow serial
    command delays the other sites' reserves.
    """

    def __init__(
        self,
        location: Path | str,
        job_id: str,
        source: SerialSource,
        policy: str,
        *,
        station: str | None = None,
    ) -> None:
        if policy not in POLICIES:
            raise InputError(f"serial policy must be one of {', '.join(POLICIES)}; got {policy!r}")
        if not job_id:
            raise InputError("serial ledger: job_id must not be empty")
        self.job_id = job_id
        self.source = source
        self.policy = policy
        self.station = station or default_station_name()
        self._store: SqliteStore | PgStore
        if is_postgres_url(location):
            self._store = PgStore(str(location), LEDGER_FILE)
        else:
            self._store = SqliteStore(Path(location), LEDGER_FILE)
        self.path = self._store.path

    # -- lifetime -------------------------------------------------------------------

    def _open(self) -> SqliteStore | PgStore:
        if self._store.closed:
            raise SerialStateError(f"serial ledger {self.path} is closed")
        return self._store

    def _write(self) -> AbstractContextManager[Db]:
        """A write transaction holding this job's lock."""
        return self._open().transaction(lock=f"serials:{self.job_id}")

    def _event(
        self,
        db: Db,
        index: int,
        state: str,
        site: int | None,
        at: str,
        device_record: str | None = None,
        note: str | None = None,
    ) -> int:
        (event_id,) = db.execute(
            "INSERT INTO serial_events"
            " (job_id, idx, state, site, at, device_record, note, station)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (self.job_id, index, state, site, at, device_record, note, self.station),
        ).fetchone()
        return int(event_id)

    # -- state changes --------------------------------------------------------------

    def reserve(self, site: int) -> Reservation:
        """Hand out a number for one device on ``site``.

        Policy "reuse" takes the lowest failed index first (with the bytes it was issued
        with); otherwise the next index never issued. Raises SerialsExhausted when the
        source has no more numbers, DuplicateSerial if it repeats an issued serial.
        """
        with self._write() as db:
            now = _now()
            row = None
            if self.policy == "reuse":
                row = db.execute(
                    "SELECT idx, text, data_hex FROM serials WHERE job_id = ? AND state = ?"
                    " ORDER BY idx LIMIT 1",
                    (self.job_id, FAILED),
                ).fetchone()
            if row is not None:
                index, text, data = row[0], row[1], bytes.fromhex(row[2])
                db.execute(
                    "UPDATE serials SET state = ?, site = ?, reserved_at = ?, updated_at = ?,"
                    " device_record = NULL, note = NULL, station = ? WHERE job_id = ? AND idx = ?",
                    (RESERVED, site, now, now, self.station, self.job_id, index),
                )
            else:
                (top,) = db.execute(
                    "SELECT MAX(idx) FROM serials WHERE job_id = ?", (self.job_id,)
                ).fetchone()
                index = 0 if top is None else top + 1
                value = self.source.value(index, site=site)
                text, data = value.text, value.data
                dup = db.execute(
                    "SELECT idx FROM serials WHERE job_id = ? AND data_hex = ? LIMIT 1",
                    (self.job_id, data.hex()),
                ).fetchone()
                if dup is not None:
                    raise DuplicateSerial(
                        f"serial {text!r} for index {index} was already issued as index"
                        f" {dup[0]} of job {self.job_id!r}; fix the serial source"
                    )
                db.execute(
                    "INSERT INTO serials (job_id, idx, text, data_hex, state, site,"
                    " reserved_at, updated_at, station) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (self.job_id, index, text, data.hex(), RESERVED, site, now, now, self.station),
                )
            token = self._event(db, index, RESERVED, site, now)
        return Reservation(index, text, data, site, token)

    def commit(self, reservation: Reservation, device_record: str | None = None) -> None:
        """The device carries the number: reserved -> used (final)."""
        with self._write() as db:
            self._expect_reserved(db, reservation, "commit")
            now = _now()
            db.execute(
                "UPDATE serials SET state = ?, updated_at = ?, device_record = ?"
                " WHERE job_id = ? AND idx = ?",
                (USED, now, device_record, self.job_id, reservation.index),
            )
            self._event(db, reservation.index, USED, reservation.site, now, device_record)

    def fail(self, reservation: Reservation, note: str) -> str:
        """The device failed before it kept the number; returns the new state.

        Policy "reuse": failed (reserved again later); policy "void": voided (final).
        """
        state = FAILED if self.policy == "reuse" else VOIDED
        with self._write() as db:
            self._expect_reserved(db, reservation, "fail")
            now = _now()
            db.execute(
                "UPDATE serials SET state = ?, updated_at = ?, note = ?"
                " WHERE job_id = ? AND idx = ?",
                (state, now, note, self.job_id, reservation.index),
            )
            self._event(db, reservation.index, state, reservation.site, now, None, note)
        return state

    def void(self, index: int, note: str) -> None:
        """Retire an issued number for good (reserved or failed -> voided)."""
        with self._write() as db:
            row = db.execute(
                "SELECT state, text FROM serials WHERE job_id = ? AND idx = ?",
                (self.job_id, index),
            ).fetchone()
            if row is None:
                raise SerialStateError(
                    f"serial index {index} of job {self.job_id!r} was never issued"
                )
            if row[0] not in (RESERVED, FAILED):
                raise SerialStateError(
                    f"cannot void serial {row[1]!r} (index {index}): it is already {row[0]}"
                )
            now = _now()
            db.execute(
                "UPDATE serials SET state = ?, updated_at = ?, note = ?"
                " WHERE job_id = ? AND idx = ?",
                (VOIDED, now, note, self.job_id, index),
            )
            self._event(db, index, VOIDED, None, now, None, note)

    def recover(self, passing_record: Callable[[str], str | None] | None = None) -> list[int]:
        """Settle every number left reserved (its process died mid-cycle); returns the
        indexes voided.

        ``passing_record(serial text)`` names the production record of a part that passed
        with that serial, if any: such a number is used by that record (the part carries
        it and its record is durable). Every other one is voided. Only this station's
        reservations (and those of ledgers older than station names) are settled: on a
        shared database another station's live cycles keep theirs. Call once when the
        station opens the ledger, before any reserve.
        """
        with self._write() as db:
            stale = db.execute(
                "SELECT idx, text FROM serials WHERE job_id = ? AND state = ?"
                " AND (station = ? OR station IS NULL) ORDER BY idx",
                (self.job_id, RESERVED, self.station),
            ).fetchall()
            now = _now()
            voided = []
            for index, text in stale:
                record = passing_record(text) if passing_record is not None else None
                state, note = (
                    (VOIDED, INTERRUPTED_NOTE) if record is None else (USED, RECOVERED_NOTE)
                )
                db.execute(
                    "UPDATE serials SET state = ?, updated_at = ?, note = ?, device_record = ?"
                    " WHERE job_id = ? AND idx = ?",
                    (state, now, note, record, self.job_id, index),
                )
                self._event(db, index, state, None, now, record, note)
                if record is None:
                    voided.append(index)
        return voided

    def _expect_reserved(self, db: Db, res: Reservation, action: str) -> None:
        row = db.execute(
            "SELECT state, text FROM serials WHERE job_id = ? AND idx = ?",
            (self.job_id, res.index),
        ).fetchone()
        if row is None:
            raise SerialStateError(
                f"cannot {action} serial index {res.index}: job {self.job_id!r} never issued it"
            )
        state, text = row
        if state != RESERVED:
            raise SerialStateError(
                f"cannot {action} serial {text!r} (index {res.index}): it is {state}, not reserved"
            )
        (latest,) = db.execute(
            "SELECT MAX(id) FROM serial_events WHERE job_id = ? AND idx = ? AND state = ?",
            (self.job_id, res.index, RESERVED),
        ).fetchone()
        if latest != res.token:
            raise SerialStateError(
                f"cannot {action} serial {text!r} (index {res.index}): the reservation of"
                f" site {res.site} is stale; the number was reserved again since"
            )

    # -- queries --------------------------------------------------------------------

    def counts(self, station: str | None = None) -> dict[str, int]:
        """How many issued indexes are in each state (every state present, maybe 0); with
        ``station``, those that station reserved last."""
        sql = "SELECT state, COUNT(*) FROM serials WHERE job_id = ?"
        params: tuple[str, ...] = (self.job_id,)
        if station is not None:
            sql, params = sql + " AND station = ?", (*params, station)
        with self._open().read() as db:
            rows = db.execute(sql + " GROUP BY state", params).fetchall()
        out = dict.fromkeys(STATES, 0)
        out.update({state: n for state, n in rows})
        return out

    def entry(self, index: int) -> LedgerEntry | None:
        with self._open().read() as db:
            row = db.execute(_ENTRY_SQL + " AND idx = ?", (self.job_id, index)).fetchone()
        return None if row is None else _entry(row)

    def entries(self) -> list[LedgerEntry]:
        """Every issued index of this job, in index order."""
        with self._open().read() as db:
            rows = db.execute(_ENTRY_SQL + " ORDER BY idx", (self.job_id,)).fetchall()
        return [_entry(r) for r in rows]

    def history(self, index: int) -> list[LedgerEvent]:
        """The events of one index, oldest first."""
        with self._open().read() as db:
            rows = db.execute(
                "SELECT id, idx, state, site, at, device_record, note FROM serial_events"
                " WHERE job_id = ? AND idx = ? ORDER BY id",
                (self.job_id, index),
            ).fetchall()
        return [LedgerEvent(*r) for r in rows]


_ENTRY_SQL = (
    "SELECT idx, text, data_hex, state, site, reserved_at, updated_at, device_record, note"
    " FROM serials WHERE job_id = ?"
)


def _entry(row: tuple[object, ...]) -> LedgerEntry:
    index, text, data_hex, *rest = row
    return LedgerEntry(index, text, bytes.fromhex(str(data_hex)), *rest)  # type: ignore[arg-type]
