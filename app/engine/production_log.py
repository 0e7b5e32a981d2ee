"""Production log: one record per device cycle, in ``production.sqlite3``.

The log is the traceability record of a production run: which part went into which site,
what ID it reported, which serial number it got, and whether it passed. A result is shown
to the operator only after :meth:`ProductionLog.append` has returned, so ``append``
commits before returning, with ``journal_mode=WAL`` and ``synchronous=FULL``: a power cut
after the UI said "pass" cannot lose that record.

The file lives at ``<user data dir>/production.sqlite3`` (platformdirs:
``~/.local/share/socketeer`` on Linux, ``~/Library/Application Support/socketeer`` on macOS,
``%LOCALAPPDATA%\\socketeer`` on Windows); ``$SOCKETEER_DATA_DIR`` replaces the folder.

The same file holds the socket-wear counts (app.engine.socket_wear); its schema and
migrations (:data:`PRODUCTION_FILE`) are here, and both stores open it through
:func:`open_production_file`.

Times are stored as integer microseconds since the Unix epoch (UTC), so sorting and range
filters are exact and cheap; they come back as timezone-aware UTC datetimes.

Qt-free; every public method may be called from any thread.
"""

from __future__ import annotations

import csv
import json
import os
import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, TextIO

import platformdirs

from app.engine.pg_store import PgStore, is_postgres_url
from app.engine.results import CANCELLED, ERROR, FAIL, LINK_LOST, PASS, DeviceResult
from app.engine.sqlite_store import Migration, Schema, SqliteStore, StorageError, UsesStore
from app.engine.tally import Tally

ENV_DATA_DIR = "SOCKETEER_DATA_DIR"
LOG_FILE_NAME = "production.sqlite3"
RESULTS = (PASS, FAIL, CANCELLED, LINK_LOST, ERROR)
_RESULT_LIST = ", ".join(repr(r) for r in RESULTS)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_BATCH = 500  # rows fetched per lock hold while iterating


def data_dir() -> Path:
    """$SOCKETEER_DATA_DIR, else the platformdirs user data dir of "socketeer"."""
    env = os.environ.get(ENV_DATA_DIR)
    if env:
        return Path(env)
    return Path(platformdirs.user_data_dir("socketeer", appauthor=False))


def default_log_path() -> Path:
    """The production log file used when no path is given."""
    return data_dir() / LOG_FILE_NAME


def default_station_name() -> str:
    """This station's name in records and the serial ledger: $SOCKETEER_STATION, else
    this computer's host name (stations sharing a database must have different ones)."""
    return os.environ.get("SOCKETEER_STATION") or socket.gethostname() or "unknown-station"


def to_us(when: datetime) -> int:
    """An aware datetime as the production file stores times (microseconds since 1970 UTC)."""
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"{when!r} has no time zone; production log times must be aware")
    return (when - _EPOCH) // _MICROSECOND


def from_us(value: int) -> datetime:
    """Inverse of :func:`to_us` (a UTC datetime)."""
    return _EPOCH + timedelta(microseconds=value)


def iso_time(when: datetime) -> str:
    """ISO-8601 in UTC with fixed microsecond precision, e.g. 2026-11-22T08:00:00.000000+00:00."""
    return when.astimezone(UTC).isoformat(timespec="microseconds")


# -- the record ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ProductionRecord:
    """One device cycle as the production log keeps it.

    ``details`` holds what explains a failure in machine-readable form (``action``,
    ``address``, ``mismatch`` with address/expected/found/counts, ``candidates``); it and
    ``timings`` (phase -> seconds) must be JSON-serialisable.
    """

    time: datetime  # timezone-aware; normalised to UTC
    station: str
    operator: str
    job_id: str | None  # None: an ad-hoc run without a saved job
    job_hash: str | None
    site: int
    socket_insertions: int | None
    device_id: str | None  # device DB id; None if the part was never identified
    chip_id: str | None  # ID read back, hex
    unique_id: str | None  # hex
    serial: str | None
    result: str  # "pass" | "fail" | "cancelled" | "link-lost" | "error"
    failed_step: str | None
    message: str
    details: Mapping[str, Any] = field(default_factory=dict)
    timings: Mapping[str, float] = field(default_factory=dict)
    host: str | None = None  # the computer the station runs on (None: records before v4)
    programmer: str | None = None  # the programmer's URL, with its USB serial where it has one

    def __post_init__(self) -> None:
        if self.time.tzinfo is None or self.time.utcoffset() is None:
            raise ValueError("ProductionRecord.time must be timezone-aware")
        if self.result not in RESULTS:
            raise ValueError(f"result {self.result!r} is not one of {', '.join(RESULTS)}")
        object.__setattr__(self, "time", self.time.astimezone(UTC))
        object.__setattr__(self, "details", dict(self.details))
        object.__setattr__(self, "timings", {k: float(v) for k, v in self.timings.items()})

    @property
    def passed(self) -> bool:
        return self.result == PASS

    @classmethod
    def from_result(
        cls,
        result: DeviceResult,
        *,
        station: str | None,
        operator: str,
        job_id: str | None,
        job_hash: str | None = None,
        serial: str | None = None,
        socket_insertions: int | None = None,
        when: datetime | None = None,
        programmer: str | None = None,
    ) -> ProductionRecord:
        """Build the record of ``result``; ``station=None`` means this host's name and
        ``when=None`` means now (UTC). ``host`` is this computer's name."""
        doc = result.to_json()
        details: dict[str, Any] = {"action": result.action}
        for key in ("address", "mismatch"):
            if doc.get(key) is not None:
                details[key] = doc[key]
        if result.candidates:
            details["candidates"] = list(result.candidates)
        return cls(
            time=when if when is not None else datetime.now(UTC),
            station=station if station is not None else default_station_name(),
            operator=operator,
            job_id=job_id,
            job_hash=job_hash,
            site=result.site,
            socket_insertions=socket_insertions,
            device_id=result.device_id,
            chip_id=result.chip_id,
            unique_id=result.unique_id,
            serial=serial,
            result=result.status,
            failed_step=result.failed_step,
            message=result.message,
            details=details,
            timings=doc["timings"],
            host=socket.gethostname() or None,
            programmer=programmer,
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of every field; ``time`` as ISO-8601 UTC."""
        doc = {f.name: getattr(self, f.name) for f in fields(self)}
        doc["time"] = iso_time(self.time)
        doc["details"] = dict(self.details)
        doc["timings"] = dict(self.timings)
        return doc

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> ProductionRecord:
        """Inverse of :meth:`to_json` (extra keys such as ``id`` are ignored)."""
        values: dict[str, Any] = {f.name: doc.get(f.name) for f in fields(cls)}
        values["time"] = datetime.fromisoformat(doc["time"])
        values["details"] = doc.get("details") or {}
        values["timings"] = doc.get("timings") or {}
        return cls(**values)


RECORD_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(ProductionRecord))
EXPORT_COLUMNS: tuple[str, ...] = ("id", *RECORD_FIELDS)

# -- the file ----------------------------------------------------------------------------


def _production_columns(id_column: str, big: str) -> str:
    """The production table's columns in either dialect (the row id column, the type of
    microsecond times). A station error, "error", was added as a result in version 3,
    which rebuilds the table on SQLite because it cannot change a CHECK in place."""
    return f"""
                id                {id_column},
                time_us           {big} NOT NULL,
                station           TEXT NOT NULL,
                operator          TEXT NOT NULL,
                job_id            TEXT,
                job_hash          TEXT,
                site              INTEGER NOT NULL,
                socket_insertions INTEGER,
                device_id         TEXT,
                chip_id           TEXT,
                unique_id         TEXT,
                serial            TEXT,
                result            TEXT NOT NULL
                                  CHECK (result IN ({_RESULT_LIST})),
                failed_step       TEXT,
                message           TEXT NOT NULL,
                details           TEXT NOT NULL,
                timings           TEXT NOT NULL
            """


def _first_tables(id_column: str, big: str, by: str) -> str:
    """Migration 1 in either dialect: production records and socket wear counts (``by``
    is the resetter's column, quoted where BY is a keyword)."""
    return f"""
            CREATE TABLE IF NOT EXISTS production ({_production_columns(id_column, big)});
            CREATE INDEX IF NOT EXISTS production_time ON production (time_us);
            CREATE INDEX IF NOT EXISTS production_job ON production (job_id, time_us);
            CREATE TABLE IF NOT EXISTS socket_wear (
                key        TEXT PRIMARY KEY,
                count      INTEGER NOT NULL,
                updated_us {big} NOT NULL
            );
            CREATE TABLE IF NOT EXISTS socket_wear_resets (
                id             {id_column},
                key            TEXT NOT NULL,
                time_us        {big} NOT NULL,
                {by} TEXT NOT NULL,
                previous_count INTEGER NOT NULL
            );
            """


_SQLITE_ID, _PG_ID = "INTEGER PRIMARY KEY AUTOINCREMENT", "BIGSERIAL PRIMARY KEY"
_PRODUCTION_COLUMNS = _production_columns(_SQLITE_ID, "INTEGER")
_PRODUCTION_INDEXES = """
    CREATE INDEX IF NOT EXISTS production_time ON production (time_us);
    CREATE INDEX IF NOT EXISTS production_job ON production (job_id, time_us);
    CREATE INDEX IF NOT EXISTS production_serial ON production (serial, result);
"""

_HOST_AND_PROGRAMMER = """
    ALTER TABLE production ADD COLUMN host TEXT;
    ALTER TABLE production ADD COLUMN programmer TEXT;
"""

_LINE_SITES = """
    CREATE TABLE IF NOT EXISTS line_sites (
        station    TEXT NOT NULL,
        site       INTEGER NOT NULL,
        state      TEXT NOT NULL,
        phase      TEXT,
        updated_us BIGINT NOT NULL,
        PRIMARY KEY (station, site)
    );
"""

PRODUCTION_FILE = Schema(
    "production log",
    (
        Migration(
            "production records and socket wear counts",
            _first_tables(_SQLITE_ID, "INTEGER", "by"),
        ),
        Migration(
            "socket wear resets record a reason",
            "ALTER TABLE socket_wear_resets ADD COLUMN reason TEXT NOT NULL DEFAULT ''",
        ),
        Migration(
            "station errors as a result of their own; records found by serial",
            f"""
            CREATE TABLE production_v3 ({_PRODUCTION_COLUMNS});
            INSERT INTO production_v3 SELECT * FROM production;
            DROP TABLE production;
            ALTER TABLE production_v3 RENAME TO production;
            {_PRODUCTION_INDEXES}
            """,
        ),
        Migration("records name the host and the programmer", _HOST_AND_PROGRAMMER),
        Migration("the live state of every station's sites", _LINE_SITES),
    ),
    ("production", "socket_wear", "socket_wear_resets"),
    (
        Migration(
            "production records and socket wear counts",
            _first_tables(_PG_ID, "BIGINT", '"by"'),
        ),
        Migration(
            "socket wear resets record a reason",
            "ALTER TABLE socket_wear_resets ADD COLUMN reason TEXT NOT NULL DEFAULT ''",
        ),
        Migration(
            # the table of migration 1 already takes "error" (a server starts at 3's shape)
            "station errors as a result of their own; records found by serial",
            _PRODUCTION_INDEXES,
        ),
        Migration("records name the host and the programmer", _HOST_AND_PROGRAMMER),
        Migration("the live state of every station's sites", _LINE_SITES),
    ),
)


def open_production_file(path: Path | None, *, create: bool = True) -> SqliteStore:
    """The production file at ``path`` (None: :func:`default_log_path`), its folder
    created unless ``create`` is False (then a missing file is refused)."""
    path = Path(path) if path is not None else default_log_path()
    if create:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise StorageError(f"{path}: cannot create its folder: {err.strerror}") from None
    return SqliteStore(path, PRODUCTION_FILE, create=create)


_COLUMNS = (
    "time_us, station, operator, job_id, job_hash, site, socket_insertions, device_id,"
    " chip_id, unique_id, serial, result, failed_step, message, details, timings, host,"
    " programmer"
)


def _row_to_record(row: tuple[Any, ...]) -> ProductionRecord:
    (time_us, station, operator, job_id, job_hash, site, insertions, device_id, chip_id,
     unique_id, serial, result, failed_step, message, details, timings, host,
     programmer) = row  # fmt: skip
    return ProductionRecord(
        time=from_us(time_us),
        station=station,
        operator=operator,
        job_id=job_id,
        job_hash=job_hash,
        site=site,
        socket_insertions=insertions,
        device_id=device_id,
        chip_id=chip_id,
        unique_id=unique_id,
        serial=serial,
        result=result,
        failed_step=failed_step,
        message=message,
        details=json.loads(details),
        timings=json.loads(timings),
        host=host,
        programmer=programmer,
    )


def _where(
    since: datetime | None,
    until: datetime | None,
    job_id: str | None,
    station: str | None = None,
    operator: str | None = None,
) -> tuple[str, list[Any]]:
    """SQL condition for ``since <= time < until``, the job, station and operator (None:
    no filter)."""
    terms: list[str] = []
    params: list[Any] = []
    for column, value in (("station", station), ("operator", operator)):
        if value is not None:
            terms.append(f"{column} = ?")
            params.append(value)
    if since is not None:
        terms.append("time_us >= ?")
        params.append(to_us(since))
    if until is not None:
        terms.append("time_us < ?")
        params.append(to_us(until))
    if job_id is not None:
        terms.append("job_id = ?")
        params.append(job_id)
    return (" AND ".join(terms) or "1 = 1"), params


ExportFormat = Literal["csv", "jsonl"]
EXPORT_FORMATS: tuple[str, ...] = ("csv", "jsonl")


class ProductionLog(UsesStore["SqliteStore | PgStore"]):
    """The append-only production log.

    ``path=None`` uses :func:`default_log_path` (folders are created); a
    ``postgresql://`` URL is a log shared by the stations of a line (app.engine.pg_store).
    ``create=False`` refuses a missing file instead of creating an empty log (for readers
    such as ``socketeer log export --db``). A file that is not a production log raises
    :class:`StorageError` naming it.
    """

    def __init__(self, path: Path | str | None = None, *, create: bool = True) -> None:
        self._store: SqliteStore | PgStore
        if is_postgres_url(path):
            self._store = PgStore(str(path), PRODUCTION_FILE)
        else:
            self._store = open_production_file(None if path is None else Path(path), create=create)
        self.path = self._store.path

    @property
    def shared(self) -> bool:
        """The log is a line's, on a server: other stations add records meanwhile."""
        return isinstance(self._store, PgStore)

    def append(self, record: ProductionRecord) -> int:
        """Store ``record`` durably and return its row id. Committed when this returns."""
        params = (
            to_us(record.time),
            record.station,
            record.operator,
            record.job_id,
            record.job_hash,
            record.site,
            record.socket_insertions,
            record.device_id,
            record.chip_id,
            record.unique_id,
            record.serial,
            record.result,
            record.failed_step,
            record.message,
            json.dumps(record.details, sort_keys=True),
            json.dumps(record.timings, sort_keys=True),
            record.host,
            record.programmer,
        )
        sql = (
            f"INSERT INTO production ({_COLUMNS}) VALUES ({', '.join('?' * len(params))})"
            " RETURNING id"
        )
        with self._store.transaction() as conn:
            (row_id,) = conn.execute(sql, params).fetchone()
        return int(row_id)

    def _rows(
        self,
        since: datetime | None,
        until: datetime | None,
        job_id: str | None,
        station: str | None = None,
        operator: str | None = None,
    ) -> Iterator[tuple[int, ProductionRecord]]:
        """(row id, record) in time order, fetched in batches by keyset pagination so the
        lock is never held while the caller works (appends keep flowing during an export)."""
        cond, params = _where(since, until, job_id, station, operator)
        sql = (
            f"SELECT id, {_COLUMNS} FROM production WHERE {cond}"
            " AND (time_us > ? OR (time_us = ? AND id > ?)) ORDER BY time_us, id LIMIT ?"
        )
        last_time, last_id = -(1 << 62), -1
        while True:
            with self._store.read() as conn:
                rows = conn.execute(
                    sql, (*params, last_time, last_time, last_id, _BATCH)
                ).fetchall()
            for row in rows:
                yield row[0], _row_to_record(row[1:])
            if len(rows) < _BATCH:
                return
            last_id, last_time = rows[-1][0], rows[-1][1]

    def publish_site(self, station: str, site: int, state: str, phase: str | None) -> None:
        """Record what one site of ``station`` is doing now (the line view of every
        station reads it from a shared log)."""
        with self._store.transaction() as conn:
            conn.execute(
                "INSERT INTO line_sites (station, site, state, phase, updated_us)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (station, site) DO UPDATE SET"
                " state = excluded.state, phase = excluded.phase, updated_us = excluded.updated_us",
                (station, site, state, phase, to_us(datetime.now(UTC))),
            )

    def line_sites(self) -> dict[str, list[dict[str, Any]]]:
        """Every station's sites as they last published them, by station and site."""
        with self._store.read() as conn:
            rows = conn.execute(
                "SELECT station, site, state, phase, updated_us FROM line_sites"
                " ORDER BY station, site"
            ).fetchall()
        out: dict[str, list[dict[str, Any]]] = {}
        for station, site, state, phase, updated in rows:
            out.setdefault(station, []).append(
                {
                    "index": site,
                    "state": state,
                    "phase": phase,
                    "updated": iso_time(from_us(updated)),
                }
            )
        return out

    def last_failures(self, limit: int, job_id: str | None = None) -> list[ProductionRecord]:
        """The ``limit`` newest records that did not pass (of one job if given), newest
        first: one indexed query, not a walk over the whole log."""
        cond, params = _where(None, None, job_id)
        with self._store.read() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM production WHERE {cond} AND result != ?"
                " ORDER BY time_us DESC, id DESC LIMIT ?",
                (*params, PASS, limit),
            ).fetchall()
        return [_row_to_record(row) for row in rows]

    def passing_record(self, serial: str) -> str | None:
        """The id of the latest passing record of a part given ``serial``, or None."""
        with self._store.read() as conn:
            row = conn.execute(
                "SELECT id FROM production WHERE serial = ? AND result = ?"
                " ORDER BY id DESC LIMIT 1",
                (serial, PASS),
            ).fetchone()
        return None if row is None else str(row[0])

    def records(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        job_id: str | None = None,
        station: str | None = None,
        operator: str | None = None,
    ) -> Iterator[ProductionRecord]:
        """Records with ``since <= time < until`` (aware datetimes), of one job, station
        and operator where given, oldest first."""
        for _, record in self._rows(since, until, job_id, station, operator):
            yield record

    def summary(
        self,
        job_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        station: str | None = None,
        operator: str | None = None,
    ) -> dict[str, Any]:
        """Counts and yield over the selected records.

        ``yield_percent`` is Tally's: passed / (total - cancelled): a cycle the operator
        stopped says nothing about the part, a lost link does (the part was not
        programmed). It is None when no cycle counts. ``devices_per_hour`` is
        total / (last - first) and None below two distinct times. ``per_site`` maps site
        number -> the same counts, ``per_station`` station name -> the same counts (a log
        shared by a line's stations).
        """
        cond, params = _where(since, until, job_id, station, operator)
        with self._store.read() as conn:
            rows = conn.execute(
                f"SELECT station, site, result, COUNT(*), MIN(time_us), MAX(time_us)"
                f" FROM production WHERE {cond} GROUP BY station, site, result",
                params,
            ).fetchall()
        total = Tally()
        per_site: dict[int, Tally] = {}
        per_station: dict[str, Tally] = {}
        first = last = None
        for name, site, result, count, lo, hi in rows:
            batch = Tally.of([result] * count)
            total = total + batch
            per_site[site] = per_site.get(site, Tally()) + batch
            per_station[name] = per_station.get(name, Tally()) + batch
            first = lo if first is None else min(first, lo)
            last = hi if last is None else max(last, hi)
        span_h = (last - first) / 3.6e9 if first is not None and last is not None else 0.0
        return {
            **_counts(total),
            "first_time": None if first is None else from_us(first),
            "last_time": None if last is None else from_us(last),
            "devices_per_hour": round(total.total / span_h, 2) if span_h > 0 else None,
            "per_site": {site: _counts(per_site[site]) for site in sorted(per_site)},
            "per_station": {name: _counts(per_station[name]) for name in sorted(per_station)},
        }

    def export(
        self,
        stream: TextIO,
        fmt: ExportFormat = "csv",
        since: datetime | None = None,
        job_id: str | None = None,
        until: datetime | None = None,
        station: str | None = None,
        operator: str | None = None,
    ) -> int:
        """Write the selected records to ``stream``; returns the number of records.

        csv: a header row (:data:`EXPORT_COLUMNS`), one row per record, empty cells for
        None, ``details`` and ``timings`` as JSON text, times ISO-8601 UTC. Lines end in
        "\\n" (open files with ``newline=""``). jsonl: one JSON object per line with the
        same keys. ``id`` is the log's row id, unique within the file.
        """
        if fmt not in EXPORT_FORMATS:
            raise ValueError(f"export format {fmt!r} is not one of {', '.join(EXPORT_FORMATS)}")
        count = 0
        if fmt == "csv":
            writer = csv.writer(stream, lineterminator="\n")
            writer.writerow(EXPORT_COLUMNS)
            for row_id, record in self._rows(since, until, job_id, station, operator):
                writer.writerow([row_id, *_csv_cells(record)])
                count += 1
        else:
            for row_id, record in self._rows(since, until, job_id, station, operator):
                stream.write(json.dumps({"id": row_id, **record.to_json()}) + "\n")
                count += 1
        return count


def _counts(tally: Tally) -> dict[str, Any]:
    """The summary's counts, with the one definition of yield (app.engine.tally)."""
    pct = tally.yield_percent
    return {
        "total": tally.total,
        "passed": tally.passed,
        "failed": tally.failed,
        "cancelled": tally.cancelled,
        "link_lost": tally.link_lost,
        "errors": tally.errors,
        "yield_percent": None if pct is None else round(pct, 2),
    }


def _csv_cells(record: ProductionRecord) -> list[Any]:
    doc = record.to_json()
    cells: list[Any] = []
    for name in RECORD_FIELDS:
        value = doc[name]
        if name in ("details", "timings"):
            value = json.dumps(value, sort_keys=True)
        cells.append("" if value is None else value)
    return cells
