"""Job files and packages on disk: load (checked against the image), save, export.

A job file is readable JSON (2-space indent) with the marker ``socketeer-job/1``; its
image is a separate file named by a path relative to the job's folder. An exported
package is the same JSON with the image file's bytes embedded (base64, under
``image_data``) and the marker ``socketeer-job-package/1``; it is checked the same way.
Files are written atomically (app.core.fileio).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from app.core import strict_json
from app.core.errors import InputError
from app.core.fileio import user_file, write_atomic
from app.core.formats import detect_format, parse_image_bytes
from app.core.image import MemoryImage
from app.core.job_model import JOB_FORMAT, PACKAGE_FORMAT, ImageRef, Job, Lock, job_content
from app.core.job_seal import (
    ImageBytes,
    JobIntegrityError,
    changes_since_lock,
    describe_changes,
    sha256_hex,
    verify_lock,
)
from app.core.job_validation import check_document, check_lock_record, check_marker


@dataclass
class LoadedJob:
    """A job checked against its image. ``image_path`` is None for a package."""

    job: Job
    image: MemoryImage
    image_bytes: bytes
    path: Path
    image_path: Path | None = None
    packaged: bool = False


class ReferencedImage(NamedTuple):
    ref: ImageRef
    image: MemoryImage
    data: bytes


# -- images --------------------------------------------------------------------------


def _read_file(path: Path, what: str) -> bytes:
    """The file's bytes; InputError starting with ``what`` (plus the resolved path if new)."""
    with user_file(path, what):
        return path.read_bytes()


def reference_image(
    image_file: str | Path, job_file: str | Path, fmt: str | None = None, base: int = 0
) -> ReferencedImage:
    """Read an image for a new job: its ref (path relative to ``job_file``'s folder when
    possible), its parsed image and the file's bytes."""
    image_file = Path(image_file)
    data = _read_file(image_file, str(image_file))
    fmt = fmt or detect_format(image_file, data[:4096])
    image = parse_image_bytes(data, fmt, base, str(image_file))
    job_dir = Path(job_file).absolute().parent
    try:
        written = Path(os.path.relpath(image_file.absolute(), job_dir)).as_posix()
    except ValueError:  # another drive on Windows: no relative path exists
        written = str(image_file.absolute())
    ref = ImageRef(written, sha256_hex(data), fmt, base if fmt == "bin" else None)
    return ReferencedImage(ref, image, data)


def resolve_image_path(job_path: str | Path, image_path: str) -> Path:
    path = Path(image_path)
    return path if path.is_absolute() else Path(job_path).parent / path


def _image_bytes(image_path: str, doc: Mapping[str, Any], path: Path, packaged: bool) -> ImageBytes:
    """The image a job document names: embedded (a package) or the file beside the job."""
    if packaged:
        encoded = doc.get("image_data")
        if not isinstance(encoded, str):
            raise InputError(f"{path}: missing field 'image_data' (the package's image)")
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise InputError(f"{path}: field 'image_data' is not valid base64") from None
        return ImageBytes(data, None, f"{image_path} (embedded)")
    resolved = resolve_image_path(path, image_path)
    return ImageBytes(_read_file(resolved, f"{path}: image {image_path}"), resolved, image_path)


# -- writing -------------------------------------------------------------------------


def _dump(doc: Mapping[str, Any]) -> bytes:
    return (json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")


def save_job(job: Job, path: str | Path) -> None:
    """Write the job as readable JSON (2-space indent), atomically.

    A locked job whose content was changed after locking is refused (ValueError): it
    would be written only to be refused when loaded. Unlock it first.
    """
    if job.lock is not None:
        diffs = changes_since_lock(job.lock, job.content())
        if diffs:
            raise ValueError(
                f"{path}: {describe_changes(diffs)} since the job was {job.lock.locked_by};"
                " unlock it before saving a changed job"
            )
    write_atomic(Path(path), _dump({"format": JOB_FORMAT, **job.to_dict()}))


def export_job(loaded: LoadedJob, out_path: str | Path) -> None:
    """Write job + image as one portable file (the image embedded, base64)."""
    actual = sha256_hex(loaded.image_bytes)
    if actual != loaded.job.image.sha256:
        raise InputError(
            f"{loaded.path}: the image bytes do not match the job"
            f" (SHA-256 {actual} != {loaded.job.image.sha256})"
        )
    doc = {
        "format": PACKAGE_FORMAT,
        **loaded.job.to_dict(),
        "image_data": base64.b64encode(loaded.image_bytes).decode("ascii"),
    }
    write_atomic(Path(out_path), _dump(doc))


# -- reading -------------------------------------------------------------------------


def _read_json(path: Path) -> dict[str, Any]:
    raw = _read_file(path, str(path))
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise InputError(f"{path}: not UTF-8 text (byte {err.start})") from None
    try:
        doc = strict_json.loads(text)
    except strict_json.StrictJsonError as err:
        raise InputError(err.where(str(path))) from None
    if not isinstance(doc, dict):
        raise InputError(f"{path}: a job file holds one JSON object (found {type(doc).__name__})")
    return doc


def load_job(path: str | Path, *, check_lock: bool = True) -> LoadedJob:
    """Read a job file or package and check it against its image.

    Always: the image's SHA-256 must be the recorded one. For a locked job, every field
    digest and the seal are checked too (unless ``check_lock`` is False, which only an
    engineer unlocking a job should use), before the content is even validated, so an
    edit is reported as an edit. Refusals are JobIntegrityError naming what differs;
    malformed files are InputError naming the file and the JSON path.
    """
    path = Path(path)
    where = str(path)
    doc = _read_json(path)
    packaged = check_marker(doc, where)

    def read_image(image_path: str) -> ImageBytes:
        return _image_bytes(image_path, doc, path, packaged)

    image: ImageBytes | None = None
    if doc.get("lock") is not None:
        check_lock_record(doc["lock"], where)
        if check_lock:
            image = verify_lock(where, job_content(doc), Lock.from_dict(doc["lock"]), read_image)
    check_document(doc, where)
    job = Job.from_dict(doc)
    if image is None:
        image = read_image(job.image.path)
        actual = sha256_hex(image.data)
        if actual != job.image.sha256:
            raise JobIntegrityError(
                f"{where}: image {image.shown} does not match the job"
                f" (SHA-256 {actual} != recorded {job.image.sha256})",
                kind="image",
            )
    source = str(image.path) if image.path is not None else f"{where}:image_data"
    parsed = parse_image_bytes(image.data, job.image.format, job.image.base, source)
    return LoadedJob(job, parsed, image.data, path, image.path, packaged)
