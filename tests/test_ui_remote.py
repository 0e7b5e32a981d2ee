"""The window under remote control: Station > Remote control (API) serves the API over the
window's own controllers; a real HTTP client (off the GUI thread) opens a locked job by
barcode, starts the sites, reads the results, and the window shows the run."""

from __future__ import annotations

import shutil
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_job_run import approve, make_job  # tests/ is on sys.path

from app.ui.main_window import MainWindow

OPERATOR, ENGINEER = "operator-token-0123456789", "engineer-token-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def window(open_window, monkeypatch) -> MainWindow:
    monkeypatch.setenv("SOCKETEER_API_OPERATOR_TOKEN", OPERATOR)
    monkeypatch.setenv("SOCKETEER_API_ENGINEER_TOKEN", ENGINEER)
    monkeypatch.setenv("SOCKETEER_API_PORT", str(free_port()))
    win = open_window("winbond.w25x10cl", "sim://?sites=8", bytes(range(256)) * 16)
    yield win
    win.actions_by_name["remote_control"].setChecked(False)


def off_gui(qtbot, call: Callable[[], Any]) -> Any:
    """Run an HTTP request on another thread while the GUI thread keeps serving events
    (the window's answers come from its own thread)."""
    box: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: box.setdefault("value", call()))
    thread.start()
    qtbot.waitUntil(lambda: not thread.is_alive(), timeout=30000)
    return box["value"]


def test_a_client_runs_the_window_by_barcode(qtbot, window, tmp_path: Path, capsys) -> None:
    job_path = make_job(tmp_path, capsys, count=100_000)
    approve(job_path, "sim://?sites=1")
    folder = tmp_path / "jobs"
    folder.mkdir()
    shutil.copy(job_path, folder / "line-7.json")
    shutil.copy(tmp_path / "fw.hex", folder / "fw.hex")
    assert window.production.open_job(folder / "line-7.json")  # the jobs folder: its folder

    window.actions_by_name["remote_control"].setChecked(True)
    assert window.production_menus.remote is not None
    server, _ = window.production_menus.remote
    http = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {OPERATOR}"})

    assert off_gui(qtbot, lambda: http.get("/api/v1/station")).status_code == 200
    answer = off_gui(qtbot, lambda: http.post("/api/v1/job", json={"barcode": "line-7"}))
    assert answer.status_code == 200, answer.text
    assert answer.json()["job"]["good"] == 1  # the first article
    sites = [
        s["index"] for s in off_gui(qtbot, lambda: http.get("/api/v1/station")).json()["sites"]
    ]
    assert sites == window.controller.sites and sites  # the job's programmer's sites
    started = off_gui(qtbot, lambda: http.post("/api/v1/start", json={}))
    assert started.status_code == 202, started.text
    control = window.production_menus.remote[1]
    qtbot.waitUntil(lambda: len(control.results()) == len(sites), timeout=30000)
    qtbot.waitUntil(lambda: not window.controller.running, timeout=30000)
    results = off_gui(qtbot, lambda: http.get("/api/v1/results")).json()["results"]
    assert sorted(r["site"] for r in results) == sites
    assert all(r["result"]["status"] == "pass" for r in results)
    status = off_gui(qtbot, lambda: http.get("/api/v1/station")).json()
    assert status["job"]["good"] == 1 + len(sites) and not status["running"]
    assert {s["state"] for s in status["sites"]} == {"pass"}
    # what the operator sees: the window counted the same devices
    assert window.production.prepared.production.good == 1 + len(sites)
    refused = off_gui(qtbot, lambda: http.post("/api/v1/start", json={"sites": [99]}))
    assert refused.status_code == 409 and "no site(s) [99]" in refused.json()["error"]
    http.close()


def test_the_switch_says_why_it_cannot_start(qtbot, window, monkeypatch) -> None:
    monkeypatch.delenv("SOCKETEER_API_ENGINEER_TOKEN")
    errors: list[str] = []
    window.controller.error.connect(errors.append)
    action = window.actions_by_name["remote_control"]
    action.setChecked(True)
    assert not action.isChecked() and window.production_menus.remote is None
    assert any("engineer token must be at least 16 characters" in e for e in errors)


def test_a_scanned_barcode_opens_the_job_from_the_library(
    qtbot, window, tmp_path: Path, capsys, monkeypatch
) -> None:
    from PySide6.QtCore import Qt

    job_path = make_job(tmp_path, capsys, count=100_000)
    approve(job_path, "sim://?sites=1")
    library = tmp_path / "library"
    library.mkdir()
    shutil.copy(job_path, library / "pcb-4711.json")
    shutil.copy(tmp_path / "fw.hex", library / "fw.hex")
    monkeypatch.setenv("SOCKETEER_JOBS_DIR", str(library))
    errors: list[str] = []
    window.controller.error.connect(errors.append)
    scan = window.production_menus.scan
    qtbot.keyClicks(scan, "no-such-board")  # a scanner types, then sends Enter
    qtbot.keyClick(scan, Qt.Key.Key_Return)
    assert window.production.loaded is None
    assert any("no job named 'no-such-board'" in e for e in errors)
    assert scan.text() == ""  # cleared for the next scan
    qtbot.keyClicks(scan, "pcb-4711")
    qtbot.keyClick(scan, Qt.Key.Key_Return)
    assert window.production.job_path == library / "pcb-4711.json"
    assert window.production.loaded is not None and window.production.loaded.job.locked


def test_a_window_on_a_shared_database_publishes_its_sites_to_the_line(
    qtbot, window, tmp_path: Path, capsys, monkeypatch, pg_url: str
) -> None:
    from app.engine.production_log import ProductionLog

    monkeypatch.setenv("SOCKETEER_DB_URL", pg_url)
    monkeypatch.setenv("SOCKETEER_STATION", "bench-3")
    job_path = make_job(tmp_path, capsys, count=100_000)
    approve(job_path, "sim://?sites=1")
    assert window.production.open_job(job_path)
    window.production.start()
    qtbot.waitUntil(lambda: not window.controller.running, timeout=30000)
    sites = window.controller.sites
    with ProductionLog(pg_url) as log:
        qtbot.waitUntil(
            lambda: (
                [s["state"] for s in log.line_sites().get("bench-3", [])] == ["pass"] * len(sites)
            ),
            timeout=10000,
        )
