"""`socketeer job new|show|check|export|unlock|password`: production job files.

Exit codes: 0 ok, 2 bad input, a job that does not match its image, or a locked job that
was edited (the one-line message names what differs).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

from app.commands import help_for
from app.commands.image import parse_byte, parse_number, parse_range
from app.core.checksums import ALGORITHMS, checksum
from app.core.errors import InputError, UsageError
from app.core.formats import FORMATS
from app.core.job_files import LoadedJob, export_job, load_job, reference_image, save_job
from app.core.job_lock import unlock_job
from app.core.job_model import DEFAULT_OPERATIONS, ExpectedChecksum, Job
from app.core.job_seal import JobIntegrityError
from app.core.roles import RoleStore
from app.devicedb import load_database
from app.engine.job_checks import check_job_for_device

ENV_PASSWORD = "SOCKETEER_ENGINEER_PASSWORD"
ENV_NEW_PASSWORD = "SOCKETEER_NEW_ENGINEER_PASSWORD"


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("job", help=help_for("job"))
    job_sub = parser.add_subparsers(dest="job_command", metavar="ACTION")

    p = job_sub.add_parser("new", help="create a job file for a device and an image")
    p.add_argument("output", type=Path, metavar="OUT", help="job file to write (.json)")
    p.add_argument("--device", required=True, metavar="ID", help="device id from the database")
    p.add_argument("--image", required=True, type=Path, metavar="FILE", help="image file")
    p.add_argument("--format", dest="in_format", choices=FORMATS, help="image format (detected)")
    p.add_argument("--base", default="0", help="load address of a raw binary image (default 0)")
    p.add_argument(
        "--allow-incomplete",
        action="store_true",
        help="accept an image the reader warns about (e.g. S-records that may be truncated)",
    )
    p.add_argument(
        "--programmer",
        default=os.environ.get("SOCKETEER_PROGRAMMER", "sim://"),
        metavar="URL",
        help="programmer URL (default: %(default)s)",
    )
    p.add_argument("--name", help="job name (default: OUT's file name without extension)")
    p.add_argument("--no-verify", action="store_true", help="skip the verify step")
    p.add_argument("--blank-check", action="store_true", help="blank check before programming")
    erase = p.add_mutually_exclusive_group()
    erase.add_argument("--full-erase", action="store_true", help="erase the whole chip first")
    erase.add_argument("--no-erase", action="store_true", help="do not erase")
    p.add_argument("--unprotect", action="store_true", help="clear block protection first")
    p.add_argument("--protect", action="store_true", help="set block protection afterwards")
    p.add_argument(
        "--skip-matching", action="store_true", help="leave blocks that already match untouched"
    )
    p.add_argument("--count", type=int, metavar="N", help="stop after N good devices")
    p.add_argument(
        "--checksum",
        choices=ALGORITHMS,
        metavar="ALGO",
        help=f"record the image's checksum as the expected one ({', '.join(ALGORITHMS)})",
    )
    p.add_argument("--checksum-fill", metavar="BYTE", help="checksum over a range, gaps = BYTE")
    p.add_argument("--checksum-range", metavar="START:END", help="checksum over this range")
    p.add_argument("--notes", default="", help="free text for the operator")
    p.add_argument("--by", metavar="NAME", help="author (default: the login name)")
    p.add_argument("--force", action="store_true", help="replace OUT if it exists")
    p.set_defaults(func=cmd_new)

    p = job_sub.add_parser("show", help="print a job (checked against its image first)")
    p.add_argument("job", type=Path, metavar="JOB")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=cmd_show)

    p = job_sub.add_parser("check", help="check the image hash and, when locked, every field")
    p.add_argument("job", type=Path, metavar="JOB")
    p.set_defaults(func=cmd_check)

    p = job_sub.add_parser("export", help="pack job + image into one portable file")
    p.add_argument("job", type=Path, metavar="JOB")
    p.add_argument("output", type=Path, metavar="OUT")
    p.set_defaults(func=cmd_export)

    p = job_sub.add_parser(
        "unlock", help=f"remove a job's lock (engineer password; ${ENV_PASSWORD} or prompt)"
    )
    p.add_argument("job", type=Path, metavar="JOB")
    p.set_defaults(func=cmd_unlock)

    p = job_sub.add_parser(
        "password",
        help=f"set or change the engineer password (${ENV_PASSWORD} = current,"
        f" ${ENV_NEW_PASSWORD} = new, else prompted)",
    )
    p.set_defaults(func=cmd_password)

    parser.set_defaults(func=None, _help=parser)


def login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name in a container or service
        return ""


def _password(env: str, prompt: str) -> str:
    """From ``$env`` when set (scripts, tests), else asked without echo."""
    value = os.environ.get(env)
    if value:
        return value
    try:
        return getpass.getpass(prompt)
    except EOFError:
        raise UsageError(f"no password given (set ${env} or run from a terminal)") from None


def require_engineer(consequence: str) -> None:
    """Ask for the station's engineer password; InputError (exit 2) when it is wrong."""
    store = RoleStore()
    if not store.has_password():
        raise InputError(
            "no engineer password is set on this station; set one with 'socketeer job password'"
        )
    if not store.verify(_password(ENV_PASSWORD, "engineer password: ")):
        raise InputError(f"wrong engineer password; {consequence}")


def cmd_new(args: argparse.Namespace) -> int:
    out: Path = args.output
    if out.exists() and not args.force:
        raise UsageError(f"{out} exists; use --force to replace it")
    if args.count is not None and args.count < 1:
        raise UsageError("--count must be at least 1")
    if (args.checksum_fill or args.checksum_range) and not args.checksum:
        raise UsageError("--checksum-fill/--checksum-range need --checksum ALGO")
    device = load_database().get(args.device)
    referenced = reference_image(args.image, out, args.in_format, parse_number(args.base, "--base"))
    if referenced.image.is_empty:
        raise InputError(f"{args.image}: the image holds no data")
    if referenced.image.warnings and not args.allow_incomplete:
        raise InputError(
            f"{referenced.image.warnings[0]}; add --allow-incomplete to make a job of it anyway"
        )
    expected = None
    if args.checksum:
        fill = parse_byte(args.checksum_fill, "--checksum-fill") if args.checksum_fill else None
        span = parse_range(args.checksum_range, "--checksum-range") if args.checksum_range else None
        if span is not None and fill is None:
            fill = 0xFF
        expected = ExpectedChecksum(args.checksum, "", fill, span)
        expected = replace(expected, value=checksum(referenced.image, expected.spec()))
    operations = {
        **DEFAULT_OPERATIONS,
        "erase": not args.no_erase,
        "blank_check": args.blank_check,
        "verify": not args.no_verify,
        "protect": args.protect,
        "unprotect": args.unprotect,
        "skip_matching": args.skip_matching,
    }
    job = Job(
        name=args.name or out.stem,
        device_id=device.id,
        image=referenced.ref,
        operations=operations,
        erase_mode="none" if args.no_erase else "full" if args.full_erase else "auto",
        programmer=args.programmer,
        checksum=expected,
        count_limit=args.count,
        notes=args.notes,
        created_by=args.by or login_name(),
    )
    check_job_for_device(job, referenced.image, device)
    save_job(job, out)
    summary = f"wrote {out}: job '{job.name}' for {device.id}, image {job.image.path}"
    if expected is not None:
        summary += f", expected {expected.algo} {expected.value}"
    print(summary)
    return 0


def _hex(value: int | None) -> str:
    return "none" if value is None else f"0x{value:X}"


def _checksum_text(expected: ExpectedChecksum) -> str:
    if expected.fill is None and expected.range is None:
        scope = "data only"
    else:
        where = (
            "image span"
            if expected.range is None
            else "[{}, {})".format(*map(_hex, expected.range))
        )
        scope = f"{where} filled with {_hex(expected.fill)}"
    if expected.exclude_serial:
        scope += ", serial area excluded"
    return f"{expected.algo} {expected.value} ({scope})"


def describe(loaded: LoadedJob) -> list[str]:
    """The lines `job show` prints."""
    job, image = loaded.job, loaded.image
    ref = job.image
    where = "; embedded in the package" if loaded.packaged else ""
    if loaded.image_path is not None and str(loaded.image_path) != ref.path:
        where = f"; {loaded.image_path}"
    base = f", base {_hex(ref.base)}" if ref.format == "bin" else ""
    ops = ["identify"]
    if job.operations["unprotect"]:
        ops.append("unprotect")
    if job.erase != "none":
        ops.append(f"erase ({job.erase})")
    if job.operations["blank_check"]:
        ops.append("blank check")
    ops.append("program (skip matching)" if job.operations["skip_matching"] else "program")
    for key in ("verify", "protect"):
        if job.operations[key]:
            ops.append(key)
    lines = [
        f"job:           {job.name}  ({loaded.path}{', package' if loaded.packaged else ''})",
        f"device:        {job.device_id}",
        f"image:         {ref.path} ({ref.format}{base}{where})",
        f"image sha256:  {ref.sha256}",
        f"image data:    {image.data_bytes} bytes in {len(image.segments)} segment(s)",
        f"operations:    {', '.join(ops)}",
        f"programmer:    {job.programmer}",
        f"checksum:      {_checksum_text(job.checksum) if job.checksum else 'none'}",
        f"count limit:   {job.count_limit if job.count_limit is not None else 'none'}",
        f"serialization: {'configured' if job.serialization else 'none'}",
        f"created:       {job.created_at} by {job.created_by or 'unknown'}",
    ]
    if job.notes:
        lines.append(f"notes:         {job.notes}")
    lock = job.lock
    if lock is None:
        lines.append("lock:          not locked (engineers only; operators cannot open it)")
    else:
        fa = lock.first_article
        facts = [f"{fa.checksum_algo} {fa.checksum}"]
        facts += [f"{k} {v}" for k, v in (("site", fa.site), ("chip id", fa.chip_id)) if v]
        if fa.unique_id:
            facts.append(f"unique id {fa.unique_id}")
        lines += [
            f"lock:          locked by {lock.approved_by} at {lock.approved_at}",
            f"seal:          {lock.seal} (checked)",
            f"first article: {', '.join(facts)} at {fa.at}",
        ]
    return lines


def cmd_show(args: argparse.Namespace) -> int:
    loaded = load_job(args.job)
    if args.json:
        doc = {
            "file": str(loaded.path),
            "package": loaded.packaged,
            "image_file": None if loaded.image_path is None else str(loaded.image_path),
            "locked": loaded.job.locked,
            "job": loaded.job.to_dict(),
        }
        print(json.dumps(doc, indent=2, ensure_ascii=False))
        return 0
    print("\n".join(describe(loaded)))
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    loaded = load_job(args.job)
    job = loaded.job
    device = load_database().get(job.device_id)
    try:
        check_job_for_device(job, loaded.image, device)
    except InputError as err:
        raise InputError(f"{args.job}: {err}") from None
    image = "embedded image" if loaded.packaged else f"image {job.image.path}"
    if job.lock is None:
        print(f"ok: {args.job}: {image} matches (SHA-256 {job.image.sha256}); not locked")
    else:
        print(
            f"ok: {args.job}: locked by {job.lock.approved_by} at {job.lock.approved_at};"
            f" {len(job.lock.field_digests)} fields, {image} and the seal match"
        )
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    if args.output.exists() and args.output.resolve() == args.job.resolve():
        raise UsageError(f"{args.output}: the package would replace the job itself")
    loaded = load_job(args.job)
    export_job(loaded, args.output)
    state = "locked" if loaded.job.locked else "unlocked"
    print(
        f"wrote {args.output}: {state} job '{loaded.job.name}' with image"
        f" {loaded.job.image.path} ({len(loaded.image_bytes)} bytes) embedded"
    )
    return 0


def cmd_unlock(args: argparse.Namespace) -> int:
    problem: JobIntegrityError | None = None
    try:
        loaded = load_job(args.job)
    except JobIntegrityError as err:
        # An engineer may drop the lock of an edited job (to re-check and re-lock it) and
        # is told what had changed; the image must still be the job's own.
        loaded = load_job(args.job, check_lock=False)
        problem = err
    if not loaded.job.locked:
        print(f"{args.job} is not locked")
        return 0
    require_engineer("the job stays locked")
    if problem is not None:
        print(f"socketeer: warning: {problem}; removing the lock anyway", file=sys.stderr)
    lock = loaded.job.lock
    assert lock is not None
    unlocked = replace(loaded, job=unlock_job(loaded.job))
    if loaded.packaged:
        export_job(unlocked, args.job)
    else:
        save_job(unlocked.job, args.job)
    print(f"unlocked {args.job} (was locked by {lock.approved_by} at {lock.approved_at})")
    return 0


def cmd_password(args: argparse.Namespace) -> int:
    store = RoleStore()
    old = _password(ENV_PASSWORD, "current engineer password: ") if store.has_password() else None
    new = os.environ.get(ENV_NEW_PASSWORD)
    if not new:
        new = _password(ENV_NEW_PASSWORD, "new engineer password: ")
        if _password(ENV_NEW_PASSWORD, "repeat the new password: ") != new:
            raise UsageError("the two new passwords differ; nothing changed")
    store.set_password(new, old)
    print(f"engineer password {'changed' if old is not None else 'set'} ({store.path})")
    return 0
