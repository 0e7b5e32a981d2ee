"""Where Socketeer's run-time data is, as installed: found through importlib.resources.

The repository keeps the data at its top level (device_db/, resources/, packaging/linux/);
the build installs those folders inside the package as ``app.device_db``,
``app.resources`` and ``app.linux`` (see pyproject.toml). An editable install maps the
same names onto the checkout, a wheel onto site-packages and a PyInstaller bundle onto
its own folder, so nothing here knows where the checkout is.
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path

from app.core.errors import SocketeerError

DEVICE_DB = "app.device_db"
RESOURCES = "app.resources"
LINUX = "app.linux"


class PackageDataMissing(SocketeerError):
    """The installation lacks a data folder (a broken or partial install)."""


@functools.cache
def data_dir(package: str) -> Path:
    """The folder of the installed data package ``package`` (one of the names above).

    Socketeer's code opens these files with ordinary paths (the device DB is walked and
    its file names shown in messages), so a package stored inside a zip archive is not
    supported; that is reported as a broken installation.
    """
    try:
        root = resources.files(package)
    except ModuleNotFoundError as err:
        raise PackageDataMissing(
            f"this installation of Socketeer has no {package} data: reinstall it"
            " (from a checkout: pip install -e .)"
        ) from err
    path = Path(str(root))
    if not path.is_dir():
        raise PackageDataMissing(
            f"{package} data is at {root}, which is not a folder: install Socketeer"
            " unpacked (pip installs wheels unpacked)"
        )
    return path


def device_db_dir() -> Path:
    return data_dir(DEVICE_DB)


def resources_dir() -> Path:
    return data_dir(RESOURCES)


def linux_dir() -> Path:
    return data_dir(LINUX)


#: Socketeer's udev rules, shipped in packaging/linux/ (app.linux)
UDEV_RULES = "99-socketeer.rules"


def udev_rules_file() -> Path:
    return linux_dir() / UDEV_RULES
