"""Job documents against the job JSON Schema and the rules checked in code; the model's
JSON round trip (model -> JSON -> validate -> model)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.checksums import ALGORITHMS
from app.core.formats import FORMATS
from app.core.job import lock_job, save_job, utc_now_iso
from app.core.job_model import (
    DEFAULT_OPERATIONS,
    ENVELOPE,
    ERASE_MODES,
    JOB_FORMAT,
    OPERATIONS,
    OPTIONAL_OPERATIONS,
    PACKAGE_FORMAT,
    ExpectedChecksum,
    ImageRef,
    Job,
)
from app.core.job_seal import sha256_hex
from app.core.job_validation import (
    SCHEMA_FILE,
    JobFormatError,
    check_document,
    check_first_article,
)
from app.core.package_data import resources_dir

SCHEMA = json.loads((resources_dir() / "schema" / SCHEMA_FILE).read_text(encoding="utf-8"))
IMAGE = ImageRef("fw.hex", "ab" * 32, "ihex")


def document(job: Job) -> dict[str, Any]:
    """The job as a job file holds it, through real JSON text."""
    return json.loads(json.dumps({"format": JOB_FORMAT, **job.to_dict()}))


def problems(doc: dict[str, Any]) -> list[str]:
    with pytest.raises(JobFormatError) as info:
        check_document(doc, "job.json")
    return list(info.value.problems)


# -- the schema says what the model says -----------------------------------------------


def test_schema_lists_the_models_fields() -> None:
    props = SCHEMA["properties"]
    content = Job("j", "d", IMAGE).content()
    assert set(props) == set(content) | set(ENVELOPE)
    assert props["format"]["enum"] == [JOB_FORMAT, PACKAGE_FORMAT]
    assert props["erase_mode"]["enum"] == list(ERASE_MODES)
    operations = SCHEMA["$defs"]["operations"]
    optional = tuple(OPTIONAL_OPERATIONS)
    assert tuple(operations["properties"]) == OPERATIONS + optional
    assert tuple(DEFAULT_OPERATIONS) == OPERATIONS
    assert tuple(operations["required"]) == OPERATIONS  # older jobs lack the optional ones
    assert set(SCHEMA["$defs"]["image"]["properties"]) == set(IMAGE.to_dict())
    checksum = ExpectedChecksum("crc32", "0x1").to_dict()
    assert set(SCHEMA["$defs"]["checksum"]["properties"]) == set(checksum)


def test_schema_is_installed_with_the_package() -> None:
    assert (resources_dir() / "schema" / SCHEMA_FILE).is_file()
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"


# -- bad fields are named by JSON path --------------------------------------------------

GOOD = document(
    Job("widget", "winbond.w25q128jv", IMAGE, checksum=ExpectedChecksum("crc32", "0x1"))
)


def changed(change: Any) -> dict[str, Any]:
    doc = json.loads(json.dumps(GOOD))
    change(doc)
    return doc


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["image"].pop("format"), "missing field 'image.format'"),
        (
            lambda d: d.__setitem__("count_limit", 10.0),
            "field 'count_limit' must be an integer or null (found 10.0)",
        ),
        (lambda d: d.__setitem__("count_limit", 0), "field 'count_limit' must be >= 1 (found 0)"),
        (
            lambda d: d.__setitem__("count_limit", True),
            "field 'count_limit' must be an integer or null (found true)",
        ),
        (lambda d: d.__setitem__("name", " "), "field 'name' must be non-empty text (found \" \")"),
        (lambda d: d.__setitem__("nmae", "x"), "unknown field 'nmae' (did you mean 'name'?)"),
        (
            lambda d: d["operations"].__setitem__("verifiy", True),
            "unknown field 'operations.verifiy' (did you mean 'verify'?)",
        ),
        (
            lambda d: d["checksum"].__setitem__("range", [0, -1]),
            "field 'checksum.range[1]' must be >= 0 (found -1)",
        ),
        (
            lambda d: d["checksum"].__setitem__("range", [1, 2, 3]),
            "field 'checksum.range' must hold exactly 2 items (found 3)",
        ),
        (
            lambda d: d["checksum"].__setitem__("algo", "md5"),
            f"field 'checksum.algo' must be one of {', '.join(ALGORITHMS)} (found \"md5\")",
        ),
        (
            lambda d: d["image"].__setitem__("format", "elf"),
            f"field 'image.format' must be one of {', '.join(FORMATS)} (found \"elf\")",
        ),
        (
            lambda d: d.__setitem__("serialization", [1]),
            "field 'serialization' must be an object or null (found [1])",
        ),
        (
            lambda d: d.__setitem__("created_at", "tomorrow"),
            "field 'created_at' is not an ISO 8601 time ('tomorrow')",
        ),
    ],
)
def test_bad_field_is_named_by_its_json_path(change: Any, message: str) -> None:
    assert problems(changed(change)) == [f"job.json: {message}"]


def test_every_problem_is_listed_and_the_first_is_the_message() -> None:
    def change(doc: dict[str, Any]) -> None:
        doc["operations"]["verify"] = "yes"
        del doc["device_id"]
        doc["colour"] = "red"

    with pytest.raises(JobFormatError) as info:
        check_document(changed(change), "job.json")
    assert info.value.problems == (
        "job.json: unknown field 'colour'",
        "job.json: missing field 'device_id'",
        "job.json: field 'operations.verify' must be true or false (found \"yes\")",
    )
    assert str(info.value) == "job.json: unknown field 'colour' (and 2 more problems)"


def test_code_rules_run_once_the_schema_holds() -> None:
    def change(doc: dict[str, Any]) -> None:
        doc["erase_mode"] = "none"
        doc["checksum"]["range"] = [9, 1]
        doc["image"]["base"] = 0

    assert problems(changed(change)) == [
        "job.json: field 'checksum.range' must be [start, end] with 0 <= start <= end"
        " (found [9, 1])",
        "job.json: field 'erase_mode' is 'none' but operations.erase is true",
        "job.json: field 'image.base' applies to binary images only (format is 'ihex'); use null",
    ]


def test_lock_fields_are_named_with_their_prefix() -> None:
    job = Job("j", "d", ImageRef("fw.hex", sha256_hex(b":00000001FF\n"), "ihex"))
    locked = lock_job(job, b":00000001FF\n", "alice", {"checksum": "0x1", "checksum_algo": "crc32"})
    doc = document(locked)
    doc["lock"]["first_article"]["site"] = 0
    doc["lock"]["field_digests"]["name"] = "AB" * 32
    assert problems(doc) == [
        "job.json: field 'lock.field_digests.name' must be 64 lower-case hex digits (a SHA-256)"
        f' (found "{"AB" * 18}...)',
        "job.json: field 'lock.first_article.site' must be >= 1 (found 0)",
    ]


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (
            {"checksum": "", "checksum_algo": "crc32", "at": ""},
            "field 'first_article.checksum' must be non-empty text (found \"\")",
        ),
        (
            {"checksum": "0x1", "checksum_algo": "crc32", "at": "now"},
            "field 'first_article.at' is not an ISO 8601 time ('now')",
        ),
        ({"checksum": "0x1", "at": ""}, "missing field 'first_article.checksum_algo'"),
    ],
)
def test_a_first_article_record_is_checked_before_locking(
    record: dict[str, Any], message: str
) -> None:
    with pytest.raises(JobFormatError) as info:
        check_first_article(record, "first article")
    assert info.value.problems == (f"first article: {message}",)


# -- round trip ------------------------------------------------------------------------

texts = st.text(min_size=1, max_size=20).filter(lambda s: s.strip())
sha = st.binary(min_size=1, max_size=8).map(sha256_hex)
times = st.datetimes(min_value=datetime(2000, 1, 1), timezones=st.just(UTC)).map(
    lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ")
)
json_leaf = st.none() | st.booleans() | st.integers() | st.text(max_size=8)
json_values = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def image_refs(draw: st.DrawFn) -> ImageRef:
    fmt = draw(st.sampled_from(FORMATS))
    base = draw(st.integers(0, 2**32)) if fmt == "bin" else None
    return ImageRef(draw(texts), draw(sha), fmt, base)


@st.composite
def checksums(draw: st.DrawFn) -> ExpectedChecksum:
    start = draw(st.integers(0, 2**32))
    span = draw(st.none() | st.integers(start, 2**33).map(lambda end: (start, end)))
    return ExpectedChecksum(
        draw(st.sampled_from(ALGORITHMS)),
        draw(texts),
        draw(st.none() | st.integers(0, 255)),
        span,
        draw(st.booleans()),
    )


@st.composite
def jobs(draw: st.DrawFn) -> Job:
    operations = {key: draw(st.booleans()) for key in OPERATIONS}
    modes = ERASE_MODES if not operations["erase"] else ("auto", "full")
    return Job(
        name=draw(texts),
        device_id=draw(texts),
        image=draw(image_refs()),
        operations=operations,
        erase_mode=draw(st.sampled_from(modes)),
        programmer=draw(texts),
        serialization=draw(st.none() | st.dictionaries(st.text(max_size=5), json_values)),
        checksum=draw(st.none() | checksums()),
        count_limit=draw(st.none() | st.integers(1, 10**9)),
        notes=draw(st.text(max_size=30)),
        created_by=draw(st.text(max_size=10)),
        created_at=draw(st.just("") | times),
    )


@settings(max_examples=200, deadline=None)
@given(job=jobs(), image=st.binary(max_size=64), lock=st.booleans(), approver=texts)
def test_model_json_validate_model_round_trip(
    job: Job, image: bytes, lock: bool, approver: str
) -> None:
    if lock:
        job = replace(job, image=replace(job.image, sha256=sha256_hex(image)))
        expected = job.checksum or ExpectedChecksum("crc32", "0x1")
        first = {"checksum": expected.value, "checksum_algo": expected.algo, "site": 1}
        job = lock_job(job, image, approver, first, now=utc_now_iso())
    doc = document(job)
    check_document(doc, "job.json")
    assert Job.from_dict(doc) == job


def test_a_saved_job_is_a_valid_document(tmp_path: Path) -> None:
    job = Job("widget", "winbond.w25q128jv", IMAGE, created_at="2026-11-22T08:00:00Z")
    save_job(job, tmp_path / "job.json")
    doc = json.loads((tmp_path / "job.json").read_text(encoding="utf-8"))
    check_document(doc, "job.json")
    assert doc["format"] == JOB_FORMAT and Job.from_dict(doc) == job
