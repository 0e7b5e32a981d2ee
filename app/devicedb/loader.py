"""Load the device database: installed folder + user overlay, validated, as a DeviceDatabase."""

from __future__ import annotations

from pathlib import Path

from app.core.errors import DeviceDbError
from app.devicedb import cache
from app.devicedb.database import DeviceDatabase
from app.devicedb.models import Device
from app.devicedb.validation import ValidationReport, check_layers, default_layers


class DeviceDbInvalidError(DeviceDbError):
    """The database has errors. ``errors`` holds every message; ``str()`` is one line
    (the CLI prints it as one), naming the first problem and how to see the rest."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = list(errors)
        more = len(self.errors) - 1
        tail = f" (and {more} more; run 'socketeer devices validate')" if more else ""
        super().__init__(f"device database is invalid: {self.errors[0]}{tail}")


def database_from_report(report: ValidationReport) -> DeviceDatabase:
    """The database of a report, or DeviceDbInvalidError with all its errors."""
    if report.errors:
        raise DeviceDbInvalidError(report.errors)
    return DeviceDatabase(report.devices.values(), report.packages)


def load_database(
    installed: Path | None = None,
    overlay: Path | None = None,
    *,
    use_overlay: bool = True,
) -> DeviceDatabase:
    """Read and validate the installed DB (default: $SOCKETEER_DEVICE_DB or the repo's
    device_db/) and the user overlay (default: $SOCKETEER_OVERLAY_DB or the platformdirs
    data folder). Overlay entries add devices or replace installed entries by id.

    Raises DeviceDbInvalidError (a DeviceDbError) listing every problem. A database
    already validated, unchanged since, comes from the cache (app.devicedb.cache).
    """
    layers = default_layers(installed, overlay, use_overlay)
    try:
        key: str | None = cache.cache_key(root for layer in layers for root in layer.roots)
    except OSError:  # a file vanished while being looked at: read it all the long way
        key = None
    if key is not None and (cached := cache.load(key)) is not None:

        def rebuild() -> tuple[Device, ...]:
            cache.forget(key)
            return database_from_report(check_layers(layers)).devices

        cached.recover_with(rebuild)
        return cached
    database = database_from_report(check_layers(layers))
    if key is not None:
        cache.store(key, database)
    return database
