"""The remote-control API with a real HTTP client (httpx) against a real server (uvicorn
on 127.0.0.1): every endpoint, tokens, bad requests, live events, and clients polling
while 16 simulated sites run a locked job."""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from test_job_run import approve, make_job  # tests/ is on sys.path

from app.api.server import MAX_BODY, Tokens, build_app
from app.cli import main
from app.devicedb import load_database
from app.engine.station_service import StationService

OPERATOR, ENGINEER = "operator-token-0123456789", "engineer-token-0123456789"
SIXTEEN = "sim://?sites=16&handler=0.01&fault=5:verify@0x40"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def jobs(tmp_path: Path, capsys) -> Path:
    """A jobs folder holding one locked, serialized job (job.json) and an unlocked copy."""
    job_path = make_job(tmp_path, capsys, count=100_000)
    unlocked = tmp_path / "jobs" / "trial.json"
    unlocked.parent.mkdir()
    shutil.copy(job_path, unlocked)
    approve(job_path)
    shutil.copy(job_path, tmp_path / "jobs" / "job.json")
    shutil.copy(tmp_path / "fw.hex", tmp_path / "jobs" / "fw.hex")
    return tmp_path / "jobs"


@pytest.fixture
def server(jobs: Path) -> Iterator[tuple[str, StationService]]:
    service = StationService(load_database(), programmer_url=SIXTEEN, jobs_dir=jobs)
    app = build_app(service, Tokens(OPERATOR, ENGINEER))
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not uv.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert uv.started
    yield f"http://127.0.0.1:{port}", service
    service.close()
    uv.should_exit = True
    thread.join(10)


def client(base: str, token: str | None = OPERATOR) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=base, headers=headers, timeout=30)


def wait_idle(http: httpx.Client, timeout_s: float = 60) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = http.get("/api/v1/station").json()
        if not status["running"]:
            return status
        time.sleep(0.05)
    raise AssertionError("the run did not end")


def test_tokens_are_required_and_roles_are_kept(server) -> None:
    base, _ = server
    with client(base, None) as anon, client(base, "not-a-token") as wrong:
        for http in (anon, wrong):
            answer = http.get("/api/v1/station")
            assert answer.status_code == 401 and "bearer token" in answer.json()["error"]
    with client(base) as operator:
        answer = operator.post("/api/v1/job", json={"path": "trial.json", "allow_unlocked": True})
        assert answer.status_code == 403 and "engineer" in answer.json()["error"]
        answer = operator.post("/api/v1/job", json={"path": "trial.json"})
        assert answer.status_code == 409 and "not locked" in answer.json()["error"]
    with client(base, ENGINEER) as engineer:
        answer = engineer.post("/api/v1/job", json={"path": "trial.json", "allow_unlocked": True})
        assert answer.status_code == 200 and answer.json()["job"]["path"].endswith("trial.json")


def test_bad_requests_get_json_errors_and_change_nothing(server) -> None:
    base, service = server
    with client(base) as http:
        answer = http.post("/api/v1/job", content=b"{not json", headers={"content-type": "x"})
        assert answer.status_code == 400 and "not JSON" in answer.json()["error"]
        answer = http.post("/api/v1/job", json=[1, 2])
        assert answer.status_code == 400 and "JSON object" in answer.json()["error"]
        answer = http.post("/api/v1/job", content=b"{" + b" " * MAX_BODY + b"}")
        assert answer.status_code == 413
        answer = http.post("/api/v1/start", json={"sites": ["one"]})
        assert answer.status_code == 400
        answer = http.post("/api/v1/start", json={})
        assert answer.status_code == 409 and "no job is open" in answer.json()["error"]
        answer = http.post("/api/v1/job", json={"barcode": "nothing-like-it"})
        assert answer.status_code == 409 and "no job named" in answer.json()["error"]
        assert http.get("/api/v1/log?limit=zero").status_code == 400
        assert http.get("/api/v1/log?since=yesterday").status_code == 400
        assert http.get("/api/v1/nothing").status_code == 404
        assert http.get("/api/v1/start").status_code == 405
    assert service.status()["job"] is None


def test_openapi_lists_every_route(server) -> None:
    base, _ = server
    doc = httpx.get(base + "/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    assert set(doc["paths"]) == {
        "/api/v1/station",
        "/api/v1/jobs",
        "/api/v1/job",
        "/api/v1/start",
        "/api/v1/stop",
        "/api/v1/results",
        "/api/v1/log",
        "/api/v1/log/summary",
        "/api/v1/line",
        "/api/v1/events",
    }


def test_a_16_site_run_by_barcode_with_events_and_clients_polling(server) -> None:
    base, _ = server
    with client(base) as http:
        listed = http.get("/api/v1/jobs").json()["jobs"]
        assert {j["file"]: j["locked"] for j in listed} == {"job.json": True, "trial.json": False}
        job = http.post("/api/v1/job", json={"barcode": "job"}).json()["job"]
        assert job["device"] == "winbond.w25x10cl" and job["good"] == 1  # the first article
        status = http.get("/api/v1/station").json()
        assert len(status["sites"]) == 16 and not status["running"]

        events: list[dict] = []
        connected = threading.Event()

        def listen() -> None:
            with client(base) as sse, sse.stream("GET", "/api/v1/events") as stream:
                for line in stream.iter_lines():
                    if line.startswith(": connected"):
                        connected.set()
                    elif line.startswith("data: "):
                        events.append(json.loads(line[6:]))
                        finished = [e for e in events if e["type"] == "finished"]
                        if len(finished) == 16:
                            return

        listener = threading.Thread(target=listen, daemon=True)
        listener.start()
        assert connected.wait(10)

        polled: list[int] = []
        stop_polling = threading.Event()

        def poll() -> None:  # other clients hammering the station during the run
            with client(base) as other:
                while not stop_polling.is_set():
                    assert other.get("/api/v1/station").status_code == 200
                    assert other.get("/api/v1/results").status_code == 200
                    polled.append(1)

        pollers = [threading.Thread(target=poll, daemon=True) for _ in range(3)]
        for thread in pollers:
            thread.start()
        answer = http.post("/api/v1/start", json={})
        assert answer.status_code == 202
        again = http.post("/api/v1/start", json={})  # a second start is refused, run goes on
        assert again.status_code == 409 and "in progress" in again.json()["error"]
        status = wait_idle(http)
        stop_polling.set()
        for thread in pollers:
            thread.join(10)
        listener.join(20)
        assert len(polled) > 10

        results = http.get("/api/v1/results").json()["results"]
        assert len(results) == 16
        by_site = {r["site"]: r for r in results}
        assert by_site[5]["result"]["status"] == "fail"  # the verify fault
        assert all(by_site[s]["result"]["status"] == "pass" for s in by_site if s != 5)
        serials = [r["serial"] for r in results if r["result"]["status"] == "pass"]
        assert len(set(serials)) == 15
        assert status["job"]["good"] == 16 and status["job"]["failed"] == 1
        assert {s["state"] for s in status["sites"]} == {"pass", "fail"}

        kinds = {e["type"] for e in events}
        assert {"started", "phase", "progress", "finished"} <= kinds
        assert sum(e["type"] == "finished" for e in events) == 16

        records = http.get("/api/v1/log", params={"limit": 5}).json()["records"]
        assert len(records) == 5 and all("serial" in r for r in records)
        summary = http.get("/api/v1/log/summary").json()
        assert summary["passed"] == 16 and summary["failed"] == 1
        assert http.get("/api/v1/log/summary", params={"station": "elsewhere"}).json()["total"] == 0
        assert http.post("/api/v1/stop", json={}).json() == {"stopping": False}


def test_stop_ends_a_run_in_progress(server) -> None:
    base, service = server
    service.programmer_url = "sim://?sites=2&timing=scale:5"  # parts that take their time
    with client(base) as http:
        assert http.post("/api/v1/job", json={"path": "job.json"}).status_code == 200
        assert http.post("/api/v1/start", json={"sites": [1, 2]}).status_code == 202
        time.sleep(0.05)  # the 4 KiB erase takes 5 x 45 ms
        assert http.post("/api/v1/stop", json={}).json() == {"stopping": True}
        wait_idle(http)
        results = http.get("/api/v1/results").json()["results"]
        assert sorted(r["site"] for r in results) == [1, 2]
        assert {r["result"]["status"] for r in results} == {"cancelled"}


def test_serve_refuses_missing_or_weak_tokens(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.delenv("SOCKETEER_API_OPERATOR_TOKEN", raising=False)
    monkeypatch.delenv("SOCKETEER_API_ENGINEER_TOKEN", raising=False)
    assert main(["serve"]) == 2
    assert "operator token must be at least 16 characters" in capsys.readouterr().err
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps({"operator": "x" * 20, "engineer": "x" * 20}))
    assert main(["serve", "--tokens", str(tokens)]) == 2
    assert "must differ" in capsys.readouterr().err


def test_readme_carries_the_generated_api_reference() -> None:
    from app.api.openapi import markdown_reference

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    start = readme.index("<!-- api-reference:")
    start = readme.index("\n", start) + 1
    end = readme.index("<!-- api-reference end -->")
    assert readme[start:end] == markdown_reference(), "run: python -m app.api.openapi"


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("no chromium: install Debian's chromium package")
    return found


def browse(url: str, *extra: str) -> str:
    """Headless Chromium's DOM of ``url`` once its scripts have run (virtual time)."""
    import subprocess

    command = [chromium(), "--headless=new", "--no-sandbox", "--disable-gpu",
               "--virtual-time-budget=5000", *extra, url]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_the_line_view_shows_the_run_in_a_real_browser(server, tmp_path: Path) -> None:
    base, _ = server
    with client(base) as http:
        http.post("/api/v1/job", json={"barcode": "job"})
        assert http.post("/api/v1/start", json={}).status_code == 202
        wait_idle(http)
        line = http.get("/api/v1/line").json()
    assert line["summary"]["passed"] == 16 and len(line["failures"]) == 1
    assert line["failures"][0]["site"] == 5
    page = f"{base}/line#token={OPERATOR}"
    dom = browse(page, "--dump-dom")
    assert dom.count('data-state="pass"') == 15 and dom.count('data-state="fail"') == 1
    assert '<div class="value" id="good">16</div>' in dom
    assert "94.1 %" in dom  # 16 of 17 cycles
    assert "verify" in dom  # the failure's step, in the last failures table
    shot = tmp_path / "line.png"
    browse(page, f"--screenshot={shot}", "--window-size=1100,720")
    assert shot.stat().st_size > 10_000
    wrong = browse(f"{base}/line#token=wrong", "--dump-dom")
    assert "missing or wrong bearer token" in wrong and 'data-state="' not in wrong


def test_the_line_view_shows_every_station_sharing_a_database(
    tmp_path: Path, capsys, monkeypatch, pg_url: str
) -> None:
    monkeypatch.setenv("SOCKETEER_DB_URL", pg_url)  # the first article's station too
    job_path = make_job(tmp_path, capsys, count=100_000)
    approve(job_path)
    database = load_database()
    a = StationService(database, programmer_url="sim://?sites=4", db_url=pg_url, station="line-a")
    b = StationService(database, programmer_url="sim://?sites=3", db_url=pg_url, station="line-b")
    app = build_app(a, Tokens(OPERATOR, ENGINEER), pg_url)
    port = free_port()
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    try:
        while not uv.started:
            time.sleep(0.02)
        for service in (a, b):
            service.open_job(str(job_path))
            service.start()
        for service in (a, b):
            service.wait(60)
        with client(f"http://127.0.0.1:{port}") as http:
            deadline = time.monotonic() + 10  # line-b publishes from a thread of its own
            while True:
                line = http.get("/api/v1/line").json()
                published = [s["state"] for s in line["line"].get("line-b", [])]
                if published == ["pass"] * 3 or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
        assert [s["state"] for s in line["sites"]] == ["pass"] * 4  # line-a own, live
        assert line["station"] == "line-a"
        assert list(line["line"]) == ["line-b"]  # the other station, from the database
        assert [(s["index"], s["state"]) for s in line["line"]["line-b"]] == [
            (1, "pass"),
            (2, "pass"),
            (3, "pass"),
        ]
        passed = {k: v["passed"] for k, v in line["summary"]["per_station"].items()}
        assert passed["line-a"] == 4 and passed["line-b"] == 3  # and the first article's
        if shutil.which("chromium") or shutil.which("chromium-browser"):
            dom = browse(f"http://127.0.0.1:{port}/line#token={OPERATOR}", "--dump-dom")
            assert dom.count('data-station="line-b"') == 3 and "Station line-b" in dom
    finally:
        a.close()
        b.close()
        uv.should_exit = True
        thread.join(10)
