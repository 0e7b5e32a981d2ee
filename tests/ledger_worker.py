"""One station of the ledger concurrency test (tests/test_postgres_store.py), as its own
process, doing what a station does per device: reserve a serial, write the device's
passing record to the production log (the same database), then commit the serial naming
that record. It first recovers what it left reserved when it was killed (a number whose
record exists is kept, any other voided), then works until it has committed its share.
Killed with SIGKILL at random by the test, then started again.

Usage: python tests/ledger_worker.py LOCATION JOB STATION COUNT
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

from app.engine.ledger import SerialLedger
from app.engine.production_log import ProductionLog, ProductionRecord
from app.engine.serialization import SerialConfig, SerialSource


def record(station: str, serial: str) -> ProductionRecord:
    return ProductionRecord(
        time=datetime.now(UTC), station=station, operator="test", job_id="job",
        job_hash=None, site=1, socket_insertions=None, device_id="test.part", chip_id=None,
        unique_id=None, serial=serial, result="pass", failed_step=None, message="ok",
    )  # fmt: skip


def log_location(location: str) -> str:
    """The production log beside the ledger: the same database, or production.sqlite3
    next to an SQLite ledger file."""
    if location.startswith("postgresql://"):
        return location
    return str(Path(location).with_name("production.sqlite3"))


def main(location: str, job: str, station: str, count: int) -> None:
    source = SerialSource(SerialConfig(kind="incremental", address=0, width=4))
    with (
        SerialLedger(location, job, source, "void", station=station) as ledger,
        ProductionLog(log_location(location)) as log,
    ):
        ledger.recover(log.passing_record)
        done = ledger.counts(station=station)["used"]
        while done < count:
            reservation = ledger.reserve(site=1)
            record_id = log.append(record(station, reservation.text))
            ledger.commit(reservation, str(record_id))
            done += 1


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
