"""`socketeer gui`: open the workstation window (Qt is imported only here)."""

from __future__ import annotations

import argparse

from app.commands import help_for


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("gui", help=help_for("gui"))
    p.add_argument("--programmer", metavar="URL", help="programmer URL (default sim://?sites=4)")
    p.add_argument("--device", metavar="ID", help="device id to start with")
    p.add_argument("--image", metavar="FILE", help="image file to load")
    p.add_argument(
        "--demo",
        action="store_true",
        help="run a short simulated job on 8 sites with one injected fault",
    )
    p.add_argument(
        "--screenshot",
        metavar="PNG",
        help="save a screenshot of the window and exit (after the demo, with --demo)",
    )
    # For tests/bench/bench_window.py: print the wall-clock time of the window's first
    # paint (seconds since the epoch) and quit.
    p.add_argument("--report-first-paint", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_gui)


def cmd_gui(args: argparse.Namespace) -> int:
    from app.ui.app import run_gui

    return run_gui(
        args.programmer,
        args.device,
        args.image,
        demo=args.demo,
        screenshot=args.screenshot,
        report_first_paint=args.report_first_paint,
    )
