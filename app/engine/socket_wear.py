"""Socket wear: insertions counted per socket, reset by an engineer when a socket is replaced.

The counts live in the production log's file (``production.sqlite3``; its schema is
app.engine.production_log.PRODUCTION_FILE). Every reset is recorded (who, when, the count
before it, why) and kept: the history tells how many insertions each socket lasted.

The key names one physical socket and is built by the caller. Convention: the adapter's
own serial number if it has one (``"adapter:SN1234"``), else the programmer URL plus the
site (and socket, for a multi-socket site), as app.engine.station.Station.socket_key
does. A key seen for the first time starts at 0. Whether a count is too high is the
caller's policy (a threshold per adapter); :meth:`SocketWear.is_worn` is the comparison.

Qt-free; every method may be called from any thread.
"""

from __future__ import annotations

import difflib
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from app.core.errors import InputError, UsageError
from app.engine.production_log import from_us, open_production_file, to_us
from app.engine.sqlite_store import SqliteStore, UsesStore


class UnknownSocket(InputError):
    """A reset named a socket key the store has never counted (a typo, most likely)."""


@dataclass(frozen=True)
class WearReset:
    """One reset of one socket's count."""

    key: str
    time: datetime  # UTC
    by: str
    previous_count: int
    reason: str


@dataclass(frozen=True)
class SocketCount:
    """One socket as ``socketeer log wear`` lists it."""

    key: str
    insertions: int  # since the last reset
    updated: datetime  # UTC: the last insertion or reset
    last_reset: WearReset | None


class SocketWear(UsesStore[SqliteStore]):
    """Insertion counts per socket key. ``path=None`` uses the default production log
    file; ``create=False`` refuses a missing file."""

    def __init__(self, path: Path | None = None, *, create: bool = True) -> None:
        self._store = open_production_file(path, create=create)
        self.path = self._store.path

    # -- counting -------------------------------------------------------------------

    def insert(self, key: str) -> int:
        """Count one insertion into socket ``key``; returns the new count (committed)."""
        with self._store.transaction() as conn:
            (count,) = conn.execute(
                "INSERT INTO socket_wear (key, count, updated_us) VALUES (?, 1, ?)"
                " ON CONFLICT (key) DO UPDATE SET count = count + 1,"
                " updated_us = excluded.updated_us RETURNING count",
                (key, to_us(datetime.now(UTC))),
            ).fetchone()
        return int(count)

    def count(self, key: str) -> int:
        """Insertions since the last reset (0 for an unknown key)."""
        with self._store.read() as conn:
            row = conn.execute("SELECT count FROM socket_wear WHERE key = ?", (key,)).fetchone()
        return 0 if row is None else int(row[0])

    def all(self) -> dict[str, int]:
        """Every known socket key -> its count, sorted by key."""
        with self._store.read() as conn:
            rows = conn.execute("SELECT key, count FROM socket_wear ORDER BY key").fetchall()
        return {key: int(count) for key, count in rows}

    @staticmethod
    def is_worn(count: int, threshold: int | None) -> bool:
        """True when ``count`` has reached ``threshold`` (None or <= 0: no limit)."""
        return threshold is not None and threshold > 0 and count >= threshold

    # -- resets ---------------------------------------------------------------------

    def reset(self, key: str, by: str, reason: str) -> WearReset:
        """Set ``key`` back to 0 (a new socket was fitted), recording who, when, the count
        before and why. An unknown key is refused (UnknownSocket names the close ones)."""
        (done,) = self._reset([key], by, reason)
        return done

    def reset_many(self, keys: Sequence[str], by: str, reason: str) -> list[WearReset]:
        """Reset several sockets in one transaction (all or, if one is unknown, none)."""
        return self._reset(list(keys), by, reason)

    def reset_all(self, by: str, reason: str) -> list[WearReset]:
        """Reset every known socket, in one transaction; returns the resets by key."""
        return self._reset(None, by, reason)

    def check_reset(self, key: str | None, by: str, reason: str) -> None:
        """Raise what :meth:`reset` (:meth:`reset_all` for ``key`` None) would refuse,
        changing nothing: a caller checks before it asks for the engineer password."""
        _check_names(by, reason)
        if key is not None:
            known = list(self.all())
            if key not in known:
                raise _unknown(key, known)

    def _reset(self, keys: list[str] | None, by: str, reason: str) -> list[WearReset]:
        by, reason = _check_names(by, reason)
        now = datetime.now(UTC)
        done: list[WearReset] = []
        with self._store.transaction() as conn:
            counts = dict(conn.execute("SELECT key, count FROM socket_wear ORDER BY key"))
            for key in counts if keys is None else keys:
                if key not in counts:
                    raise _unknown(key, list(counts))
                done.append(WearReset(key, now, by, int(counts[key]), reason))
                _record_reset(conn, done[-1])
        return done

    def resets(self, key: str | None = None) -> list[WearReset]:
        """The reset history (of one key if given), oldest first."""
        with self._store.read() as conn:
            return _resets(conn, key)

    def sockets(self) -> list[SocketCount]:
        """Every known socket with its count and its last reset, sorted by key."""
        with self._store.read() as conn:
            rows = conn.execute(
                "SELECT key, count, updated_us FROM socket_wear ORDER BY key"
            ).fetchall()
            last = {reset.key: reset for reset in _resets(conn, None)}
        return [SocketCount(k, int(c), from_us(u), last.get(k)) for k, c, u in rows]


def _resets(conn: sqlite3.Connection, key: str | None) -> list[WearReset]:
    cond, params = ("key = ?", (key,)) if key is not None else ("1", ())
    rows = conn.execute(
        "SELECT key, time_us, by, previous_count, reason FROM socket_wear_resets"
        f" WHERE {cond} ORDER BY time_us, id",
        params,
    ).fetchall()
    return [WearReset(k, from_us(t), b, int(p), r) for k, t, b, p, r in rows]


def _check_names(by: str, reason: str) -> tuple[str, str]:
    by, reason = by.strip(), reason.strip()
    if not by:
        raise UsageError("a socket-wear reset needs the name of who does it")
    if not reason:
        raise UsageError("a socket-wear reset needs a reason (e.g. 'socket replaced')")
    return by, reason


def _record_reset(conn: sqlite3.Connection, reset: WearReset) -> None:
    when = to_us(reset.time)
    conn.execute(
        "UPDATE socket_wear SET count = 0, updated_us = ? WHERE key = ?", (when, reset.key)
    )
    conn.execute(
        "INSERT INTO socket_wear_resets (key, time_us, by, previous_count, reason)"
        " VALUES (?, ?, ?, ?, ?)",
        (reset.key, when, reset.by, reset.previous_count, reset.reason),
    )


def _unknown(key: str, known: list[str]) -> UnknownSocket:
    if not known:
        return UnknownSocket(f"no socket {key!r}: no insertions have been counted yet")
    close = difflib.get_close_matches(key, known, n=3, cutoff=0.5)
    hint = f"; did you mean {' or '.join(repr(k) for k in close)}?" if close else ""
    return UnknownSocket(f"no socket {key!r} in the wear counts{hint} (see 'socketeer log wear')")
