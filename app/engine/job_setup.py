"""Turn a loaded job into its Production: the cycle spec, the serial ledger (with crash
recovery), the production log and the socket-wear counters. Shared by `socketeer run`
and the window, so both run a job exactly the same way."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from app.core.errors import InputError
from app.core.job import LoadedJob, canonical_json
from app.engine.cycle import CycleOptions, build_cycle_spec
from app.engine.job_checks import check_job_for_device
from app.engine.ledger import SerialLedger
from app.engine.pg_store import DB_URL_ENV, is_postgres_url
from app.engine.production import Production
from app.engine.production_log import LOG_FILE_NAME, ProductionLog, data_dir
from app.engine.serialization import SerialConfig, SerialSource, serial_range
from app.engine.site_runner import CycleSpec
from app.engine.socket_wear import SocketWear

if TYPE_CHECKING:
    from app.devicedb.database import DeviceDatabase
    from app.devicedb.models import Device

LEDGER_FILE = "serials.sqlite3"
DEFAULT_WEAR_THRESHOLD = 10_000


@dataclass(frozen=True)
class PreparedJob:
    production: Production
    recovered_serials: tuple[int, ...]  # numbers voided because a previous run died
    serial_range: tuple[int, int] | None


def job_identity(loaded: LoadedJob) -> tuple[str, str]:
    """(job id, job hash). The id (name + image hash) stays the same when the job is
    locked, so the first article counts towards the job's count; the hash (the seal, or
    for an unlocked job the hash of its content and image) says exactly which version
    produced each record."""
    job = loaded.job
    if job.lock is not None:
        digest = job.lock.seal
    else:
        h = hashlib.sha256(canonical_json(job.content()))
        h.update(b"\0")
        h.update(loaded.image_bytes)
        digest = h.hexdigest()
    return f"{job.name}@{job.image.sha256[:12]}", digest


def serial_scheme_id(config: SerialConfig) -> str:
    """The ledger key: every job using the same numbering shares one number space, so no
    number is handed out twice across jobs, versions, first articles and locks."""
    scheme = {k: v for k, v in config.to_json().items() if k != "policy"}
    return "serials@" + hashlib.sha256(canonical_json(scheme)).hexdigest()[:16]


def store_location(folder: Path, file_name: str, db_url: str | None = None) -> Path | str:
    """Where the serial ledger or the production log lives: ``db_url`` (``--db``), else
    $SOCKETEER_DB_URL, else this station's own SQLite file ``file_name`` in ``folder``."""
    url = db_url or os.environ.get(DB_URL_ENV, "")
    if not url:
        return folder / file_name
    if not is_postgres_url(url):
        raise InputError(
            f"database URL {url!r}: give postgresql://USER@HOST[:PORT]/DATABASE, or leave it"
            f" unset (--db, ${DB_URL_ENV}) for this station's own file"
        )
    return url


def open_ledger(
    loaded: LoadedJob,
    folder: Path | None = None,
    db_url: str | None = None,
    station: str | None = None,
) -> SerialLedger | None:
    """The serial ledger of the job's numbering scheme (None for an unserialized job);
    ``station`` names this station in it (default: $SOCKETEER_STATION or the host)."""
    if loaded.job.serialization is None:
        return None
    folder = folder or data_dir()
    folder.mkdir(parents=True, exist_ok=True)
    location = store_location(folder, LEDGER_FILE, db_url)
    config = SerialConfig.from_json(loaded.job.serialization)
    base_dir = loaded.path.parent if loaded.path is not None else None
    source = SerialSource(config, base_dir=base_dir)
    return SerialLedger(location, serial_scheme_id(config), source, config.policy, station=station)


def job_cycle_spec(loaded: LoadedJob, device: Device, database: DeviceDatabase) -> CycleSpec:
    """The job's program cycle (the same builder the CLI and the window use)."""
    job = loaded.job
    options = CycleOptions.from_operations(job.operations, job.erase_mode)
    return build_cycle_spec("program", device, database, image=loaded.image, options=options)


def prepare_job(
    loaded: LoadedJob,
    device: Device,
    database: DeviceDatabase,
    *,
    operator: str,
    count_limit: int | None = None,
    wear_threshold: int | None = DEFAULT_WEAR_THRESHOLD,
    folder: Path | None = None,
    db_url: str | None = None,
    station: str | None = None,
) -> PreparedJob:
    where = str(loaded.path) if loaded.path is not None else "job"
    try:
        check_job_for_device(loaded.job, loaded.image, device)
    except InputError as err:
        raise InputError(f"{where}: {err}") from None
    folder = folder or data_dir()
    folder.mkdir(parents=True, exist_ok=True)
    job_id, job_hash = job_identity(loaded)
    ledger = open_ledger(loaded, folder, db_url, station)
    address = None
    recovered: list[int] = []
    span = None
    log = ProductionLog(store_location(folder, LOG_FILE_NAME, db_url))
    if ledger is not None:
        config = SerialConfig.from_json(loaded.job.serialization or {})
        recovered = ledger.recover(log.passing_record)
        address = config.address
        span = serial_range(config)
    production = Production(
        job_cycle_spec(loaded, device, database),
        job_id=job_id,
        job_hash=job_hash,
        log=log,
        wear=SocketWear(folder / LOG_FILE_NAME),
        ledger=ledger,
        serial_address=address,
        count_limit=count_limit if count_limit is not None else loaded.job.count_limit,
        wear_threshold=wear_threshold,
        operator=operator,
        station=station,
    )
    return PreparedJob(production, tuple(recovered), span)
