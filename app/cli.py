"""Command-line front end: ``socketeer [SUBCOMMAND ...]``.

Only the module of the command given is imported (app.commands.COMMANDS says which):
``import app.cli`` and ``socketeer --help`` load no numpy, jsonschema, pyserial or Qt,
and only the ``gui`` subcommand loads app.ui.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from app import __version__
from app.commands import BY_NAME, COMMANDS
from app.commands.output import drop_stdout
from app.core.errors import SocketeerError


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose usage errors exit 2 with one line naming the problem."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


class _VersionAction(argparse.Action):
    """``--version``: the version is looked up only when asked for."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help="show the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *_args: object) -> None:
        print(f"{parser.prog} {__version__}")  # on stdout, as argparse's own does
        parser.exit(0)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser, complete for ``command`` (its module's parsers); every other command
    is listed with its help line only."""
    parser = _Parser(
        prog="socketeer",
        description="Socketeer device-programming workstation."
        " Without a subcommand, opens the GUI.",
    )
    parser.add_argument("--version", action=_VersionAction)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    if command in BY_NAME:
        module = importlib.import_module(f"app.commands.{BY_NAME[command].module}")
        module.register(sub)
    for entry in COMMANDS:
        if entry.name not in sub.choices:
            sub.add_parser(entry.name, help=entry.help)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if not args_list:
        args_list = ["gui"]
    parser = build_parser(args_list[0])
    try:
        args = parser.parse_args(args_list)
    except SystemExit as exit_:  # --help (0) or a usage error (2), already printed
        return int(exit_.code or 0)
    if getattr(args, "func", None) is None:
        getattr(args, "_help", parser).print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args))
    except SocketeerError as err:
        print(f"socketeer: error: {err}", file=sys.stderr)
        return err.exit_code
    except BrokenPipeError:  # e.g. `socketeer devices search | head`
        drop_stdout()
        return 0
    except KeyboardInterrupt:
        print("socketeer: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
