"""`socketeer install-desktop`: menu entry, icons, AppStream metainfo and (system-wide)
the udev rules, from this installation's own files (app.core.desktop_install)."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from app.commands import help_for
from app.core import desktop_install as desktop
from app.core.errors import UsageError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "install-desktop",
        help=help_for("install-desktop"),
        description="Install Socketeer's menu entry, icons and AppStream metainfo for the"
        " current user (the default) or, with --system, for every user together with the"
        " udev rules that give USB programmers to the user at the machine.",
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--user",
        action="store_true",
        help="for the current user, in $XDG_DATA_HOME or ~/.local/share (the default)",
    )
    where.add_argument(
        "--system", action="store_true", help="for every user, with the udev rules (needs root)"
    )
    p.add_argument(
        "--prefix",
        type=Path,
        metavar="DIR",
        help=f"with --system: install under DIR/share (default {desktop.DEFAULT_PREFIX})",
    )
    p.add_argument(
        "--udev-dir",
        type=Path,
        metavar="DIR",
        help=f"with --system: where the udev rules go (default {desktop.DEFAULT_UDEV_DIR})",
    )
    p.add_argument(
        "--dry-run", action="store_true", help="print what would be written, write nothing"
    )
    p.add_argument(
        "--uninstall", action="store_true", help="remove exactly the files this installs"
    )
    p.set_defaults(func=cmd_install_desktop)


def _sudo_command(args: argparse.Namespace) -> str:
    """The command line that repeats this one as root."""
    argv = [*desktop.launcher(), "install-desktop", "--system"]
    if args.prefix is not None:
        argv += ["--prefix", str(args.prefix)]
    if args.udev_dir is not None:
        argv += ["--udev-dir", str(args.udev_dir)]
    if args.uninstall:
        argv.append("--uninstall")
    return "sudo " + shlex.join(argv)


def cmd_install_desktop(args: argparse.Namespace) -> int:
    if not args.system and (args.prefix is not None or args.udev_dir is not None):
        raise UsageError("--prefix and --udev-dir go with --system (a user install has neither)")
    if args.system:
        share = (args.prefix or desktop.DEFAULT_PREFIX) / "share"
        plan = desktop.plan(
            system=True, share=share, udev_dir=args.udev_dir or desktop.DEFAULT_UDEV_DIR
        )
    else:
        plan = desktop.plan(system=False, share=desktop.user_data_home())
    if args.dry_run:
        return _dry_run(plan, args)
    try:
        if args.uninstall:
            removed = desktop.uninstall(plan)
        else:
            written = desktop.install(plan)
    except desktop.DesktopInstallError as err:
        if err.needs_root and args.system:
            raise desktop.DesktopInstallError(
                f"{err}; a system-wide install needs root: {_sudo_command(args)}"
            ) from None
        raise
    desktop.refresh_caches(plan)
    if args.uninstall:
        print(f"removed {len(removed)} file(s) of Socketeer's desktop integration")
        for path in removed:
            print(f"  {path}")
        return 0
    print(f"installed {len(written)} file(s): Socketeer is in the applications menu")
    for path in written:
        print(f"  {path}")
    if not args.system:
        _print_udev_hint()
    return 0


def _dry_run(plan: desktop.Plan, args: argparse.Namespace) -> int:
    if args.uninstall:
        for path in plan.destinations:
            if path.exists():
                print(f"would remove {path}")
        return 0
    for item in plan.files:
        print(f"would write {item.destination} (from {item.source})")
    print(f"the menu entry would run: Exec={plan.exec_value}")
    if not args.system:
        _print_udev_hint()
    return 0


def _print_udev_hint() -> None:
    from app.hal.ftdi_usb import udev_fix

    print(f"for USB programmers, install the udev rules (needs root): {udev_fix()}")
