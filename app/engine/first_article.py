"""First article: program one device as production would, read it back, and checksum
what the part really holds against the job's expected checksum. Only a match lets an
engineer approve and lock the job (app.core.job.lock_job refuses anything else)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.core.checksums import ALGORITHMS, ChecksumSpec, checksum
from app.core.image import MemoryImage
from app.core.job import LoadedJob, same_checksum
from app.engine.job_setup import PreparedJob
from app.engine.results import DeviceResult
from app.engine.site_runner import CycleSpec, SiteRunner


@dataclass(frozen=True)
class FirstArticleOutcome:
    programmed: DeviceResult
    readback: DeviceResult | None
    checksum_algo: str
    checksum: str | None  # of what the part holds; None if it could not be read
    expected: str  # the job's expected value (or the image's own, when the job has none)
    serial: str | None

    @property
    def matches(self) -> bool:
        return self.checksum is not None and same_checksum(self.checksum, self.expected)

    def record(self) -> dict[str, Any]:
        """The first-article record for lock_job()."""
        return {
            "checksum_algo": self.checksum_algo,
            "checksum": self.checksum or "",
            "expected": self.expected,
            "chip_id": self.programmed.chip_id,
            "unique_id": self.programmed.unique_id,
            "site": self.programmed.site,
        }


def _spec(loaded: LoadedJob, serial_span: tuple[int, int] | None) -> ChecksumSpec:
    expected = loaded.job.checksum
    exclude = (serial_span,) if serial_span else ()
    if expected is None:
        return ChecksumSpec("crc32", None, None, None, exclude)
    assert expected.algo in ALGORITHMS
    return expected.spec(exclude=exclude)


def run_first_article(
    prepared: PreparedJob,
    loaded: LoadedJob,
    site_index: int,
    emit: Callable[[Any], None] | None = None,
) -> FirstArticleOutcome:
    """Program the part in ``site_index`` (a real production cycle: serial, log record),
    then read back the checked range and checksum it."""
    run = prepared.run
    site = next(s for s in run.programmer.sites if s.index == site_index)
    spec = _spec(loaded, prepared.serial_range)
    image = loaded.image
    expected = loaded.job.checksum.value if loaded.job.checksum else checksum(image, spec)
    programmed = run.cycle(site, emit)
    if programmed is None:
        raise RuntimeError("the job's count is already reached")
    serial = run.last_serial.get(site_index)
    if not programmed.passed:
        return FirstArticleOutcome(programmed, None, spec.algo, None, expected, serial)
    lo = spec.start if spec.start is not None else image.min_address
    hi = spec.end if spec.end is not None else image.max_address
    read_spec = CycleSpec("read", run.spec.device, read_range=(lo, hi))
    readback = SiteRunner(site, emit or run.emit).run(read_spec, threading.Event())
    if not readback.passed or readback.data is None:
        return FirstArticleOutcome(programmed, readback, spec.algo, None, expected, serial)
    if spec.fill is None:  # data only: the part's bytes where the image has data
        part = MemoryImage()
        for seg in image.segments_in(lo, hi):
            s, e = max(seg.start, lo), min(seg.end, hi)
            part.add(s, readback.data[s - lo : e - lo])
    else:
        part = MemoryImage.from_bytes(readback.data, lo)
    value = checksum(part, spec)
    return FirstArticleOutcome(programmed, readback, spec.algo, value, expected, serial)
