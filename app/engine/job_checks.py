"""A job checked against its device: what the job file alone cannot say.

The job's own validation (app.core.job_validation) knows the file, not the part. Here
the serialization is built as production will build it and its bytes must lie inside
the part, and the image must fit the part, so a job that every device would fail is
refused when it is created, checked, opened or locked, not in the middle of a run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from app.core.errors import InputError
from app.core.image import MemoryImage
from app.core.job_model import Job
from app.engine.cycle import check_may_write
from app.engine.serialization import SerialConfig, serial_range

if TYPE_CHECKING:
    from app.devicedb.models import Device


def check_job_for_device(job: Job, image: MemoryImage, device: Device) -> None:
    """InputError naming the job field when the job cannot work on ``device``."""
    check_may_write(device, "a job with it")
    image.check_within(*device.address_range, f"the {device.vendor} {device.part}")
    if job.serialization is not None:
        check_serialization(job.serialization, device)


def check_serialization(serialization: Mapping[str, Any], device: Device) -> None:
    """The serialization as production builds it; its bytes must lie inside the part.
    SerialConfigError or InputError naming the ``serialization.`` field."""
    lo, hi = device.address_range
    part = f"{device.vendor} {device.part} [0x{lo:X}, 0x{hi:X})"
    config = SerialConfig.from_json(dict(serialization))
    start, end = serial_range(config)
    if start < lo or end > hi or end <= start:
        raise InputError(
            f"serialization.address: the serial's bytes [0x{start:X}, 0x{end:X}) lie outside"
            f" the {part}"
        )
