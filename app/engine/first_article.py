"""First article: program one device as production would, read it back, and checksum
what the part really holds against the job's expected checksum. Only a match lets an
engineer approve and lock the job (app.core.job.lock_job refuses anything else)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from app.core.checksums import ALGORITHMS, ChecksumSpec, checksum
from app.core.image import MemoryImage
from app.core.job import LoadedJob, same_checksum
from app.engine.cycle import build_cycle_spec
from app.engine.results import ERROR, DeviceResult
from app.engine.station import Emit, Station

if TYPE_CHECKING:
    from app.devicedb.database import DeviceDatabase


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

    def record(self) -> dict[str, str | int | None]:
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
    station: Station,
    loaded: LoadedJob,
    database: DeviceDatabase,
    serial_span: tuple[int, int] | None,
    site_index: int,
    emit: Emit | None = None,
) -> FirstArticleOutcome:
    """Program the part in ``site_index`` (a real production cycle: serial, log record),
    then read back the checked range and checksum it."""
    production = station.production
    if production is None:
        raise ValueError("the first article needs the station's job")
    spec = _spec(loaded, serial_span)
    image = loaded.image
    expected = loaded.job.checksum.value if loaded.job.checksum else checksum(image, spec)
    programmed = station.cycle(site_index, production.spec, counted=True, emit=emit)
    if programmed is None:
        programmed = DeviceResult(
            site_index,
            "program",
            production.spec.device.id,
            ERROR,
            "not started: the site is busy or the job's count is reached",
            failed_step="setup",
        )
    serial = production.last_serial.get(site_index)
    if not programmed.passed:
        return FirstArticleOutcome(programmed, None, spec.algo, None, expected, serial)
    lo = spec.start if spec.start is not None else image.min_address
    hi = spec.end if spec.end is not None else image.max_address
    read_spec = build_cycle_spec("read", production.spec.device, database, read_range=(lo, hi))
    readback = station.cycle(site_index, read_spec, emit=emit)
    if readback is None or not readback.passed or readback.data is None:
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
