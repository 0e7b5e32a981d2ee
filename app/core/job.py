"""Production job: what to program, saved as JSON; locking; one-file packages.

A job file names the device, the image (by path *and* the SHA-256 of the image file's
bytes), the operations, the programmer, the serialization and the expected checksum.
An engineer locks a job after its first article matched; operators open only locked
jobs, and any edit of a locked job or its image is refused with a message naming it.

The parts live in their own modules; this one gathers their public names:

- app.core.job_model: the dataclasses (Job, ImageRef, ExpectedChecksum, Lock, ...)
  and their JSON form;
- app.core.job_validation: the job JSON Schema (resources/schema/job.schema.json) and
  the rules checked in code, with messages naming file and JSON path;
- app.core.job_seal: field digests, the seal, and tamper detection naming what changed;
- app.core.job_lock: the rules of locking (first article must match) and unlocking;
- app.core.job_files: load (checked against the image), save, export as a package.
"""

from app.core.job_files import (
    LoadedJob,
    ReferencedImage,
    export_job,
    load_job,
    reference_image,
    resolve_image_path,
    save_job,
)
from app.core.job_lock import FirstArticleMismatch, lock_job, unlock_job
from app.core.job_model import (
    DEFAULT_OPERATIONS,
    ERASE_MODES,
    JOB_FORMAT,
    OPERATIONS,
    PACKAGE_FORMAT,
    ExpectedChecksum,
    FirstArticle,
    ImageRef,
    Job,
    Lock,
    same_checksum,
    utc_now_iso,
)
from app.core.job_seal import (
    JobIntegrityError,
    canonical_json,
    compute_seal,
    field_digests,
    iter_leaves,
    json_path,
    sha256_hex,
)
from app.core.job_validation import JobFormatError

__all__ = [
    "DEFAULT_OPERATIONS",
    "ERASE_MODES",
    "JOB_FORMAT",
    "OPERATIONS",
    "PACKAGE_FORMAT",
    "ExpectedChecksum",
    "FirstArticle",
    "FirstArticleMismatch",
    "ImageRef",
    "Job",
    "JobFormatError",
    "JobIntegrityError",
    "LoadedJob",
    "Lock",
    "ReferencedImage",
    "canonical_json",
    "compute_seal",
    "export_job",
    "field_digests",
    "iter_leaves",
    "json_path",
    "load_job",
    "lock_job",
    "reference_image",
    "resolve_image_path",
    "same_checksum",
    "save_job",
    "sha256_hex",
    "unlock_job",
    "utc_now_iso",
]
