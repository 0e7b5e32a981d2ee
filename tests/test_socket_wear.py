"""Socket wear: insertion counts per socket, and resets recorded with who, when and why."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.core.errors import UsageError
from app.engine.production_log import ProductionLog, ProductionRecord
from app.engine.socket_wear import SocketWear, UnknownSocket

SITE3 = "sim://?sites=4#site3"
SITE0 = "sim://?sites=4#site0"


def record() -> ProductionRecord:
    return ProductionRecord(
        time=datetime(2026, 11, 22, 8, tzinfo=UTC),
        station="bench-1",
        operator="ann",
        job_id="job",
        job_hash=None,
        site=3,
        socket_insertions=3,
        device_id=None,
        chip_id=None,
        unique_id=None,
        serial=None,
        result="pass",
        failed_step=None,
        message="ok",
    )


@pytest.fixture
def wear(tmp_path: Path):
    with SocketWear(tmp_path / "log.sqlite3") as store:
        yield store


def test_counts_persist_beside_the_production_log(tmp_path: Path) -> None:
    path = tmp_path / "log.sqlite3"
    with SocketWear(path) as wear:
        assert wear.count(SITE3) == 0
        assert [wear.insert(SITE3) for _ in range(3)] == [1, 2, 3]
        assert wear.insert(SITE0) == 1
        assert wear.all() == {SITE0: 1, SITE3: 3}
    with SocketWear(path) as wear, ProductionLog(path) as log:  # same file, both tables
        log.append(record())
        assert wear.count(SITE3) == 3
        assert len(list(log.records())) == 1


def test_a_reset_is_recorded_with_who_when_the_old_count_and_why(wear: SocketWear) -> None:
    for _ in range(3):
        wear.insert(SITE3)
    wear.insert(SITE0)
    before = datetime.now(UTC)
    done = wear.reset(SITE3, by=" bob ", reason=" socket replaced ")
    assert (done.key, done.by, done.previous_count, done.reason) == (
        SITE3,
        "bob",
        3,
        "socket replaced",
    )
    assert before <= done.time <= datetime.now(UTC)
    assert wear.count(SITE3) == 0 and wear.count(SITE0) == 1
    assert wear.insert(SITE3) == 1
    assert wear.resets(SITE3) == [done]
    assert wear.resets(SITE0) == []
    listed = {s.key: s for s in wear.sockets()}
    assert listed[SITE3].insertions == 1 and listed[SITE3].last_reset == done
    assert listed[SITE0].insertions == 1 and listed[SITE0].last_reset is None


def test_history_keeps_every_reset(wear: SocketWear) -> None:
    for count in (5, 2):
        for _ in range(count):
            wear.insert(SITE3)
        wear.reset(SITE3, "bob", f"after {count}")
    assert [(r.previous_count, r.reason) for r in wear.resets(SITE3)] == [
        (5, "after 5"),
        (2, "after 2"),
    ]
    (socket,) = wear.sockets()
    assert socket.last_reset is not None and socket.last_reset.reason == "after 2"


def test_reset_all_and_many_are_one_transaction(wear: SocketWear) -> None:
    wear.insert(SITE0)
    wear.insert(SITE3)
    wear.insert(SITE3)
    with pytest.raises(UnknownSocket):
        wear.reset_many([SITE0, "sim://?sites=4#site9"], "bob", "new adapter")
    assert wear.all() == {SITE0: 1, SITE3: 2}  # none reset
    done = wear.reset_all("bob", "new adapter")
    assert [(r.key, r.previous_count) for r in done] == [(SITE0, 1), (SITE3, 2)]
    assert wear.all() == {SITE0: 0, SITE3: 0}


def test_a_reset_needs_a_known_socket_a_name_and_a_reason(wear: SocketWear) -> None:
    with pytest.raises(UnknownSocket, match="no insertions have been counted yet"):
        wear.reset(SITE3, "bob", "x")
    wear.insert(SITE3)
    with pytest.raises(UnknownSocket, match=r"did you mean 'sim://\?sites=4#site3'"):
        wear.reset("sim://?sites=4#site4", "bob", "x")
    with pytest.raises(UsageError, match="needs a reason"):
        wear.reset(SITE3, "bob", "  ")
    with pytest.raises(UsageError, match="name of who"):
        wear.reset(SITE3, "", "worn")
    with pytest.raises(UnknownSocket):
        wear.check_reset("nope", "bob", "worn")
    wear.check_reset(SITE3, "bob", "worn")
    wear.check_reset(None, "bob", "worn")
    assert wear.count(SITE3) == 1 and wear.resets() == []


def test_counts_from_threads(wear: SocketWear) -> None:
    pool = [
        threading.Thread(target=lambda: [wear.insert("k") for _ in range(50)]) for _ in range(4)
    ]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert wear.count("k") == 200


@pytest.mark.parametrize(
    ("count", "threshold", "worn"),
    [(9, 10, False), (10, 10, True), (11, 10, True), (10**6, None, False), (5, 0, False)],
)
def test_is_worn(count: int, threshold: int | None, worn: bool) -> None:
    assert SocketWear.is_worn(count, threshold) is worn
