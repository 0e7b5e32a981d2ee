"""One station of the ledger concurrency test (tests/test_ledger_postgres.py), as its own
process: recover what this station left reserved, then reserve and commit serials until
it has committed its share. Killed with SIGKILL at random by the test, then started again.

Usage: python tests/ledger_worker.py LOCATION JOB STATION COUNT
"""

from __future__ import annotations

import sys

from app.engine.ledger import SerialLedger
from app.engine.serialization import SerialConfig, SerialSource


def main(location: str, job: str, station: str, count: int) -> None:
    source = SerialSource(SerialConfig(kind="incremental", address=0, width=4))
    with SerialLedger(location, job, source, "void", station=station) as ledger:
        ledger.recover()  # a number this station left reserved when it was killed: voided
        done = ledger.counts(station=station)["used"]
        while done < count:
            reservation = ledger.reserve(site=1)
            ledger.commit(reservation, f"{station}/{reservation.index}")
            done += 1


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
