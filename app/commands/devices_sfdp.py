"""`socketeer devices from-sfdp|approve`: provisional profiles of parts the database
does not know, built from their SFDP tables (app.engine.sfdp_profile)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.core.errors import InputError, UsageError

if TYPE_CHECKING:
    from app.devicedb import Device, DeviceDatabase

#: app.commands.devices.describe: the `devices show` lines of a device
Describe = Callable[["Device", "DeviceDatabase"], list[str]]


def register(dsub: argparse._SubParsersAction, describe: Describe) -> None:
    """The actions under `devices`; ``describe`` is its `devices show` text (given, not
    imported: the `devices` module registers these)."""
    build = dsub.add_parser(
        "from-sfdp",
        help="build a provisional profile of an unknown SPI NOR part from its SFDP table",
    )
    build.add_argument(
        "--programmer", required=True, help="programmer URL, e.g. 'ftdi://ftdi:232h/1'"
    )
    build.add_argument("--site", type=int, default=1, help="site to read (default 1)")
    build.add_argument(
        "--voltage-mv",
        metavar="MIN-MAX",
        help="the part's supply range from its marking or datasheet, e.g. 1650-1950"
        " (default: 2700-3600, stated as assumed)",
    )
    build.add_argument(
        "--package", help="the part's package, a name from packages.json (default: assumed)"
    )
    build.add_argument(
        "--save", action="store_true", help="write it to the user overlay (unapproved)"
    )
    build.add_argument("--json", action="store_true", help="print the entry as JSON")
    build.set_defaults(func=cmd_from_sfdp, describe=describe)

    approve = dsub.add_parser(
        "approve",
        help="approve a provisional profile for writing (engineer password)",
    )
    approve.add_argument("id", help="the profile's device id, e.g. provisional.a11718")
    approve.add_argument("--by", required=True, help="the approving engineer's name")
    approve.set_defaults(func=cmd_approve)


def _voltage(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        low, high = (int(x) for x in text.split("-"))
    except ValueError:
        raise UsageError(f"--voltage-mv {text!r}: expected MIN-MAX in millivolts") from None
    if not 1000 <= low <= high <= 6000:
        raise UsageError(f"--voltage-mv {text!r}: expected 1000 <= MIN <= MAX <= 6000 mV")
    return low, high


def cmd_from_sfdp(args: argparse.Namespace) -> int:
    from app.algorithms.sfdp import SfdpError, read_sfdp
    from app.algorithms.spi_nor import identify_jedec
    from app.devicedb import load_database
    from app.devicedb.files import overlay_db_path
    from app.devicedb.models import Device
    from app.engine.sfdp_profile import build_profile
    from app.engine.station_setup import open_station_programmer

    voltage = _voltage(args.voltage_mv)
    database = load_database()
    if args.package is not None and args.package not in database.packages:
        raise UsageError(f"--package {args.package!r}: not in the package table")
    programmer = open_station_programmer(args.programmer, None, database)
    try:
        site = next((s for s in programmer.sites if s.index == args.site), None)
        if site is None or site.spi is None:
            raise UsageError(f"--site {args.site}: no SPI site of that number")
        site.power(True)
        try:
            ident = identify_jedec(site.spi)
            if not ident.present:
                raise InputError(f"site {args.site}: no part or bad contact (ID {ident.hex})")
            jedec = bytes.fromhex(ident.hex[:6])
            found = database.identify("jedec", ident.hex[:6])
            known_parts = [d for d in found.candidates if d.provisional is None]
            if len(known_parts) == 1:  # a provisional profile of it is built anew
                known = known_parts[0]
                raise InputError(
                    f"site {args.site}: ID {ident.hex[:6]} is {known.vendor} {known.part}"
                    f" ({known.id}) in the database; no provisional profile is needed"
                )
            try:
                info = read_sfdp(site.spi)
            except SfdpError as err:
                raise InputError(f"site {args.site}: ID {ident.hex[:6]}: {err}") from None
        finally:
            site.power(False)
    finally:
        programmer.close()
    if info is None:
        raise InputError(f"site {args.site}: ID {ident.hex[:6]} has no SFDP table")
    entry = build_profile(jedec, info, voltage_mv=voltage, package=args.package)
    if args.json:
        json.dump(entry, sys.stdout, indent=2)
        print()
    else:
        if found.ambiguous:
            names = ", ".join(d.id for d in found.candidates)
            print(f"ID {ident.hex[:6]} is ambiguous in the database ({names}); from its SFDP:")
        device = Device.from_raw(entry, "(not saved)")
        print("\n".join(args.describe(device, database)))
    if args.save:
        path = _save_checked(entry, overlay_db_path())
        print(
            f"saved to {path} (provisional, NOT approved: an engineer checks it and runs"
            f" 'socketeer devices approve {entry['id']} --by NAME')"
        )
    return 0


def _save_checked(entry: dict[str, Any], overlay: Path) -> Path:
    """Save, then load the database with it; put the old file back if it does not load."""
    from app.devicedb import load_database
    from app.engine.sfdp_profile import profile_file, save_profile

    path = profile_file(overlay)
    before = path.read_bytes() if path.exists() else None
    written = save_profile(entry, overlay)
    try:
        load_database(use_overlay=True, overlay=overlay)
    except Exception:
        if before is None:
            path.unlink(missing_ok=True)
        else:
            path.write_bytes(before)
        raise
    return written


def cmd_approve(args: argparse.Namespace) -> int:
    from app.commands.job import require_engineer
    from app.devicedb import load_database
    from app.devicedb.files import overlay_db_path
    from app.engine.sfdp_profile import approve_profile

    device = load_database().get(args.id)
    if device.provisional is None:
        raise InputError(f"{args.id} is not a provisional profile; there is nothing to approve")
    if device.provisional.approved:
        print(f"{args.id}: already approved by {device.provisional.approved_by}")
        return 0
    require_engineer("the profile stays unapproved")
    path = approve_profile(args.id, overlay_db_path(), args.by)
    print(f"{args.id}: approved by {args.by} ({path})")
    return 0
