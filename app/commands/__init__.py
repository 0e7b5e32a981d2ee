"""The subcommands of ``socketeer``.

Each module here registers its parsers with ``register(subparsers)`` and sets ``func``
to a callable taking the parsed namespace and returning an exit code. COMMANDS names
every top-level command, the module that implements it and its help line, so the CLI
imports only the module of the command given: the others pull in numpy, jsonschema,
pyserial or Qt, which a command that does not need them should not pay for.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

#: the programmer a command uses when none is given
DEFAULT_PROGRAMMER = os.environ.get("SOCKETEER_PROGRAMMER", "sim://")


@dataclass(frozen=True)
class Command:
    name: str
    module: str  # app.commands.<module>
    help: str


COMMANDS: tuple[Command, ...] = (
    Command("image", "image", "inspect, convert and checksum firmware images"),
    Command(
        "devices", "devices", "search, show, identify and validate parts in the device database"
    ),
    Command("detect", "programming", "read the part's ID on each site and name it"),
    Command("read", "programming", "read a part into a file"),
    Command("program", "programming", "erase, program and verify parts on all sites"),
    Command("verify", "programming", "compare parts with an image"),
    Command("erase", "programming", "erase whole parts"),
    Command("blank-check", "programming", "check that parts are erased"),
    Command("job", "job", "create, inspect, check, export and unlock job files"),
    Command("run", "run", "run a locked job on all sites (production)"),
    Command("backups", "backups", "list and restore what in-system parts held before writing"),
    Command("serials", "serials", "list or void serial numbers of a job"),
    Command("log", "log", "export and summarise the production log; list and reset socket wear"),
    Command("hw", "hw", "list programmers and diagnose USB/serial access"),
    Command("serve", "serve", "remote control of the station over HTTP (MES, handlers)"),
    Command("gui", "gui", "open the workstation window (the default)"),
    Command(
        "install-desktop", "desktop", "add Socketeer to the desktop's menu (Linux; --system: udev)"
    ),
)
BY_NAME = {command.name: command for command in COMMANDS}


def help_for(name: str) -> str:
    """The help line of top-level command ``name`` (its module's parser uses it too)."""
    return BY_NAME[name].help
