"""A locked job's seal and field digests, and tamper detection that names what changed.

A lock records a SHA-256 digest of every leaf of the job's content keyed by its JSON path
(``field_digests``) and a seal::

    seal = sha256(canonical(content) + b"\\0" + image file bytes
                  + b"\\0" + canonical(approval record))

``content`` is the job without its lock; the approval record is the lock without
``seal`` and ``field_digests`` (approved_by, approved_at, image_sha256, first_article),
so the approval and first-article record cannot be edited without breaking the seal
either. The field digests are not needed for security (the seal covers the content);
they exist so that a refusal can say *which* field was edited.

The seal is tamper-*evidence*, not a signature: it has no secret, so somebody who edits
a job and recomputes every hash with this module gets a job that loads. It stops
accidental edits, edits by hand and swapped image files, which is what a production line
needs from it; signing with an engineer key would be the next step.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from app.core.errors import InputError
from app.core.job_model import Lock
from app.core.json_schema import JsonPath

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MAX_LISTED = 10


class JobIntegrityError(InputError):
    """A job no longer matches what was recorded: its image, or (locked) its content or seal.

    ``kind`` is "fields", "image", "seal" or "digests"; ``fields`` names the JSON paths
    that differ (kind "fields" or "digests").
    """

    def __init__(self, message: str, *, kind: str, fields: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.kind = kind
        self.fields = fields


class ImageBytes(NamedTuple):
    """An image as read for a check: its bytes, the file (None: embedded in a package) and
    how messages name it."""

    data: bytes
    path: Path | None
    shown: str


# -- hashing -------------------------------------------------------------------------


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8 (not ASCII-escaped); NaN/Infinity refused."""
    text = json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return text.encode("utf-8")


def sha256_hex(data: bytes | bytearray | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


def json_path(parts: JsonPath) -> str:
    """``("operations", "verify")`` -> ``operations.verify``; ``("a", 0)`` -> ``a[0]``.

    The digest keys of a lock, and so the paths every job message names."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENT.fullmatch(part):
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part, ensure_ascii=False)}]"
    return out


def iter_leaves(value: Any, prefix: JsonPath = ()) -> Iterator[tuple[JsonPath, Any]]:
    """(path parts, value) of every leaf; an empty object or array is a leaf itself."""
    if isinstance(value, dict) and value:
        for key, item in value.items():
            yield from iter_leaves(item, (*prefix, key))
    elif isinstance(value, list) and value:
        for index, item in enumerate(value):
            yield from iter_leaves(item, (*prefix, index))
    else:
        yield prefix, value


def field_digests(content: Mapping[str, Any]) -> dict[str, str]:
    """{JSON path: SHA-256 of the canonical JSON of that leaf} over the whole content."""
    return {json_path(parts): sha256_hex(canonical_json(v)) for parts, v in iter_leaves(content)}


def compute_seal(
    content: Mapping[str, Any], image_bytes: bytes, approval_record: Mapping[str, Any]
) -> str:
    digest = hashlib.sha256(canonical_json(content))
    digest.update(b"\0")
    digest.update(image_bytes)
    digest.update(b"\0")
    digest.update(canonical_json(approval_record))
    return digest.hexdigest()


# -- what changed --------------------------------------------------------------------


def changes_since_lock(lock: Lock, content: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(JSON path, "changed" | "added" | "removed") for every leaf of ``content`` that
    differs from what ``lock`` recorded; empty when the content is as locked."""
    return _diff_digests(lock.field_digests, field_digests(content))


def _diff_digests(recorded: Mapping[str, str], current: Mapping[str, str]) -> list[tuple[str, str]]:
    def under(child: str, parent: str) -> bool:
        return child.startswith(parent) and child[len(parent) : len(parent) + 1] in (".", "[")

    changed = {p for p in recorded.keys() & current.keys() if recorded[p] != current[p]}
    added = set(current) - set(recorded)
    removed = set(recorded) - set(current)
    # A leaf that became an object (or the reverse) shows up as the leaf plus its
    # children on the other side: name just the leaf, as changed.
    retyped = {p for p in removed if any(under(q, p) for q in added)}
    retyped |= {p for p in added if any(under(q, p) for q in removed)}
    added = {p for p in added - retyped if not any(under(p, r) for r in retyped)}
    removed = {p for p in removed - retyped if not any(under(p, r) for r in retyped)}
    order = list(current) + [p for p in recorded if p not in current]
    out: list[tuple[str, str]] = []
    for verb, paths in (("changed", changed | retyped), ("added", added), ("removed", removed)):
        out.extend((p, verb) for p in order if p in paths)
    return out


def _listed(paths: list[str]) -> str:
    shown = ", ".join(f"'{p}'" for p in paths[:_MAX_LISTED])
    more = f" and {len(paths) - _MAX_LISTED} more" if len(paths) > _MAX_LISTED else ""
    return f"{'field' if len(paths) == 1 else 'fields'} {shown}{more}"


def describe_changes(diffs: list[tuple[str, str]]) -> str:
    """``field 'a' changed`` / ``fields 'a', 'b' changed and field 'c' added``."""
    by_verb: dict[str, list[str]] = {}
    for p, verb in diffs:
        by_verb.setdefault(verb, []).append(p)
    return " and ".join(f"{_listed(paths)} {verb}" for verb, paths in by_verb.items())


# -- checking a locked job -----------------------------------------------------------


def verify_lock(
    where: str,
    content: dict[str, Any],
    lock: Lock,
    read_image: Callable[[str], ImageBytes],
) -> ImageBytes:
    """Check a locked job's raw content (before it is validated, so an edit is reported
    as an edit), its image and its seal; return the image read.

    ``read_image(path)`` reads the image the content names. Refusals are
    JobIntegrityError naming the fields that differ, the changed image, or the seal.
    """
    diffs = changes_since_lock(lock, content)
    raw_image = content.get("image")
    raw_path = raw_image.get("path") if isinstance(raw_image, dict) else None
    raw_sha = raw_image.get("sha256") if isinstance(raw_image, dict) else None
    if not diffs:  # the content is as locked (unless the digests were forged too)
        image = read_image(str(raw_path))
        if compute_seal(content, image.data, lock.approval_record()) == lock.seal:
            return image
        actual = sha256_hex(image.data)
        if actual != raw_sha:
            raise JobIntegrityError(
                f"{where}: image {image.shown} changed since the job was {lock.locked_by}"
                f" (SHA-256 {actual} != locked {raw_sha})",
                kind="image",
            )
        raise JobIntegrityError(
            f"{where}: the job's seal does not match its content (the lock record, its"
            " field digests or the seal were edited)",
            kind="seal",
        )
    fields = tuple(p for p, _ in diffs)
    # Tell an edited content from edited digests: if the seal still matches the content
    # as it stands, only the digest list was touched.
    extra = ""
    if isinstance(raw_path, str):
        try:
            image = read_image(raw_path)
        except InputError:
            pass
        else:
            if compute_seal(content, image.data, lock.approval_record()) == lock.seal:
                raise JobIntegrityError(
                    f"{where}: the lock's field digests were edited (the digests of"
                    f" {_listed(list(fields))} no longer match the content, which still"
                    " matches the seal)",
                    kind="digests",
                    fields=fields,
                )
            actual = sha256_hex(image.data)
            if actual != lock.image_sha256:
                extra = (
                    f"; image {image.shown} changed too"
                    f" (SHA-256 {actual} != locked {lock.image_sha256})"
                )
    raise JobIntegrityError(
        f"{where}: {describe_changes(diffs)} since it was {lock.locked_by}{extra}",
        kind="fields",
        fields=fields,
    )
