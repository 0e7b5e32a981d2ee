"""Where the device database lives, which files belong to it, and how they are read."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from app.core import strict_json
from app.core.package_data import device_db_dir

ENV_DEVICE_DB = "SOCKETEER_DEVICE_DB"
ENV_OVERLAY_DB = "SOCKETEER_OVERLAY_DB"
PACKAGES_FILE = "packages.json"
SCHEMA_DIR = "schema"


def installed_db_path() -> Path:
    """The installed database folder: $SOCKETEER_DEVICE_DB, else the one installed with
    the package (``app.device_db``)."""
    env = os.environ.get(ENV_DEVICE_DB)
    return Path(env) if env else device_db_dir()


def overlay_db_path() -> Path:
    """The user overlay folder: $SOCKETEER_OVERLAY_DB, else <user data dir>/device_db.

    platformdirs puts it at ~/.local/share/socketeer/device_db (Linux),
    ~/Library/Application Support/socketeer/device_db (macOS) and
    %LOCALAPPDATA%\\socketeer\\device_db (Windows).
    """
    env = os.environ.get(ENV_OVERLAY_DB)
    if env:
        return Path(env)
    return Path(platformdirs.user_data_dir("socketeer", appauthor=False)) / "device_db"


def schema_dir() -> Path:
    """The schemas that match this code (always the installed ones, whatever DB is
    loaded)."""
    return device_db_dir() / SCHEMA_DIR


def display_path(path: Path) -> str:
    """``path`` relative to the working directory when it is below it, else absolute."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except (ValueError, OSError):
        return str(path)


@dataclass
class Discovered:
    """The JSON files found under one or more roots."""

    device_files: list[Path] = field(default_factory=list)
    package_files: list[Path] = field(default_factory=list)
    missing: list[Path] = field(default_factory=list)


def discover(roots: list[Path]) -> Discovered:
    """Device files and package tables under ``roots`` (files or folders).

    In a folder, ``packages.json`` at its top is the package table, ``schema/`` is
    skipped, and every other ``*.json`` (any depth) is a device file. A file given
    directly is a package table when it is named packages.json.
    """
    found = Discovered()
    for root in roots:
        if root.is_file():
            target = found.package_files if root.name == PACKAGES_FILE else found.device_files
            target.append(root)
        elif root.is_dir():
            if (root / PACKAGES_FILE).is_file():
                found.package_files.append(root / PACKAGES_FILE)
            for path in sorted(root.rglob("*.json")):
                rel = path.relative_to(root).parts
                if rel == (PACKAGES_FILE,) or rel[0] == SCHEMA_DIR:
                    continue
                if any(part.startswith(".") for part in rel):
                    continue
                found.device_files.append(path)
        else:
            found.missing.append(root)
    return found


def read_json(path: Path, shown: str) -> tuple[Any, str | None]:
    """(document, None) or (None, error message naming the file and position)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        return None, f"{shown}: cannot read: {err.strerror or err}"
    except UnicodeDecodeError as err:
        return None, f"{shown}: not UTF-8 text (byte {err.start})"
    try:
        return strict_json.loads(text), None
    except strict_json.StrictJsonError as err:
        return None, err.where(shown)
