"""The window's icons: the application icon, toolbar actions and site-tile states.

Files are found only through the installed resources (``app.resources/icons``, see
app.core.package_data), so a wheel, an editable install and a bundle all find them. A
missing or broken file gives an empty icon and one logged warning, never an exception:
a window without a picture still programs chips.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

from PySide6.QtCore import QSize
from PySide6.QtGui import QIcon

from app.core.package_data import PackageDataMissing, resources_dir

log = logging.getLogger(__name__)

#: pixel sizes of the rendered application icon (resources/icons/app/socketeer-N.png)
APP_ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
_warned: set[str] = set()


def _icon_file(relative: str) -> Path | None:
    """``icons/<relative>`` in the installed resources, or None (warned about once)."""
    try:
        path = resources_dir() / "icons" / relative
    except PackageDataMissing as err:
        _warn_once(relative, f"icon {relative} not available: {err}")
        return None
    if not path.is_file():
        _warn_once(relative, f"icon {relative} is missing from this installation ({path})")
        return None
    return path


def _warn_once(key: str, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        log.warning("%s", message)


@functools.cache
def app_icon() -> QIcon:
    """Socketeer's icon, one rendered PNG per size in APP_ICON_SIZES.

    PNGs, not the SVG: Qt's SVG icon engine reports no available sizes, and the X11 and
    Wayland window icons are built from exactly those (without them Qt sends only 16 to
    128 px). Sizes in between are smooth scale-downs of the next larger PNG.
    """
    icon = QIcon()
    for size in APP_ICON_SIZES:
        png = _icon_file(f"app/socketeer-{size}.png")
        if png is not None:
            icon.addFile(str(png), QSize(size, size))
    return icon


@functools.cache
def action_icon(name: str) -> QIcon:
    """The toolbar icon of action ``name`` (MainWindow.actions_by_name keys)."""
    return _svg_icon(f"actions/{name}.svg")


@functools.cache
def state_icon(state: str) -> QIcon:
    """The site-tile icon of ``state`` (site_grid.STATE_WORDS keys)."""
    return _svg_icon(f"states/{state}.svg")


def _svg_icon(relative: str) -> QIcon:
    path = _icon_file(relative)
    if path is None:
        return QIcon()
    icon = QIcon(str(path))
    if icon.isNull():
        _warn_once(relative, f"icon {relative} could not be loaded ({path})")
    return icon
