"""Job files: round trip, locking, and refusal of every kind of edit to a locked job."""

from __future__ import annotations

import base64
import io
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.core.checksums import ALGORITHMS, checksum
from app.core.errors import InputError
from app.core.formats import write_image
from app.core.image import MemoryImage
from app.core.job import (
    JOB_FORMAT,
    PACKAGE_FORMAT,
    ExpectedChecksum,
    FirstArticleMismatch,
    ImageRef,
    Job,
    JobIntegrityError,
    export_job,
    iter_leaves,
    json_path,
    load_job,
    lock_job,
    reference_image,
    save_job,
    sha256_hex,
    unlock_job,
)

LOCKED_AT = "2026-11-22T08:00:00Z"
BY = "locked by alice at 2026-11-22T08:00:00Z"


def _image() -> MemoryImage:
    image = MemoryImage.from_bytes(bytes((i * 7 + 3) & 0xFF for i in range(600)), 0x1000)
    image.add(0x2000, b"SERIAL00" + bytes(range(40)))
    return image


def _hex_bytes(image: MemoryImage) -> bytes:
    stream = io.BytesIO()
    write_image(image, stream, "ihex")
    return stream.getvalue()


IMAGE = _image()
IMAGE_BYTES = _hex_bytes(IMAGE)
EXPECTED = ExpectedChecksum("crc32", "", 0xFF, (0x1000, 0x2100))
EXPECTED = ExpectedChecksum("crc32", checksum(IMAGE, EXPECTED.spec()), 0xFF, (0x1000, 0x2100))


def sample_job(**changes: Any) -> Job:
    fields: dict[str, Any] = {
        "name": "Widget rev B",
        "device_id": "winbond.w25q128jv",
        "image": ImageRef("fw.hex", sha256_hex(IMAGE_BYTES), "ihex"),
        "operations": {"blank_check": True, "protect": True},
        "erase_mode": "full",
        "programmer": "sim://?sites=4",
        "serialization": {
            "address": 0x2000,
            "length": 8,
            "format": "ascii-decimal",
            "fields": [{"name": "sn", "start": 1000}],
            "options": {},
        },
        "checksum": EXPECTED,
        "count_limit": 500,
        "notes": "Prüfen: Kerbe nach oben",
        "created_by": "bob",
        "created_at": "2026-11-21T17:30:00Z",
    }
    fields.update(changes)
    return Job(**fields)


FIRST_ARTICLE = {
    "checksum": EXPECTED.value,
    "chip_id": "EF4018",
    "unique_id": "D26A1234567890AB",
    "site": 2,
    "at": "2026-11-22T07:59:00Z",
}
LOCKED = lock_job(sample_job(), IMAGE_BYTES, "alice", FIRST_ARTICLE, now=LOCKED_AT)
CONTENT_PATHS = [parts for parts, _ in iter_leaves(LOCKED.content())]
LOCK_PATHS = [("lock", *parts) for parts, _ in iter_leaves(LOCKED.lock.to_dict())]  # type: ignore[union-attr]


# -- helpers -------------------------------------------------------------------------


def write_job(folder: Path, job: Job = LOCKED, *, package: bool = False) -> Path:
    """The job (and its image next to it, or embedded) in ``folder``; returns the job path."""
    (folder / "fw.hex").write_bytes(IMAGE_BYTES)
    path = folder / "job.json"
    save_job(job, path)
    if package:
        pkg = folder / "job.sjob"
        export_job(load_job(path), pkg)
        (folder / "fw.hex").unlink()
        path.unlink()
        return pkg
    return path


def edit(path: Path, change: Any) -> None:
    doc = json.loads(path.read_text(encoding="utf-8"))
    change(doc)
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False), encoding="utf-8")


def get_at(doc: Any, parts: tuple) -> Any:
    for part in parts:
        doc = doc[part]
    return doc


def set_at(doc: Any, parts: tuple, value: Any) -> None:
    get_at(doc, parts[:-1])[parts[-1]] = value


def mutated(value: Any) -> Any:
    """A different value of the same kind (a time stays a time, a hash stays a hash)."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if value is None:
        return 1
    if isinstance(value, str):
        if value in ALGORITHMS:
            return ALGORITHMS[(ALGORITHMS.index(value) + 1) % len(ALGORITHMS)]
        if len(value) == 64 and all(c in "0123456789abcdef" for c in value):
            return value[:-1] + ("0" if value[-1] != "0" else "1")
        if value.startswith("20") and value.endswith("Z"):
            return value.replace("2026", "2025", 1)
        return value + "x"
    if isinstance(value, dict | list) and not value:
        return {"x": 1} if isinstance(value, dict) else [1]
    raise AssertionError(f"no mutation for {value!r}")


def read_package_image(path: Path) -> bytes:
    return base64.b64decode(json.loads(path.read_text(encoding="utf-8"))["image_data"])


def write_package_image(path: Path, data: bytes) -> None:
    edit(path, lambda doc: doc.__setitem__("image_data", base64.b64encode(data).decode()))


# -- round trip ----------------------------------------------------------------------


def test_round_trip_locked_and_unlocked(tmp_path: Path) -> None:
    for job in (sample_job(), LOCKED):
        path = write_job(tmp_path, job)
        loaded = load_job(path)
        assert loaded.job == job
        assert loaded.image == IMAGE
        assert loaded.image_bytes == IMAGE_BYTES
        assert loaded.image_path == tmp_path / "fw.hex" and not loaded.packaged


def test_file_is_readable_json_with_marker_and_no_temp_left(tmp_path: Path) -> None:
    path = write_job(tmp_path)
    text = path.read_text(encoding="utf-8")
    assert text.startswith('{\n  "format": "socketeer-job/1",\n  "name": "Widget rev B"')
    assert "Prüfen" in text and text.endswith("}\n")
    assert json.loads(text)["format"] == JOB_FORMAT
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fw.hex", "job.json"]


def test_defaults_and_binary_base(tmp_path: Path) -> None:
    (tmp_path / "fw.bin").write_bytes(b"\x01\x02\x03\x04")
    ref, _, data = reference_image(tmp_path / "fw.bin", tmp_path / "j.json", base=0x8000)
    assert ref == ImageRef("fw.bin", sha256_hex(data), "bin", 0x8000)
    job = Job("j", "winbond.w25q128jv", ref)
    assert job.operations == {
        "erase": True,
        "blank_check": False,
        "verify": True,
        "protect": False,
        "unprotect": False,
        "skip_matching": False,
        "backup": True,
    }
    assert job.erase == "auto" and job.lock is None and job.created_at.endswith("Z")
    save_job(job, tmp_path / "j.json")
    assert "backup" not in json.loads((tmp_path / "j.json").read_text())["operations"]
    loaded = load_job(tmp_path / "j.json")
    assert loaded.job == job and loaded.image.min_address == 0x8000


def test_image_path_is_relative_to_the_job_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "jobs").mkdir()
    (tmp_path / "images" / "fw.hex").write_bytes(IMAGE_BYTES)
    ref, _, _ = reference_image(tmp_path / "images" / "fw.hex", tmp_path / "jobs" / "a.json")
    assert ref.path == "../images/fw.hex"
    save_job(Job("a", "winbond.w25q128jv", ref), tmp_path / "jobs" / "a.json")
    monkeypatch.chdir(tmp_path / "images")  # resolution does not depend on the cwd
    assert load_job(tmp_path / "jobs" / "a.json").image == IMAGE


def test_serialization_is_kept_as_plain_json(tmp_path: Path) -> None:
    job = sample_job(serialization={"ranges": (1, 2)})
    assert job.serialization == {"ranges": [1, 2]}
    locked = lock_job(job, IMAGE_BYTES, "alice", FIRST_ARTICLE)
    assert load_job(write_job(tmp_path, locked)).job == locked
    with pytest.raises(ValueError, match="not plain JSON"):
        sample_job(serialization={"when": object()})


def test_saving_a_locked_job_changed_in_memory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="field 'notes' changed since the job was locked by alice"):
        save_job(replace(LOCKED, notes="x"), tmp_path / "job.json")
    assert not (tmp_path / "job.json").exists()


def test_erase_none_contradicting_erase_on_is_refused() -> None:
    with pytest.raises(ValueError, match="contradicts"):
        sample_job(erase_mode="none")
    assert sample_job(erase_mode="none", operations={"erase": False}).erase == "none"


# -- export --------------------------------------------------------------------------


def test_package_stands_alone(tmp_path: Path) -> None:
    pkg = write_job(tmp_path, package=True)
    assert json.loads(pkg.read_text())["format"] == PACKAGE_FORMAT
    assert not (tmp_path / "fw.hex").exists()
    loaded = load_job(pkg)
    assert loaded.job == LOCKED and loaded.packaged and loaded.image_path is None
    assert loaded.image == IMAGE and loaded.image_bytes == IMAGE_BYTES


def test_package_with_bad_base64_is_named(tmp_path: Path) -> None:
    pkg = write_job(tmp_path, sample_job(), package=True)
    edit(pkg, lambda doc: doc.__setitem__("image_data", "not base64!"))
    with pytest.raises(InputError, match=r"job\.sjob: field 'image_data' is not valid base64"):
        load_job(pkg)


# -- tampering -----------------------------------------------------------------------


def test_every_content_path_is_covered() -> None:
    names = {json_path(p) for p in CONTENT_PATHS}
    assert {"name", "operations.verify", "image.sha256", "checksum.range[1]"} <= names
    assert "serialization.fields[0].start" in names and "serialization.options" in names
    assert set(LOCKED.lock.field_digests) == names  # type: ignore[union-attr]


@pytest.mark.parametrize("package", [False, True], ids=["file", "package"])
@pytest.mark.parametrize("parts", CONTENT_PATHS, ids=json_path)
def test_any_edited_field_of_a_locked_job_is_named(
    tmp_path: Path, parts: tuple, package: bool
) -> None:
    path = write_job(tmp_path, package=package)
    edit(path, lambda doc: set_at(doc, parts, mutated(get_at(doc, parts))))
    with pytest.raises(JobIntegrityError) as info:
        load_job(path)
    name = json_path(parts)
    assert str(info.value) == f"{path}: field '{name}' changed since it was {BY}"
    assert info.value.kind == "fields" and info.value.fields == (name,)


@pytest.mark.parametrize("parts", LOCK_PATHS, ids=json_path)
def test_any_edit_of_the_lock_record_is_refused(tmp_path: Path, parts: tuple) -> None:
    path = write_job(tmp_path)
    edit(path, lambda doc: set_at(doc, parts, mutated(get_at(doc, parts))))
    with pytest.raises(JobIntegrityError) as info:
        load_job(path)
    if parts[1] == "field_digests":  # content intact, the digest list edited
        assert info.value.kind == "digests" and info.value.fields == (parts[2],)
        assert f"the lock's field digests were edited (the digests of field '{parts[2]}'" in str(
            info.value
        )
    else:  # the approval record is sealed too
        assert info.value.kind == "seal"
        assert str(info.value).startswith(f"{path}: the job's seal does not match its content")


def test_removed_added_and_retyped_fields_are_named(tmp_path: Path) -> None:
    path = write_job(tmp_path)

    def change(doc: dict) -> None:
        del doc["notes"]
        doc["operations"]["verify"] = False
        doc["checksum"] = None
        doc["extra"] = 1

    edit(path, change)
    with pytest.raises(JobIntegrityError) as info:
        load_job(path)
    assert str(info.value) == (
        f"{path}: fields 'operations.verify', 'checksum' changed and field 'extra' added"
        f" and field 'notes' removed since it was {BY}"
    )


def test_field_edited_together_with_its_digest_breaks_the_seal(tmp_path: Path) -> None:
    path = write_job(tmp_path)
    forged = sha256_hex(b"false")

    def change(doc: dict) -> None:
        doc["operations"]["verify"] = False
        doc["lock"]["field_digests"]["operations.verify"] = forged

    edit(path, change)
    with pytest.raises(JobIntegrityError, match="the job's seal does not match its content"):
        load_job(path)


def test_edited_field_and_swapped_image_are_both_named(tmp_path: Path) -> None:
    path = write_job(tmp_path)
    edit(path, lambda doc: doc.__setitem__("count_limit", 9999))
    (tmp_path / "fw.hex").write_bytes(IMAGE_BYTES + b"\n")
    with pytest.raises(JobIntegrityError) as info:
        load_job(path)
    assert f"field 'count_limit' changed since it was {BY}; image fw.hex changed too" in str(
        info.value
    )


def _flip_positions(size: int) -> list[int]:
    return sorted({0, 1, 2, size // 3, size // 2, size - 3, size - 2, size - 1})


@pytest.mark.parametrize("package", [False, True], ids=["file", "package"])
@pytest.mark.parametrize("index", _flip_positions(len(IMAGE_BYTES)))
def test_flipped_image_byte_is_refused(tmp_path: Path, index: int, package: bool) -> None:
    path = write_job(tmp_path, package=package)
    data = bytearray(IMAGE_BYTES)
    data[index] ^= 0x01
    if package:
        write_package_image(path, bytes(data))
    else:
        (tmp_path / "fw.hex").write_bytes(bytes(data))
    with pytest.raises(JobIntegrityError) as info:
        load_job(path)
    shown = "fw.hex (embedded)" if package else "fw.hex"
    assert str(info.value) == (
        f"{path}: image {shown} changed since the job was {BY}"
        f" (SHA-256 {sha256_hex(data)} != locked {sha256_hex(IMAGE_BYTES)})"
    )
    assert info.value.kind == "image"


def test_changed_image_of_an_unlocked_job_is_refused(tmp_path: Path) -> None:
    path = write_job(tmp_path, sample_job())
    (tmp_path / "fw.hex").write_bytes(IMAGE_BYTES[:-1])
    with pytest.raises(JobIntegrityError, match=r"image fw\.hex does not match the job \(SHA"):
        load_job(path)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_single_byte_change_in_the_image_is_detected(
    tmp_path: Path, data: st.DataObject
) -> None:
    path = tmp_path / "job.json"
    if not path.exists():
        write_job(tmp_path)
    index = data.draw(st.integers(0, len(IMAGE_BYTES) - 1), label="index")
    new = data.draw(st.integers(0, 255).filter(lambda b: b != IMAGE_BYTES[index]), label="byte")
    changed = bytearray(IMAGE_BYTES)
    changed[index] = new
    (tmp_path / "fw.hex").write_bytes(bytes(changed))
    with pytest.raises(JobIntegrityError, match=r"image fw\.hex changed since the job was locked"):
        load_job(path)


# -- lock / unlock -------------------------------------------------------------------


def test_lock_records_approval_and_first_article() -> None:
    lock = LOCKED.lock
    assert lock is not None
    assert (lock.approved_by, lock.approved_at) == ("alice", LOCKED_AT)
    assert lock.image_sha256 == sha256_hex(IMAGE_BYTES)
    fa = lock.first_article
    assert (fa.checksum_algo, fa.checksum, fa.expected) == ("crc32", EXPECTED.value, EXPECTED.value)
    assert (fa.chip_id, fa.site, fa.at) == ("EF4018", 2, "2026-11-22T07:59:00Z")


def test_lock_refused_when_the_first_article_checksum_differs() -> None:
    with pytest.raises(FirstArticleMismatch, match="does not match the expected") as info:
        lock_job(sample_job(), IMAGE_BYTES, "alice", {**FIRST_ARTICLE, "checksum": "0x12345678"})
    assert "stays unlocked" in str(info.value)
    with pytest.raises(FirstArticleMismatch, match="the job expects crc32"):
        lock_job(sample_job(), IMAGE_BYTES, "alice", {**FIRST_ARTICLE, "checksum_algo": "sum32"})
    # a job without an expected checksum checks the first article's own expectation
    no_sum = sample_job(checksum=None)
    with pytest.raises(FirstArticleMismatch):
        lock_job(
            no_sum,
            IMAGE_BYTES,
            "alice",
            {"checksum": "0x1", "checksum_algo": "crc32", "expected": "0x2"},
        )
    ok = lock_job(no_sum, IMAGE_BYTES, "alice", {"checksum": "0xab", "checksum_algo": "sum8"})
    assert ok.lock is not None and ok.lock.first_article.expected is None


def test_checksums_compare_as_numbers() -> None:
    value = "0x" + EXPECTED.value[2:].lower()
    assert lock_job(sample_job(), IMAGE_BYTES, "a", {**FIRST_ARTICLE, "checksum": value}).locked


def test_lock_refuses_other_image_bytes_and_double_lock() -> None:
    with pytest.raises(InputError, match="not the job's image"):
        lock_job(sample_job(), IMAGE_BYTES + b"\n", "alice", FIRST_ARTICLE)
    with pytest.raises(InputError, match="already locked by alice"):
        lock_job(LOCKED, IMAGE_BYTES, "alice", FIRST_ARTICLE)


def test_unlock_then_edit_then_relock(tmp_path: Path) -> None:
    job = unlock_job(LOCKED)
    assert job.lock is None and job == sample_job()
    edited = replace(job, notes="new notes")
    relocked = lock_job(edited, IMAGE_BYTES, "carol", FIRST_ARTICLE, now=LOCKED_AT)
    path = write_job(tmp_path, relocked)
    assert load_job(path).job.lock == relocked.lock


# -- malformed files -----------------------------------------------------------------


def test_invalid_json_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "job.json"
    path.write_text('{\n  "format": "socketeer-job/1",\n  "name": oops\n}\n')
    with pytest.raises(InputError, match=r"job\.json:3:11: invalid JSON"):
        load_job(path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["operations"].pop("verify"), "missing field 'operations.verify'"),
        (lambda d: d.pop("device_id"), "missing field 'device_id'"),
        (lambda d: d["image"].pop("sha256"), "missing field 'image.sha256'"),
        (lambda d: d.__setitem__("count_limit", "10"), "field 'count_limit' must be an integer"),
        (lambda d: d["operations"].__setitem__("verify", 1), "'operations.verify' must be true"),
        (lambda d: d.__setitem__("erase_mode", "some"), "field 'erase_mode' must be one of"),
        (lambda d: d["checksum"].__setitem__("range", [5, 1]), "field 'checksum.range' must be"),
        (lambda d: d["checksum"].__setitem__("fill", 256), "field 'checksum.fill' must be >= 0"),
        (lambda d: d["image"].__setitem__("sha256", "ab"), "field 'image.sha256' must be 64"),
        (lambda d: d["image"].__setitem__("base", 0), "field 'image.base' applies to binary"),
        (lambda d: d.__setitem__("colour", "red"), "unknown field 'colour'"),
        (lambda d: d.__setitem__("format", "other/1"), "not a Socketeer job"),
        (lambda d: d.pop("format"), "no 'format' marker"),
        (lambda d: d.__setitem__("lock", {"approved_by": "x"}), "missing field 'lock.approved_at'"),
    ],
)
def test_bad_fields_are_named(tmp_path: Path, change: Any, message: str) -> None:
    path = write_job(tmp_path, sample_job())
    edit(path, change)
    with pytest.raises(InputError, match=r"^" + str(path).replace("\\", "\\\\") + ": ") as info:
        load_job(path)
    assert message in str(info.value)


def test_duplicate_keys_and_missing_image_are_named(tmp_path: Path) -> None:
    path = write_job(tmp_path, sample_job())
    path.write_text(path.read_text().replace('"notes":', '"name": "other",\n  "notes":'))
    with pytest.raises(InputError, match="duplicate key 'name'"):
        load_job(path)
    path = write_job(tmp_path, sample_job())
    (tmp_path / "fw.hex").unlink()
    with pytest.raises(InputError, match=r"job\.json: image fw\.hex: no such file"):
        load_job(path)
    with pytest.raises(InputError, match="no such file"):
        load_job(tmp_path / "nope.json")
