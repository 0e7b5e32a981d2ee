"""The standing fuzz suite: every input ends in success or in one of Socketeer's own
errors with a one-line message, within a time and a memory bound. Bounded by default;
`pytest --fuzz-long --timeout=0` runs thousands of examples per target.

Targets: image files (every reader, through the CLI's loading path, and every writer),
job files, device database overlay entries, programmer URLs, the numbers and ranges
users type.
"""

from __future__ import annotations

import json
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.core.errors import SocketeerError
from app.core.formats import load_image, parse_image_bytes, save_image
from app.core.numbers import parse_number, parse_range
from app.hal.programmer import open_programmer

IMAGES = Path(__file__).parent / "data" / "images"
SMALL_DB = Path(__file__).parent / "data" / "devicedb" / "installed"
SECONDS = 2.0
PEAK_BYTES = 64 << 20


@contextmanager
def bounded() -> Iterator[None]:
    """The block must finish within SECONDS and allocate at most PEAK_BYTES at once,
    and may raise only a SocketeerError with a one-line message."""
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        yield
    except SocketeerError as err:
        assert "\n" not in str(err) and str(err), repr(err)
    finally:
        elapsed = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert elapsed < SECONDS, f"took {elapsed:.2f} s"
    assert peak < PEAK_BYTES, f"peak {peak >> 20} MiB"


def _seeds() -> list[bytes]:
    return [path.read_bytes()[:4000] for path in sorted(IMAGES.glob("composite*"))]


def mutated(seed: bytes) -> st.SearchStrategy[bytes]:
    """A reference image with bytes flipped, lines cut, duplicated or spliced."""

    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        data = bytearray(seed)
        for _ in range(draw(st.integers(0, 8))):
            if not data:
                break
            at = draw(st.integers(0, len(data) - 1))
            action = draw(st.sampled_from(["flip", "cut", "dup", "insert"]))
            if action == "flip":
                data[at] = draw(st.integers(0, 255))
            elif action == "cut":
                del data[at : at + draw(st.integers(1, 80))]
            elif action == "dup":
                data[at:at] = data[at : at + draw(st.integers(1, 80))]
            else:
                data[at:at] = draw(st.binary(max_size=40))
        return bytes(data)

    return build()


FORMATS = ("ihex", "srec", "ti-txt", "bin")
fuzz = settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@fuzz
@given(data=st.sampled_from(_seeds()).flatmap(mutated), fmt=st.sampled_from(FORMATS))
def test_image_readers(data: bytes, fmt: str) -> None:
    with bounded():
        parse_image_bytes(data, fmt, 0, "fuzz")


@fuzz
@given(data=st.binary(max_size=3000))
def test_image_loading_by_content(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "image.hex"
        path.write_bytes(data)
        with bounded():
            load_image(path)


@fuzz
@given(
    chunks=st.lists(
        st.tuples(st.integers(0, (1 << 32) - 64), st.binary(min_size=1, max_size=64)),
        max_size=6,
    ),
    fmt=st.sampled_from(FORMATS),
    start=st.one_of(st.none(), st.integers(0, (1 << 33))),
)
def test_image_writers(
    chunks: list[tuple[int, bytes]],
    fmt: str,
    start: int | None,
) -> None:
    from app.core.image import MemoryImage

    image = MemoryImage(start_address=start)
    for address, data in chunks:
        if fmt == "bin":  # a raw binary spans every gap: keep it small on disk
            address &= 0xFFFFF
        image.add(address, data, last_wins=True)
    with tempfile.TemporaryDirectory() as folder, bounded():
        out = Path(folder) / f"out.{fmt}"
        save_image(image, out, fmt)
        assert load_image(out, fmt).image == image or fmt == "bin"


URL_PARTS = st.sampled_from(
    ["sites", "timing", "fault", "seed", "spi_hz", "i2c_hz", "adapter", "handler", "chip",
     "connection", "power", "x"]
)  # fmt: skip
URL_VALUES = st.one_of(
    st.sampled_from(["1", "0", "-1", "abc", "1e9", "typ", "max", "scale:0.5", "1:verify",
                     "²:verify", "1:verify@0x10", "winbond.w25q128jv", "in-system", ""]),
    st.text(max_size=12),
)  # fmt: skip


@fuzz
@given(options=st.lists(st.tuples(URL_PARTS, URL_VALUES), max_size=4))
def test_programmer_urls(options: list[tuple[str, str]]) -> None:
    from urllib.parse import quote

    query = "&".join(f"{key}={quote(value)}" for key, value in options)
    with bounded():
        programmer = open_programmer(f"sim://?{query}")
        programmer.close()


@fuzz
@given(text=st.text(max_size=50))
def test_numbers_and_ranges(text: str) -> None:
    parse: Callable[[str], object]
    for parse in (parse_number, parse_range):
        with bounded():
            parse(text)


def _job_seed() -> str:
    return json.dumps(
        {
            "format": "socketeer-job/1",
            "name": "fuzz",
            "device_id": "winbond.w25q128jv",
            "image": {"path": "fw.hex", "format": "ihex", "sha256": "0" * 64},
            "operations": {"erase": True, "verify": True},
            "erase_mode": "auto",
            "programmer": "sim://?sites=2",
            "serialization": {"kind": "incremental", "address": 256, "width": 8},
            "count_limit": 10,
        },
        indent=1,
    )


@fuzz
@given(text=mutated(_job_seed().encode()).map(lambda b: b.decode("utf-8", "replace")))
def test_job_files(text: str) -> None:
    from app.core.job import load_job

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "job.json"
        path.write_text(text, encoding="utf-8")
        (Path(folder) / "fw.hex").write_bytes(b":00000001FF\n")
        with bounded():
            load_job(path)


def _overlay_seed() -> bytes:
    doc = json.loads((SMALL_DB / "i2c_eeprom" / "microchip.json").read_text(encoding="utf-8"))
    entry = dict(doc["devices"][0], id="acme.fuzz", part="FUZZ1")
    return json.dumps({"family": doc["family"], "vendor": doc["vendor"], "devices": [entry]},
                      indent=1).encode()  # fmt: skip


@fuzz
@given(data=mutated(_overlay_seed()))
def test_overlay_entries(data: bytes) -> None:
    from app.devicedb import load_database

    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "mine.json").write_bytes(data)
        with bounded():
            database = load_database(SMALL_DB, Path(folder))  # a small installed DB
            if "acme.fuzz" in database:
                database.get("acme.fuzz").to_json()
