"""The application, toolbar and site-state icons: present as installed, well formed, and
shown by the window (real widgets, offscreen)."""

from __future__ import annotations

import logging
import struct
from pathlib import Path

import pytest
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QImage, QPainter
from PySide6.QtSvg import QSvgRenderer
from PySide6.QtWidgets import QToolBar

from app.core.package_data import PackageDataMissing, resources_dir
from app.engine.results import DeviceResult
from app.ui import icons
from app.ui.controller import Controller
from app.ui.main_window import TOOLBAR, MainWindow
from app.ui.site_grid import ICON_OF, STATE_ICON_SIZE, STATE_WORDS, SiteTile

ICONS = resources_dir() / "icons"
ICO_SIZES = {16, 24, 32, 48, 64, 128, 256}
#: one icon file per tile state, except the states drawn with another's icon
STATE_ICONS = sorted({ICON_OF.get(state, state) for state in STATE_WORDS})


@pytest.fixture
def fresh_icons():
    """Forget cached icons and warnings before and after the test."""

    def clear() -> None:
        for cached in (icons.app_icon, icons.action_icon, icons.state_icon):
            cached.cache_clear()
        icons._warned.clear()

    clear()
    yield
    clear()


@pytest.fixture
def window(qtbot, database):
    controller = Controller(database)
    win = MainWindow(controller, remember_layout=False)
    qtbot.addWidget(win)
    win.show()
    yield win
    controller.stop()
    controller.shutdown()


def _visible_pixels(image: QImage) -> int:
    return sum(
        1
        for y in range(0, image.height(), 2)
        for x in range(0, image.width(), 2)
        if image.pixelColor(x, y).alpha() > 0
    )


@pytest.mark.parametrize("size", icons.APP_ICON_SIZES)
def test_every_app_icon_size_is_a_png_of_that_size(qapp, size: int) -> None:
    path = ICONS / "app" / f"socketeer-{size}.png"
    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    image = QImage(str(path))
    assert (image.width(), image.height()) == (size, size)
    assert image.hasAlphaChannel()
    assert image.pixelColor(0, 0).alpha() == 0  # rounded corners: transparent
    assert image.pixelColor(size // 2, size // 2).alpha() == 255


def test_the_ico_holds_the_windows_sizes(qapp) -> None:
    data = (ICONS / "socketeer.ico").read_bytes()
    reserved, kind, count = struct.unpack_from("<HHH", data)
    assert (reserved, kind) == (0, 1) and count >= 4
    sizes = set()
    for i in range(count):
        width, height, _colours, _res, planes, bits, length, offset = struct.unpack_from(
            "<BBBBHHII", data, 6 + 16 * i
        )
        side = width or 256
        assert height == width and planes == 1 and bits == 32
        image = QImage.fromData(data[offset : offset + length])
        assert (image.width(), image.height()) == (side, side)
        sizes.add(side)
    assert sizes >= {16, 32, 48, 256}
    assert sizes == ICO_SIZES
    assert offset + length == len(data)


def test_every_svg_is_valid_and_draws_something(qapp) -> None:
    svgs = sorted(ICONS.rglob("*.svg"))
    assert len(svgs) >= 1 + len(TOOLBAR) + len(STATE_ICONS)
    for path in svgs:
        text = path.read_text(encoding="utf-8")
        assert "href" not in text and "<text" not in text, f"{path.name}: external or font"
        renderer = QSvgRenderer(str(path))
        assert renderer.isValid(), path
        box = renderer.viewBoxF()
        assert box.width() == box.height(), f"{path.name} is not square"
        image = QImage(48, 48, QImage.Format.Format_ARGB32_Premultiplied)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        renderer.render(painter)
        painter.end()
        assert _visible_pixels(image) > 40, f"{path.name} renders (almost) nothing"


def test_every_action_and_state_has_its_icon_file() -> None:
    for name in [name for name, _text, _key in TOOLBAR] + ["auto_start"]:
        assert (ICONS / "actions" / f"{name}.svg").is_file(), name
    for state in STATE_ICONS:
        assert (ICONS / "states" / f"{state}.svg").is_file(), state


def test_the_window_icon_has_every_size(window) -> None:
    icon = window.windowIcon()
    assert not icon.isNull()
    available = {(s.width(), s.height()) for s in icon.availableSizes()}
    assert available >= {(n, n) for n in icons.APP_ICON_SIZES}
    assert icon.pixmap(QSize(256, 256), 1.0).width() == 256


def test_every_toolbar_action_has_an_icon_and_keeps_its_text(window) -> None:
    bar = window.findChild(QToolBar, "main_toolbar")
    assert bar.toolButtonStyle() == Qt.ToolButtonStyle.ToolButtonTextBesideIcon
    actions = [
        a
        for a in bar.actions()
        if not a.isSeparator() and not bar.widgetForAction(a).inherits("QLineEdit")
    ]
    assert len(actions) == len(TOOLBAR) + 1  # and Auto-start (the barcode field is a widget)
    for action in actions:
        assert not action.icon().isNull(), action.text()
        assert action.text()
    assert window.actions_by_name["start"].shortcut().toString() == "F5"
    start = window.actions_by_name["start"].icon().pixmap(24).toImage()
    stop = window.actions_by_name["stop"].icon().pixmap(24).toImage()
    assert start != stop


def test_a_site_tile_shows_the_icon_of_its_state(qtbot) -> None:
    tile = SiteTile(1)
    qtbot.addWidget(tile)
    tile.show()
    seen = {}
    for state in ("idle", "pass", "fail", "busy", "empty", "aborted", "service"):
        tile.set_state(state)
        pixmap = tile.state_icon.pixmap()
        assert not pixmap.isNull(), state
        assert pixmap.deviceIndependentSize().toSize() == QSize(STATE_ICON_SIZE, STATE_ICON_SIZE)
        assert tile.state_label.text() == STATE_WORDS[state]
        seen[state] = pixmap.toImage()
    assert len({img.cacheKey() for img in seen.values()}) == len(seen)
    assert seen["idle"] != seen["pass"] != seen["fail"] != seen["idle"]
    tile.show_result(DeviceResult(1, "program", "x", "pass", "PASS: programmed"), "programmed")
    assert tile.state_icon.pixmap().toImage() == seen["pass"]


def test_a_missing_icon_is_empty_and_warned_about_once(
    qapp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog, fresh_icons
) -> None:
    monkeypatch.setattr(icons, "resources_dir", lambda: tmp_path)
    with caplog.at_level(logging.WARNING, logger="app.ui.icons"):
        assert icons.action_icon("start").isNull()
        assert icons._svg_icon("actions/start.svg").isNull()  # uncached: still one warning
        assert icons.app_icon().isNull()
    start = [r for r in caplog.records if "actions/start.svg" in r.getMessage()]
    assert len(start) == 1


def test_the_window_opens_without_any_icons(
    qtbot, database, monkeypatch: pytest.MonkeyPatch, fresh_icons
) -> None:
    def missing() -> Path:
        raise PackageDataMissing("no app.resources here")

    monkeypatch.setattr(icons, "resources_dir", missing)
    controller = Controller(database)
    win = MainWindow(controller, remember_layout=False)
    qtbot.addWidget(win)
    try:
        win.show()
        assert win.windowIcon().isNull() or not win.windowIcon().availableSizes()
        assert win.actions_by_name["start"].icon().isNull()
        assert win.actions_by_name["start"].text() == "Start all"
    finally:
        controller.stop()
        controller.shutdown()
