"""`socketeer backups list|restore`: what in-system parts held before Socketeer wrote to
them (app.engine.backups)."""

from __future__ import annotations

import argparse
import json

from app.commands import DEFAULT_PROGRAMMER, help_for
from app.commands.output import say
from app.core.errors import InputError


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("backups", help=help_for("backups"))
    bsub = parser.add_subparsers(dest="backups_command", metavar="ACTION")
    show = bsub.add_parser("list", help="the backups, newest first")
    show.add_argument("--json", action="store_true", help="print them as JSON")
    show.set_defaults(func=cmd_list)
    restore = bsub.add_parser("restore", help="program a backup back onto the part")
    restore.add_argument("name", help="the backup's name (or the start of it)")
    restore.add_argument("--programmer", default=DEFAULT_PROGRAMMER, metavar="URL")
    restore.add_argument("--site", type=int, default=1, help="site to restore (default 1)")
    restore.add_argument(
        "--other-part",
        action="store_true",
        help="restore onto a part whose unique ID differs from the backed-up one",
    )
    restore.set_defaults(func=cmd_restore)
    parser.set_defaults(func=None, _help=parser)


def cmd_list(args: argparse.Namespace) -> int:
    from app.engine.backups import backups_dir, list_backups

    backups, problems = list_backups()
    if args.json:
        doc = {"folder": str(backups_dir()), "backups": [b.to_json() for b in backups]}
        doc["problems"] = problems
        say(json.dumps(doc, indent=2))
    else:
        say(f"backups in {backups_dir()}: {len(backups)}")
        for b in backups:
            uid = f", unique ID {b.unique_id}" if b.unique_id else ""
            say(f"  {b.name}")
            say(f"      {b.vendor} {b.part}, {b.size_bytes:,} bytes, site {b.site}{uid}")
            say(f"      taken {b.created}, SHA-256 {b.sha256}")
        for line in problems:
            say(f"warning: {line}")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from app.core.image import MemoryImage
    from app.devicedb import load_database
    from app.engine.backups import find_backup
    from app.engine.cycle import CycleOptions, build_cycle_spec, part_names
    from app.engine.station import Station
    from app.engine.station_setup import open_station_programmer

    backup = find_backup(args.name)
    data = backup.data()  # refuses a file that no longer matches its record
    database = load_database()
    device = database.get(backup.device_id)
    image = MemoryImage.from_bytes(data, device.memory_base)
    programmer = open_station_programmer(args.programmer, device, database)
    station = Station(programmer, lambda _event: None, part_names(database))
    try:
        if args.site not in station.site_numbers:
            raise InputError(f"--site {args.site}: this programmer has {station.site_numbers}")
        if backup.unique_id and not args.other_part:
            probe = build_cycle_spec("identify", device, database)
            found = station.run(probe, [args.site]).results[0]
            if found.passed and found.unique_id and found.unique_id != backup.unique_id:
                raise InputError(
                    f"the part on site {args.site} has unique ID {found.unique_id}, the backup"
                    f" was taken from {backup.unique_id}; add --other-part to restore anyway"
                )
        options = CycleOptions(skip_matching=True, unprotect=True)
        spec = build_cycle_spec("program", device, database, image=image, options=options)
        result = station.run(spec, [args.site]).results[0]
    finally:
        programmer.close()
    say(f"site {args.site}: restore {backup.name}: {result.message}")
    return 0 if result.passed else 1
