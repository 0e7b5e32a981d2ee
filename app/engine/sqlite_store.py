"""The one SQLite layer under Socketeer's stores (serial ledger, production log, socket wear).

Durability: every file is used with ``journal_mode=WAL`` and ``synchronous=FULL``, and
each :meth:`SqliteStore.transaction` is committed before the ``with`` block is left, so a
power cut or a killed process cannot lose what a caller was told had happened. Another
process writing the same file is waited for (busy timeout) instead of failing at once.
Foreign keys are enforced.

Versions: ``PRAGMA user_version`` counts the migrations a file has had. Opening a file
runs the ones it lacks, all in one transaction that also sets the new version, so a
failing migration leaves the file as it was. A file newer than this Socketeer is refused,
and so is an SQLite file of something else (it holds none of the store's tables), before
anything is written to it. The first migration of a store creates its tables with ``IF
NOT EXISTS``, so it accepts a file that already holds them.

Errors: every sqlite3 error becomes a :class:`StorageError` naming the file.

Threads: one connection per store object, shared by every thread and serialised by a
lock. That keeps one process's writes strictly ordered without SQLite lock contention
between its own threads; other processes read concurrently thanks to WAL.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, Protocol, Self, TypeVar

from app.core.errors import InputError

BUSY_TIMEOUT_S = 30.0


class StorageError(InputError):
    """A store's file cannot be opened, migrated, read or written; the message names it."""


@dataclass(frozen=True)
class Migration:
    """One step of a store's schema: SQL statements (``;``-separated, triggers allowed)."""

    description: str
    script: str


@dataclass(frozen=True)
class Schema:
    """What a kind of file holds.

    ``kind`` names such a file in messages ("production log"); migration ``n`` (from 1)
    brings a file from ``user_version`` n-1 to n; ``tables`` are the tables by which a
    file of this kind is recognised (every version holds them). ``pg_migrations`` are
    the same steps for a PostgreSQL database (app.engine.pg_store), one for one, where
    the store can live on a server.
    """

    kind: str
    migrations: tuple[Migration, ...]
    tables: tuple[str, ...]
    pg_migrations: tuple[Migration, ...] = ()

    @property
    def version(self) -> int:
        return len(self.migrations)


def split_statements(script: str) -> list[str]:
    """The statements of an SQL script, each complete (a trigger body keeps its ``;``)."""
    statements: list[str] = []
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \t\n;"):
                statements.append(pending.strip())
            pending = ""
    if pending.strip(" \t\n;"):
        raise ValueError(f"incomplete SQL statement: {pending.strip()[:60]!r}")
    return statements


class SqliteStore:
    """An open store file: migrated, durable, shared by threads.

    ``create=False`` refuses a missing file instead of creating an empty store (for
    readers given a path). The folder must exist.
    """

    def __init__(
        self,
        path: Path,
        schema: Schema,
        *,
        create: bool = True,
        timeout_s: float = BUSY_TIMEOUT_S,
    ) -> None:
        self.path = Path(path)
        self.schema = schema
        self._lock = threading.RLock()
        if not create and not self.path.is_file():
            raise StorageError(f"{self.path}: no {schema.kind} there")
        try:
            conn = sqlite3.connect(
                self.path, timeout=timeout_s, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as err:
            raise StorageError(f"{self.path}: cannot open the {schema.kind}: {err}") from None
        self._conn: sqlite3.Connection | None = conn
        try:
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA synchronous = FULL")
            self._migrate(conn)
            conn.execute("PRAGMA journal_mode = WAL")
        except BaseException as err:
            self.close()
            if isinstance(err, sqlite3.Error):
                raise StorageError(f"{self.path}: cannot open the {schema.kind}: {err}") from None
            raise

    # -- versions -------------------------------------------------------------------

    def _migrate(self, conn: sqlite3.Connection) -> None:
        if self._checked_version(conn) == self.schema.version:
            self._check_tables(conn)
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = self._checked_version(conn)  # again: another process may have migrated
            for number in range(version + 1, self.schema.version + 1):
                migration = self.schema.migrations[number - 1]
                try:
                    for statement in split_statements(migration.script):
                        conn.execute(statement)
                except sqlite3.Error as err:
                    raise StorageError(
                        f"{self.path}: cannot migrate the {self.schema.kind} to version"
                        f" {number} ({migration.description}): {err}; the file is unchanged"
                    ) from None
            conn.execute(f"PRAGMA user_version = {self.schema.version}")
            self._check_tables(conn)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _checked_version(self, conn: sqlite3.Connection) -> int:
        """The file's version; another program's file (none of the store's tables) and a
        file newer than this Socketeer are refused before anything is written."""
        (version,) = conn.execute("PRAGMA user_version").fetchone()  # fails if not SQLite
        tables = self._tables(conn)
        if not tables & set(self.schema.tables) and (version > 0 or tables):
            raise StorageError(
                f"{self.path}: not a {self.schema.kind} (it holds none of the tables"
                f" {', '.join(self.schema.tables)})"
            )
        if version > self.schema.version:
            raise StorageError(
                f"{self.path}: {self.schema.kind} format {version} is newer than this"
                f" Socketeer understands ({self.schema.version})"
            )
        return int(version)

    def _tables(self, conn: sqlite3.Connection) -> set[str]:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return {name for (name,) in rows if not name.startswith("sqlite_")}

    def _check_tables(self, conn: sqlite3.Connection) -> None:
        missing = set(self.schema.tables) - self._tables(conn)
        if missing:
            raise StorageError(
                f"{self.path}: not a {self.schema.kind} (no {', '.join(sorted(missing))})"
            )

    # -- use ------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._conn is None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StorageError(f"{self.path}: the {self.schema.kind} is closed")
        return self._conn

    def _error(self, err: sqlite3.Error) -> StorageError:
        return StorageError(f"{self.path}: {self.schema.kind} error: {err}")

    @contextmanager
    def transaction(self, lock: str | None = None) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``: the write lock is taken at once, so
        what the block reads cannot change before it writes). Committed when the block
        ends normally, rolled back when it raises; other threads wait meanwhile.
        ``lock`` (what a PgStore serialises on) needs nothing more here: the file's write
        lock already orders every writer."""
        with self._lock:
            conn = self._connection()
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as err:
                raise self._error(err) from None

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """The connection for reads; other threads wait until the block ends, so keep it
        short (fetch, then work outside)."""
        with self._lock:
            conn = self._connection()
            try:
                yield conn
            except sqlite3.Error as err:
                raise self._error(err) from None

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ClosableStore(Protocol):
    def close(self) -> None: ...


StoreT = TypeVar("StoreT", bound=ClosableStore)


class UsesStore(Generic[StoreT]):
    """The lifetime of an object that works on one store (a :class:`SqliteStore`, or a
    PostgreSQL one): ``close()`` and ``with`` (the serial ledger, the production log and
    the socket-wear counts)."""

    _store: StoreT

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
