"""`socketeer install-desktop`: menu entry, icons, AppStream metainfo and (system-wide)
the udev rules, from this installation's own files (app.core.desktop_install)."""

from __future__ import annotations

import argparse
from pathlib import Path

from app.commands import help_for
from app.core import desktop_install as desktop
from app.hal.ftdi_usb import udev_fix


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("install-desktop", help=help_for("install-desktop"))
    where = p.add_mutually_exclusive_group()
    where.add_argument("--user", action="store_true", help="for the current user (the default)")
    where.add_argument(
        "--system", action="store_true", help="for every user, with the udev rules (root)"
    )
    p.add_argument(
        "--prefix", type=Path, default=Path("/usr/local"), help="with --system (default /usr/local)"
    )
    p.add_argument(
        "--udev-dir",
        type=Path,
        default=Path("/etc/udev/rules.d"),
        help="with --system: where udev rules go (default /etc/udev/rules.d)",
    )
    p.add_argument("--dry-run", action="store_true", help="print what would be written")
    p.add_argument("--uninstall", action="store_true", help="remove what this installs")
    p.set_defaults(func=cmd_install_desktop)


def cmd_install_desktop(args: argparse.Namespace) -> int:
    share = args.prefix / "share" if args.system else desktop.user_data_home()
    files = desktop.plan(system=args.system, share=share, udev_dir=args.udev_dir)
    if args.dry_run:
        verb = "remove" if args.uninstall else "write"
        for item in files:
            print(f"would {verb} {item.destination}")
        return 0
    if args.uninstall:
        removed = desktop.uninstall(files, system=args.system)
        desktop.refresh_caches(share)
        print(f"removed {len(removed)} file(s)")
        return 0
    desktop.install(files, system=args.system)
    desktop.refresh_caches(share)
    print(f"installed {len(files)} file(s): Socketeer is in the applications menu")
    if not args.system:
        print(f"for USB programmers, install the udev rules (needs root): {udev_fix()}")
    return 0
