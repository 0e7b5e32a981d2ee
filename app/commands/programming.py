"""`socketeer detect|read|program|verify|erase|blank-check`: device cycles from the CLI.

Same engine as the GUI, no Qt. Exit codes: 0 every site passed, 1 a device failed,
2 bad input or usage, 3 programmer or connection error.
"""

from __future__ import annotations

import argparse
import json
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from app.commands import DEFAULT_PROGRAMMER, help_for
from app.commands.output import result_line, say
from app.core.errors import InputError, UsageError
from app.core.formats import FORMATS, format_from_extension, load_image, save_image
from app.core.image import MemoryImage
from app.core.numbers import parse_number, parse_range
from app.devicedb import load_database
from app.engine.cycle import CycleOptions, build_cycle_spec, part_names
from app.engine.events import CycleFinished, Event, LogEvent, PhaseStarted
from app.engine.station import Station
from app.engine.station_setup import open_station_programmer, programmable_device

if TYPE_CHECKING:
    from app.devicedb.database import DeviceDatabase
    from app.devicedb.models import Device


#: the program options' values where a command does not offer them (its flags win)
_NO_OPTIONS = {
    "no_erase": False,
    "full_erase": False,
    "no_verify": False,
    "blank_check": False,
    "unprotect": False,
    "protect": False,
    "skip_matching": False,
    "no_backup": False,
}


def register(sub: argparse._SubParsersAction) -> None:
    def common(p: argparse.ArgumentParser, *, device: bool = True) -> None:
        p.add_argument(
            "--programmer",
            default=DEFAULT_PROGRAMMER,
            metavar="URL",
            help="programmer URL, e.g. 'sim://?sites=8' (default: %(default)s)",
        )
        if device:
            p.add_argument(
                "--device",
                required=True,
                metavar="ID",
                help="device id from the database (socketeer devices search)",
            )
        p.add_argument("--json", action="store_true", help="print one JSON document")

    def sites(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--sites", default="all", metavar="all|1,2,...", help="which sites to run (default all)"
        )

    def no_backup(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--no-backup",
            action="store_true",
            help="do not back up in-system parts before writing (they are backed up by"
            " default: socketeer backups list)",
        )

    def image_in(p: argparse.ArgumentParser) -> None:
        p.add_argument("image", type=Path, help="image file")
        p.add_argument("--format", dest="in_format", choices=FORMATS)
        p.add_argument(
            "--base",
            default=None,
            help="load address of a raw binary (default: the device's first address)",
        )
        p.add_argument(
            "--allow-incomplete",
            action="store_true",
            help="use an image the reader warns about (e.g. an S-record file without its"
            " termination record, which may be truncated)",
        )

    p = sub.add_parser("detect", help=help_for("detect"))
    common(p, device=False)
    p.add_argument("--site", type=int, help="only this site")
    p.set_defaults(func=cmd_detect)

    p = sub.add_parser("read", help=help_for("read"))
    common(p)
    p.add_argument("--site", type=int, default=1, help="site to read (default 1)")
    p.add_argument("--range", help="START:END to read (default the whole part)")
    p.add_argument(
        "--to",
        dest="out_format",
        choices=FORMATS,
        help="output format (default: from OUT's extension, else bin)",
    )
    p.add_argument("output", type=Path)
    twice = p.add_mutually_exclusive_group()
    twice.add_argument(
        "--verified",
        action="store_true",
        default=None,
        help="read twice and keep the data only when both reads agree (the default on"
        " in-system sites)",
    )
    twice.add_argument(
        "--single-read",
        dest="verified",
        action="store_false",
        help="read once, also on in-system sites",
    )
    p.set_defaults(func=cmd_read)

    p = sub.add_parser("program", help=help_for("program"))
    common(p)
    sites(p)
    image_in(p)
    erase = p.add_mutually_exclusive_group()
    erase.add_argument("--no-erase", action="store_true", help="do not erase first")
    erase.add_argument("--full-erase", action="store_true", help="erase the whole chip first")
    p.add_argument("--no-verify", action="store_true", help="skip the verify step")
    p.add_argument("--blank-check", action="store_true", help="blank check before programming")
    p.add_argument("--unprotect", action="store_true", help="clear block protection first")
    p.add_argument("--protect", action="store_true", help="set block protection afterwards")
    p.add_argument(
        "--skip-matching",
        action="store_true",
        help="read first; leave blocks that already hold the image untouched",
    )
    no_backup(p)
    p.set_defaults(func=cmd_cycle, action="program", **_NO_OPTIONS)

    p = sub.add_parser("verify", help=help_for("verify"))
    common(p)
    sites(p)
    image_in(p)
    p.set_defaults(func=cmd_cycle, action="verify", **_NO_OPTIONS)

    p = sub.add_parser("erase", help=help_for("erase"))
    common(p)
    sites(p)
    p.add_argument("--unprotect", action="store_true", help="clear block protection first")
    no_backup(p)
    p.set_defaults(func=cmd_cycle, action="erase", **_NO_OPTIONS)

    p = sub.add_parser("blank-check", help=help_for("blank-check"))
    common(p)
    sites(p)
    p.set_defaults(func=cmd_cycle, action="blank-check", **_NO_OPTIONS)


class _LivePrinter:
    """One line per site whenever its phase changes (stdout, unless --json)."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        if self.quiet:
            return
        with self.lock:
            if isinstance(event, PhaseStarted) and event.phase not in ("socket", "power"):
                say(f"site {event.site}: {event.phase}...")
            elif isinstance(event, CycleFinished):
                say(f"site {event.site}: {result_line(event.result)}")
            elif isinstance(event, LogEvent) and event.level == "warning":
                say(f"site {event.site}: warning: {event.message}")


def _site_list(text: str, available: list[int]) -> list[int]:
    if text == "all":
        return available
    try:
        chosen = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UsageError(f"--sites {text!r}: expected 'all' or a list like 1,2,5") from None
    missing = sorted(set(chosen) - set(available))
    if missing or not chosen:
        raise UsageError(f"--sites {text!r}: this programmer has sites {available}")
    return chosen


def _load_for_device(args: argparse.Namespace, device: Device) -> MemoryImage:
    lo, hi = device.address_range
    base = lo if args.base is None else parse_number(args.base, "--base")
    loaded = load_image(args.image, args.in_format, base)
    image = loaded.image
    if image.is_empty:
        raise InputError(f"{args.image}: the image holds no data")
    if image.warnings and not args.allow_incomplete:
        raise InputError(f"{image.warnings[0]}; add --allow-incomplete to use it anyway")
    image.check_within(lo, hi, f"{device.part} ({device.size_bytes} bytes at 0x{lo:X})")
    return image


def _station(args: argparse.Namespace, device: Device | None, database: DeviceDatabase) -> Station:
    programmer = open_station_programmer(args.programmer, device, database)
    return Station(programmer, _LivePrinter(args.json), part_names(database))


def cmd_cycle(args: argparse.Namespace) -> int:
    database = load_database()
    device = programmable_device(database, args.device)
    image = _load_for_device(args, device) if args.action in ("program", "verify") else None
    options = CycleOptions(
        erase_mode="none" if args.no_erase else "full" if args.full_erase else "auto",
        blank_check=args.blank_check,
        verify=not args.no_verify,
        unprotect=args.unprotect,
        protect=args.protect,
        skip_matching=args.skip_matching,
        backup=not args.no_backup,
    )
    spec = build_cycle_spec(args.action, device, database, image=image, options=options)
    station = _station(args, device, database)
    try:
        chosen = _site_list(args.sites, station.site_numbers)
        outcome = station.run(spec, chosen)
    finally:
        station.programmer.close()
    if args.json:
        say(
            json.dumps(
                {
                    "action": args.action,
                    "device": device.id,
                    "programmer": args.programmer,
                    "passed": outcome.passed,
                    "failed": outcome.failed,
                    "sites": [r.to_json() for r in outcome.results],
                },
                indent=2,
            )
        )
    else:
        say(
            f"{args.action}: {outcome.passed} passed, {outcome.failed} failed"
            f" ({device.vendor} {device.part})"
        )
    return outcome.exit_code


def cmd_read(args: argparse.Namespace) -> int:
    database = load_database()
    device = programmable_device(database, args.device)
    fmt = args.out_format or format_from_extension(args.output) or "bin"
    lo, hi = device.address_range
    # no --range: the whole memory as the part reports it (a DataFlash's page mode)
    read_range = parse_range(args.range, "--range") if args.range else None
    if read_range is not None and (read_range[0] < lo or read_range[1] > hi):
        raise UsageError(f"--range must lie within the part's [0x{lo:X}, 0x{hi:X})")
    spec = build_cycle_spec(
        "read", device, database, read_range=read_range, verified_read=args.verified
    )
    station = _station(args, device, database)
    try:
        _site_list(str(args.site), station.site_numbers)
        outcome = station.run(spec, [args.site])
    finally:
        station.programmer.close()
    result = outcome.results[0]
    if result.passed and result.data is not None:
        start = read_range[0] if read_range else lo
        save_image(MemoryImage.from_bytes(result.data, start), args.output, fmt)
    if args.json:
        doc = result.to_json()
        doc["output"] = str(args.output) if result.passed else None
        say(json.dumps(doc, indent=2))
    elif result.passed:
        say(f"wrote {args.output} ({fmt}, {len(result.data or b'')} bytes)")
    return outcome.exit_code


def cmd_detect(args: argparse.Namespace) -> int:
    database = load_database()
    from app.engine.detect import detect_site  # the detect command's alone

    programmer = open_station_programmer(args.programmer, None, database)
    try:
        reports = [
            detect_site(site, database)
            for site in programmer.sites
            if args.site is None or site.index == args.site
        ]
    finally:
        programmer.close()
    if args.site is not None and not reports:
        raise UsageError(f"--site {args.site}: no such site")
    if args.json:
        doc = {"programmer": args.programmer, "sites": [r.to_json() for r in reports]}
        say(json.dumps(doc, indent=2))
    else:
        for rep in reports:
            say(f"site {rep.site}: {rep.summary}")
    if any(r.link_lost for r in reports):
        return 3
    return 0 if all(r.present for r in reports) else 1
