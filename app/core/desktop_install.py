"""Linux desktop integration: the .desktop entry, AppStream metainfo, the icon theme
files and (system-wide) the udev rules, installed from the package's own data.

What goes where follows the freedesktop.org specifications: applications/ and metainfo/
under the data folder ($XDG_DATA_HOME, by default ~/.local/share, for one user; PREFIX/share
for everyone), icons under icons/hicolor/<N>x<N>/apps/ and icons/hicolor/scalable/apps/,
udev rules in /etc/udev/rules.d/. The installed .desktop entry starts this very
installation (a virtual environment need not be on PATH).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from app.core.errors import InputError
from app.core.fileio import os_error_reason, write_atomic
from app.core.package_data import linux_dir, resources_dir

APP_ID = "io.github.socketeer.Socketeer"
UDEV_RULES = "99-socketeer.rules"
ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
ROOT_HINT = " (a system-wide install needs root: sudo socketeer install-desktop --system)"
#: characters that make a desktop-entry Exec argument need quoting (spec: "Exec key")
_RESERVED = set(" \t\n\"'\\><~|&;$*?#()`")


@dataclass(frozen=True)
class InstallFile:
    destination: Path
    content: bytes
    mode: int = 0o644


def user_data_home() -> Path:
    """$XDG_DATA_HOME, else ~/.local/share."""
    env = os.environ.get("XDG_DATA_HOME")
    return Path(env) if env else Path.home() / ".local" / "share"


def launcher() -> list[str]:
    """The command that starts this installation of Socketeer."""
    if getattr(sys, "frozen", False):  # a PyInstaller bundle: the executable itself
        return [sys.executable]
    script = Path(sys.executable).parent / ("socketeer.exe" if os.name == "nt" else "socketeer")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "app"]


def exec_line(argv: list[str]) -> str:
    """``argv`` as a desktop entry's Exec value, quoted as its specification asks."""
    parts = []
    for arg in argv:
        if set(arg) & _RESERVED:
            escaped = "".join("\\" + ch if ch in '"`$\\' else ch for ch in arg)
            arg = f'"{escaped}"'
        parts.append(arg.replace("%", "%%"))
    return " ".join(parts)


def desktop_entry(argv: list[str]) -> bytes:
    """The shipped .desktop entry with Exec pointing at ``argv``."""
    text = (linux_dir() / f"{APP_ID}.desktop").read_text(encoding="utf-8")
    lines = [
        f"Exec={exec_line(argv)}" if line.startswith("Exec=") else line
        for line in text.splitlines()
    ]
    return ("\n".join(lines) + "\n").encode("utf-8")


def plan(
    *, system: bool, share: Path, udev_dir: Path, argv: list[str] | None = None
) -> list[InstallFile]:
    """Every file to install, with its content (nothing is written here)."""
    icons = resources_dir() / "icons"
    hicolor = share / "icons" / "hicolor"
    files = [
        InstallFile(
            share / "applications" / f"{APP_ID}.desktop", desktop_entry(argv or launcher())
        ),
        InstallFile(
            share / "metainfo" / f"{APP_ID}.metainfo.xml",
            (linux_dir() / f"{APP_ID}.metainfo.xml").read_bytes(),
        ),
        InstallFile(
            hicolor / "scalable" / "apps" / f"{APP_ID}.svg", (icons / "socketeer.svg").read_bytes()
        ),
    ]
    files += [
        InstallFile(
            hicolor / f"{n}x{n}" / "apps" / f"{APP_ID}.png",
            (icons / "app" / f"socketeer-{n}.png").read_bytes(),
        )
        for n in ICON_SIZES
    ]
    if system:
        files.append(InstallFile(udev_dir / UDEV_RULES, (linux_dir() / UDEV_RULES).read_bytes()))
    return files


def install(files: list[InstallFile], *, system: bool) -> None:
    """Write every file (atomically, folders created); an OS error names the place."""
    hint = ROOT_HINT if system else ""
    for item in files:
        try:
            item.destination.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise InputError(
                f"cannot create {item.destination.parent}: {os_error_reason(err)}{hint}"
            ) from None
        try:
            write_atomic(item.destination, item.content, mode=item.mode)
        except InputError as err:
            raise InputError(f"{err}{hint}") from None


def uninstall(files: list[InstallFile], *, system: bool) -> list[Path]:
    """Remove exactly the files :func:`install` writes; returns those that existed."""
    removed = []
    for item in files:
        try:
            item.destination.unlink()
        except FileNotFoundError:
            continue
        except OSError as err:
            hint = ROOT_HINT if system else ""
            raise InputError(
                f"cannot remove {item.destination}: {os_error_reason(err)}{hint}"
            ) from None
        removed.append(item.destination)
    return removed


def refresh_caches(share: Path) -> None:
    """Tell the desktop about the new entry and icons (when the tools exist; their
    absence or failure changes nothing that was installed)."""
    commands = [
        ["update-desktop-database", str(share / "applications")],
        ["gtk-update-icon-cache", "--force", "--ignore-theme-index", str(share / "icons/hicolor")],
    ]
    for command in commands:
        if shutil.which(command[0]) is not None:
            subprocess.run(command, capture_output=True, check=False, timeout=60)
