"""Start the window: `socketeer gui [--programmer URL] [--device ID] [--image FILE]`,
and the scripted demo used for README screenshots (`--demo --screenshot PNG`)."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication, QWidget

from app.core.formats import save_image
from app.core.image import MemoryImage
from app.devicedb import load_database
from app.ui.controller import Controller
from app.ui.icons import app_icon
from app.ui.main_window import MainWindow

DEMO_PROGRAMMER = "sim://?sites=8&fault=6:verify&timing=scale:0.05"
DEMO_DEVICE = "winbond.w25q32jv"
DEMO_ROUNDS = 3
DESKTOP_FILE_NAME = "io.github.socketeer.Socketeer"


def demo_image(directory: Path) -> Path:
    """A 192 KiB firmware-like image in two segments, written as Intel HEX."""
    rng = __import__("random").Random(2026)
    image = MemoryImage()
    image.add(0x0, bytes(rng.randrange(256) for _ in range(128 * 1024)), source="demo")
    image.add(0x40000, b"SOCKETEER DEMO CONFIG " * 2900, source="demo")
    path = directory / "demo-firmware.hex"
    save_image(image, path, "ihex")
    return path


class _FirstPaint(QObject):
    """Prints the wall-clock time of the window's first paint and quits (start-up
    benchmark: the benchmark knows when it started the process)."""

    def __init__(self, window: QWidget, app: QCoreApplication) -> None:
        super().__init__(window)
        self._app: QCoreApplication | None = app

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Paint and self._app is not None:
            print(f"first-paint {time.time():.6f}", flush=True)
            QTimer.singleShot(0, self._app.quit)
            self._app = None
        return False


def run_gui(
    programmer: str | None = None,
    device: str | None = None,
    image: str | None = None,
    *,
    demo: bool = False,
    screenshot: str | None = None,
    report_first_paint: bool = False,
) -> int:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Socketeer")
    # The .desktop file's name: Wayland's app id and the taskbar's grouping key.
    QApplication.setDesktopFileName(DESKTOP_FILE_NAME)
    QApplication.setWindowIcon(app_icon())
    database = load_database()
    controller = Controller(database)
    window = MainWindow(controller, remember_layout=not (demo or screenshot))
    tmp = tempfile.TemporaryDirectory() if demo else None
    if demo:
        programmer = programmer or DEMO_PROGRAMMER
        device = device or DEMO_DEVICE
        assert tmp is not None
        image = image or str(demo_image(Path(tmp.name)))
    if device:
        controller.set_device(device)
    controller.set_programmer(
        programmer or os.environ.get("SOCKETEER_PROGRAMMER", "sim://?sites=4")
    )
    if image:
        controller.load_image(image)
    if report_first_paint:
        window.installEventFilter(_FirstPaint(window, app))
    window.show()
    if (
        not (demo or screenshot or report_first_paint)
        and not window.production.session.store.has_password()
    ):
        # First start: the station gets its engineer password before anything else.
        QTimer.singleShot(0, window.production_menus.first_start)
    rounds = {"left": DEMO_ROUNDS if demo else 0}

    def next_round(running: bool) -> None:
        if running:
            return
        rounds["left"] -= 1
        if rounds["left"] > 0:
            QTimer.singleShot(300, controller.start)
        elif screenshot:
            QTimer.singleShot(400, take_screenshot)

    def take_screenshot() -> None:
        if screenshot:  # only scheduled with one
            window.grab().save(screenshot)
        window.close()
        app.quit()

    if demo:
        controller.runningChanged.connect(next_round)
        QTimer.singleShot(500, controller.start)
    elif screenshot:
        QTimer.singleShot(800, take_screenshot)
    code = app.exec()
    controller.shutdown()
    if tmp is not None:
        tmp.cleanup()
    return int(code)
