"""How the window takes the site threads' events: a batch a frame, in order, with each
site's progress coalesced to its latest value; and a tile that shows state and
progress without style sheets."""

from __future__ import annotations

from PySide6.QtGui import QPalette

from app.engine.events import LogEvent, PhaseStarted, ProgressEvent
from app.ui.controller import Controller, SiteWorker
from app.ui.site_grid import STATE_COLOURS, SiteTile


def test_a_frame_handles_every_event_in_order_and_each_sites_latest_progress(
    qtbot, database
) -> None:
    controller = Controller(database)
    seen: list[tuple] = []
    controller.siteProgress.connect(lambda s, p, d, _t: seen.append(("progress", s, p, d)))
    controller.sitePhase.connect(lambda s, p: seen.append(("phase", s, p)))
    controller.log.connect(lambda s, _level, m: seen.append(("log", s, m)))
    worker = SiteWorker(object(), controller._inbox)  # type: ignore[arg-type]
    for event in (
        ProgressEvent(1, "erase", 10, 10),
        PhaseStarted(1, "program"),
        ProgressEvent(1, "program", 0, 10),
        ProgressEvent(2, "erase", 0, 10),
        LogEvent(2, "info", "site 2: erase..."),
        ProgressEvent(1, "program", 10, 10),
    ):
        worker.send(event)
    controller._drain()
    assert seen == [
        ("phase", 1, "program"),
        ("progress", 2, "erase", 0),
        ("log", 2, "site 2: erase..."),
        ("progress", 1, "program", 10),
    ]
    controller._drain()
    assert len(seen) == 4  # taken once


def test_a_tile_takes_its_state_colours_and_shows_progress_in_words(qtbot) -> None:
    tile = SiteTile(3)
    qtbot.addWidget(tile)
    tile.show()
    for state, (background, ink) in STATE_COLOURS.items():
        tile.set_state(state)
        assert tile.palette().color(QPalette.ColorRole.WindowText).name() == ink
        assert tile.state_label.palette().color(QPalette.ColorRole.WindowText).name() == ink
        middle = tile.grab().toImage().pixelColor(tile.width() // 2, tile.height() - 6)
        assert middle.name() == background, state
    tile.set_state("busy")
    tile.set_progress("program", 42, 100)
    assert tile.progress.value() == 420 and tile.progress.text() == "program 42%"
