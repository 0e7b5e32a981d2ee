"""Linux desktop integration: the .desktop entry, AppStream metainfo, the icon theme
files and (system-wide) the udev rules, installed from the package's own data.

What goes where follows the freedesktop.org specifications: applications/ and metainfo/
under the data folder ($XDG_DATA_HOME, by default ~/.local/share, for one user; PREFIX/share
for everyone), icons under icons/hicolor/<N>x<N>/apps/ and icons/hicolor/scalable/apps/,
udev rules in /etc/udev/rules.d/. The installed .desktop entry starts this very
installation (a virtual environment need not be on PATH).

:func:`plan` decides every file and its content without writing anything; :func:`install`
writes them (each through a temp file and os.replace, after checking that every folder
can be written, so a refused install writes nothing) and :func:`uninstall` removes
exactly those files. Nothing here imports Qt.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from app.core.errors import InputError
from app.core.fileio import os_error_reason, write_atomic
from app.core.package_data import (
    UDEV_RULES,
    PackageDataMissing,
    linux_dir,
    resources_dir,
    udev_rules_file,
)

APP_ID = "io.github.socketeer.Socketeer"
ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
DEFAULT_PREFIX = Path("/usr/local")
DEFAULT_UDEV_DIR = Path("/etc/udev/rules.d")
#: the command the shipped entry's Exec starts with; replaced by this installation's
SHIPPED_COMMAND = "socketeer"
#: characters that make a desktop-entry Exec argument need quoting (spec: "The Exec key")
_RESERVED = frozenset(" \t\n\"'\\><~|&;$*?#()`")
#: characters escaped with a backslash inside a quoted Exec argument
_QUOTE_ESCAPED = frozenset('"`$\\')
#: the escapes of the desktop entry "string" type, applied after the quoting
_STRING_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}


class DesktopInstallError(InputError):
    """A file or folder of the desktop integration cannot be written or removed.

    ``needs_root`` says that the cause is a permission (running as root would help).
    """

    def __init__(self, message: str, *, needs_root: bool = False) -> None:
        super().__init__(message)
        self.needs_root = needs_root


@dataclass(frozen=True)
class InstallFile:
    source: Path  # the shipped file it comes from
    destination: Path
    content: bytes  # the source's bytes (the .desktop entry: with Exec rewritten)


@dataclass(frozen=True)
class Plan:
    files: tuple[InstallFile, ...]
    share: Path  # the XDG data folder the desktop files go into
    exec_value: str  # the installed entry's Exec value, as written in the file
    udev_dir: Path | None  # where the udev rules go (system-wide only)

    @property
    def destinations(self) -> list[Path]:
        return [item.destination for item in self.files]


def user_data_home() -> Path:
    """$XDG_DATA_HOME if set to an absolute path (the spec ignores a relative one), else
    ~/.local/share."""
    env = os.environ.get("XDG_DATA_HOME", "")
    return Path(env) if os.path.isabs(env) else Path.home() / ".local" / "share"


def launcher() -> list[str]:
    """The command that starts this installation of Socketeer: the bundle's executable,
    else the ``socketeer`` script of the running environment, else ``python -m app``."""
    if getattr(sys, "frozen", False):  # a PyInstaller bundle: the executable itself
        return [sys.executable]
    name = "socketeer.exe" if os.name == "nt" else "socketeer"
    folders = [Path(sys.executable).parent]  # a venv's bin/ (not resolved: keep the venv)
    for scheme in (sysconfig.get_default_scheme(), f"{os.name}_user"):  # pip's, pip --user's
        with contextlib.suppress(KeyError):
            folders.append(Path(sysconfig.get_path("scripts", scheme)))
    for folder in folders:
        script = folder / name
        if script.is_file() and os.access(script, os.X_OK):
            return [str(script)]
    return [sys.executable, "-m", "app"]


def quote_exec(argv: list[str]) -> str:
    """``argv`` as a command line of the Exec key (quoted as its specification asks,
    before the string escapes of :func:`escape_string`)."""
    parts = []
    for arg in argv:
        if not arg or set(arg) & _RESERVED:
            arg = '"' + "".join("\\" + ch if ch in _QUOTE_ESCAPED else ch for ch in arg) + '"'
        parts.append(arg.replace("%", "%%"))
    return " ".join(parts)


def escape_string(value: str) -> str:
    """``value`` with the escapes of the desktop entry "string" type (so a literal
    backslash in a quoted Exec argument is written as four)."""
    escaped = "".join(_STRING_ESCAPES.get(ch, ch) for ch in value)
    return "\\s" + escaped[1:] if escaped.startswith(" ") else escaped


def exec_value(argv: list[str]) -> str:
    """The Exec value, as written in the file, of a command line ``argv``."""
    return escape_string(quote_exec(argv))


def _shipped(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise PackageDataMissing(
            f"this installation of Socketeer lacks {path} ({os_error_reason(err)}):"
            " reinstall it (from a checkout: pip install -e .)"
        ) from None


def desktop_entry(shipped: str, argv: list[str]) -> str:
    """The shipped entry ``shipped`` with every Exec line starting ``argv`` (this
    installation) instead of the bare ``socketeer`` command, its arguments kept."""
    lines = []
    for line in shipped.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() == "Exec":
            command, space, rest = value.strip().partition(" ")
            if command != SHIPPED_COMMAND:
                raise PackageDataMissing(
                    f"the shipped {APP_ID}.desktop runs {command!r}, not {SHIPPED_COMMAND}:"
                    " reinstall Socketeer"
                )
            line = f"Exec={exec_value(argv)}{space}{rest}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def plan(
    *,
    system: bool,
    share: Path,
    udev_dir: Path = DEFAULT_UDEV_DIR,
    argv: list[str] | None = None,
) -> Plan:
    """Every file to install, with its content (nothing is written here).

    ``share`` is the data folder (``user_data_home()`` or PREFIX/share); with ``system``
    the udev rules go into ``udev_dir`` as well. ``argv`` is the command the menu entry
    runs (default: :func:`launcher`).
    """
    linux, icons = linux_dir(), resources_dir() / "icons"
    hicolor = share / "icons" / "hicolor"
    argv = list(argv or launcher())
    if "%" in argv[0] and "=" not in argv[0]:
        # GLib looks for Exec's program before it turns %% back into %, so it would
        # refuse the entry; env (which reads an argument with = as a variable) starts it
        argv = ["env", *argv]
    source = linux / f"{APP_ID}.desktop"
    shipped = _shipped(source).decode("utf-8", errors="replace")
    try:
        entry = desktop_entry(shipped, argv).encode("utf-8")
    except UnicodeError:  # a path that is not UTF-8 (a desktop entry must be)
        raise DesktopInstallError(
            f"cannot write a desktop entry that starts {argv[0]!r}: desktop entries are"
            " UTF-8 and this path is not"
        ) from None
    metainfo = linux / f"{APP_ID}.metainfo.xml"
    svg = icons / "socketeer.svg"
    files = [
        InstallFile(source, share / "applications" / f"{APP_ID}.desktop", entry),
        InstallFile(metainfo, share / "metainfo" / f"{APP_ID}.metainfo.xml", _shipped(metainfo)),
        InstallFile(svg, hicolor / "scalable" / "apps" / f"{APP_ID}.svg", _shipped(svg)),
    ]
    for n in ICON_SIZES:
        png = icons / "app" / f"socketeer-{n}.png"
        files.append(
            InstallFile(png, hicolor / f"{n}x{n}" / "apps" / f"{APP_ID}.png", _shipped(png))
        )
    if system:
        rules = udev_rules_file()
        files.append(InstallFile(rules, udev_dir / UDEV_RULES, _shipped(rules)))
    return Plan(tuple(files), share, exec_value(argv), udev_dir if system else None)


def _permission(err: OSError) -> bool:
    return err.errno in (errno.EACCES, errno.EPERM)


def _check_folder(folder: Path) -> None:
    """Raise unless ``folder`` exists and can be written, or can be created."""
    existing = folder
    while not existing.exists() and not existing.is_symlink() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        what = "a broken link" if existing.is_symlink() else "a file"
        raise DesktopInstallError(f"cannot create {folder}: {existing} is {what}, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        verb = "write in" if existing == folder else f"create {folder} in"
        raise DesktopInstallError(f"cannot {verb} {existing}: permission denied", needs_root=True)


def install(plan: Plan) -> list[Path]:
    """Write every file of ``plan`` (folders created as needed); returns their paths.

    Every folder is checked first, so a target that cannot be written is reported (with
    the folder's name) before anything is written.
    """
    for folder in dict.fromkeys(item.destination.parent for item in plan.files):
        _check_folder(folder)
    for item in plan.files:
        if item.destination.is_dir():
            raise DesktopInstallError(f"cannot write {item.destination}: it is a folder")
    for item in plan.files:
        try:
            item.destination.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise DesktopInstallError(
                f"cannot create {item.destination.parent}: {os_error_reason(err)}",
                needs_root=_permission(err),
            ) from None
        try:
            write_atomic(item.destination, item.content, mode=0o644)
        except InputError as err:
            raise DesktopInstallError(
                str(err), needs_root="permission denied" in str(err)
            ) from None
    return plan.destinations


def uninstall(plan: Plan) -> list[Path]:
    """Remove exactly the files :func:`install` writes (never a folder or another file);
    returns those that were there."""
    removed = []
    for path in plan.destinations:
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        except OSError as err:
            raise DesktopInstallError(
                f"cannot remove {path}: {os_error_reason(err)}", needs_root=_permission(err)
            ) from None
        removed.append(path)
    return removed


def _run_quietly(command: list[str]) -> str | None:
    """Run ``command`` if its program exists; its failure is ignored (the files are in
    place either way). Returns the command line run, or None."""
    if shutil.which(command[0]) is None:
        return None
    try:
        subprocess.run(command, capture_output=True, check=False, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    return " ".join(command)


def refresh_caches(plan: Plan) -> list[str]:
    """Bring the desktop's caches up to date after an install or uninstall, where the
    tools exist; returns the commands run (their absence or failure changes nothing that
    was installed).

    A cache is refreshed only where one is already in use, so that it does not hide the
    change: mimeinfo.cache in applications/ (the entry declares no MIME types, so a new
    cache would hold nothing of ours), icon-theme.cache in the hicolor theme, or that
    theme's index.theme (as xdg-icon-resource does). Without them, desktops read the
    folders themselves. Installed into /etc/udev/rules.d, the udev rules are reloaded.
    """
    ran = []
    applications = plan.share / "applications"
    if (applications / "mimeinfo.cache").is_file():
        ran.append(_run_quietly(["update-desktop-database", "-q", str(applications)]))
    hicolor = plan.share / "icons" / "hicolor"
    has_index = (hicolor / "index.theme").is_file()
    if has_index or (hicolor / "icon-theme.cache").is_file():
        options = ["-q", "-f"] + ([] if has_index else ["-t"])
        ran.append(_run_quietly(["gtk-update-icon-cache", *options, str(hicolor)]))
    if plan.udev_dir is not None and plan.udev_dir == DEFAULT_UDEV_DIR:  # the live rules
        ran.append(_run_quietly(["udevadm", "control", "--reload"]))
        trigger = ["udevadm", "trigger", "--action=change"]
        ran.append(_run_quietly([*trigger, "--subsystem-match=usb", "--subsystem-match=tty"]))
    return [command for command in ran if command is not None]
