"""Opening what a station needs: a programmable device from the database and the
programmer a URL names (with its errors as Socketeer's own)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.algorithms import has_algorithm
from app.core.errors import UsageError
from app.hal.errors import HalError
from app.hal.programmer import Programmer, open_programmer

if TYPE_CHECKING:
    from app.devicedb.database import DeviceDatabase
    from app.devicedb.models import Device


def programmable_device(database: DeviceDatabase, device_id: str) -> Device:
    """The device ``device_id``, refused when this version has no algorithm for it."""
    device = database.get(device_id)
    if not has_algorithm(device.algorithm):
        raise UsageError(
            f"{device.id}: the '{device.algorithm}' algorithm is not in this version of Socketeer"
        )
    return device


def open_station_programmer(
    url: str, device: Device | None, database: DeviceDatabase
) -> Programmer:
    """Open ``url`` for ``device``; a failure to open is a HalError naming the URL."""
    try:
        return open_programmer(url, device=device, database=database)
    except HalError:
        raise
    except (OSError, ValueError) as err:
        raise HalError(f"cannot open programmer {url!r}: {err}") from None
