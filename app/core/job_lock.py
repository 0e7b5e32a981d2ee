"""Locking is how an engineer releases a job to operators; these are its rules.

A job is locked only by a named engineer, only over its own image bytes, and only when
the first article's read-back checksum is the expected one. What the lock records and
seals is described in app.core.job_seal; who may lock or unlock is the caller's check
(app.core.roles).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from app.core.errors import InputError, UsageError
from app.core.job_model import FirstArticle, Job, Lock, same_checksum, utc_now_iso
from app.core.job_seal import compute_seal, field_digests, sha256_hex
from app.core.job_validation import check_first_article


class FirstArticleMismatch(InputError):
    """The first article's checksum is not the expected one: the job cannot be locked."""


def lock_job(
    job: Job,
    image_bytes: bytes,
    approved_by: str,
    first_article: Mapping[str, Any],
    *,
    now: str | None = None,
) -> Job:
    """A copy of ``job`` locked by ``approved_by``.

    ``first_article``: checksum (required), checksum_algo (default: the job's expected
    algorithm), expected, chip_id, unique_id, site, at (default now). Refused
    (FirstArticleMismatch) when the first article's checksum is not the job's expected one
    (or, for a job without one, not the ``expected`` the first article carries).
    """
    if job.lock is not None:
        raise InputError(f"the job is already {job.lock.locked_by}; unlock it first")
    if not approved_by.strip():
        raise UsageError("a lock needs the approving engineer's name")
    actual = sha256_hex(image_bytes)
    if actual != job.image.sha256:
        raise InputError(
            f"image {job.image.path}: these bytes are not the job's image"
            f" (SHA-256 {actual} != {job.image.sha256})"
        )
    now = now or utc_now_iso()
    fa_raw = dict(first_article)
    if job.checksum is not None:
        fa_raw.setdefault("checksum_algo", job.checksum.algo)
    fa_raw.setdefault("at", now)
    fa_raw.setdefault("expected", None if job.checksum is None else job.checksum.value)
    check_first_article(fa_raw, "first article")
    fa = FirstArticle.from_dict(fa_raw)
    expected: str | None
    if job.checksum is not None:
        if fa.checksum_algo != job.checksum.algo:
            raise FirstArticleMismatch(
                f"first article checksum is {fa.checksum_algo}, the job expects"
                f" {job.checksum.algo}; the job stays unlocked"
            )
        expected = job.checksum.value
    else:
        expected = fa.expected
    if expected is not None:
        if not same_checksum(fa.checksum, expected):
            raise FirstArticleMismatch(
                f"first article {fa.checksum_algo} {fa.checksum} does not match the expected"
                f" {expected}; the job stays unlocked"
            )
        fa = replace(fa, expected=expected)
    content = job.content()
    unsealed = Lock(approved_by, now, "", field_digests(content), actual, fa)
    seal = compute_seal(content, image_bytes, unsealed.approval_record())
    return replace(job, lock=replace(unsealed, seal=seal))


def unlock_job(job: Job) -> Job:
    """A copy without the lock (the caller checks that an engineer asked for it)."""
    return replace(job, lock=None)
