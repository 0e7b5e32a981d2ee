"""A store on a PostgreSQL server (psycopg 3): what SqliteStore is for one station, for a
line of stations sharing one database.

The same surface as app.engine.sqlite_store.SqliteStore, so the serial ledger runs on
either: ``transaction(lock=...)`` and ``read()`` yield a connection whose ``execute``
takes the stores' SQL with ``?`` placeholders (turned into psycopg's ``%s`` here; the
stores' SQL has no other question marks).

Durability: each transaction is committed before the ``with`` block is left (the
server's own WAL and ``synchronous_commit`` decide how it survives a power cut; a killed
station loses nothing the server acknowledged). Serialisation: a write transaction
names a ``lock`` (the ledger: its job), taken as a transaction-level advisory lock, so
every station's writes to that job are strictly ordered, as SQLite's ``BEGIN IMMEDIATE``
orders one file's writers.

Versions: table ``socketeer_schema`` holds each store kind's version; opening runs the
missing migrations (the schema's PostgreSQL scripts) in one transaction under an
advisory lock, so two stations starting together migrate once. A database whose version
is newer than this Socketeer is refused.

Errors: every psycopg error becomes a StorageError naming the server (never the
password).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any, Self
from urllib.parse import urlsplit, urlunsplit

from app.engine.sqlite_store import Schema, StorageError

CONNECT_TIMEOUT_S = 10
#: a line's shared database (serial ledger, production log), when no --db is given
DB_URL_ENV = "SOCKETEER_DB_URL"
_MIGRATION_LOCK = "socketeer-schema"


def is_postgres_url(location: object) -> bool:
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


def shown_url(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit((parts.scheme, user + host, parts.path, parts.query, parts.fragment))


class PgConnection:
    """A psycopg connection taking ``?`` placeholders."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[object] = ()) -> Any:
        return self._conn.execute(sql.replace("?", "%s"), tuple(params))


class PgStore:
    """One store kind (``schema``) in a PostgreSQL database; shared by threads."""

    def __init__(self, url: str, schema: Schema) -> None:
        if not schema.pg_migrations:
            raise StorageError(f"the {schema.kind} has no PostgreSQL schema")
        self.url = url
        self.path = shown_url(url)  # what messages name, as SqliteStore's file path
        self.schema = schema
        self._lock = threading.RLock()
        try:
            import psycopg
        except ImportError:
            raise StorageError(
                f"{self.path}: PostgreSQL needs psycopg 3 (pip install 'psycopg[binary]')"
            ) from None
        self._errors: tuple[type[BaseException], ...] = (psycopg.Error,)
        try:
            self._conn: Any = psycopg.connect(
                url, connect_timeout=CONNECT_TIMEOUT_S, autocommit=True
            )
        except psycopg.Error as err:
            raise StorageError(
                f"{self.path}: cannot connect for the {schema.kind}: {err}"
            ) from None
        try:
            self._migrate()
        except BaseException:
            self.close()
            raise

    # -- versions -------------------------------------------------------------------

    def _migrate(self) -> None:
        kind = self.schema.kind
        with self.transaction(lock=_MIGRATION_LOCK) as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS socketeer_schema"
                " (kind TEXT PRIMARY KEY, version INTEGER NOT NULL)"
            )
            row = db.execute("SELECT version FROM socketeer_schema WHERE kind = ?", (kind,))
            found = row.fetchone()
            version = found[0] if found else 0
            if version > self.schema.version:
                raise StorageError(
                    f"{self.path}: {kind} format {version} is newer than this Socketeer"
                    f" understands ({self.schema.version})"
                )
            for number in range(version + 1, self.schema.version + 1):
                migration = self.schema.pg_migrations[number - 1]
                try:
                    self._conn.execute(migration.script)
                except self._errors as err:
                    raise StorageError(
                        f"{self.path}: cannot migrate the {kind} to version {number}"
                        f" ({migration.description}): {err}; the database is unchanged"
                    ) from None
            db.execute(
                "INSERT INTO socketeer_schema (kind, version) VALUES (?, ?)"
                " ON CONFLICT (kind) DO UPDATE SET version = EXCLUDED.version",
                (kind, self.schema.version),
            )

    # -- use ------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._conn is None

    def _connection(self) -> Any:
        if self._conn is None:
            raise StorageError(f"{self.path}: the {self.schema.kind} is closed")
        return self._conn

    @contextmanager
    def transaction(self, lock: str | None = None) -> Iterator[PgConnection]:
        """One write transaction, committed when the block ends normally; ``lock`` names
        an advisory lock held until then (every station's writers of it wait)."""
        with self._lock:
            conn = self._connection()
            try:
                with conn.transaction():
                    db = PgConnection(conn)
                    if lock is not None:
                        db.execute("SELECT pg_advisory_xact_lock(hashtext(?))", (lock,))
                    yield db
            except self._errors as err:
                raise StorageError(f"{self.path}: {self.schema.kind} error: {err}") from None

    @contextmanager
    def read(self) -> Iterator[PgConnection]:
        with self.transaction() as db:
            yield db

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                conn, self._conn = self._conn, None
                with suppress(*self._errors):  # a server that is gone cannot be left cleanly
                    conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
