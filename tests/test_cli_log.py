"""`socketeer log export|summary` end to end, through app.cli.main."""

from __future__ import annotations

import csv
import io
import json
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.cli import main
from app.commands import log as log_command
from app.core.errors import UsageError
from app.engine.production_log import EXPORT_COLUMNS, ProductionLog, ProductionRecord

NOW = datetime.now(UTC).replace(microsecond=0)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def record(
    when: datetime, *, site: int = 0, result: str = "pass", job_id: str = "job-A", serial=None
) -> ProductionRecord:
    return ProductionRecord(
        time=when,
        station="bench-1",
        operator="ann",
        job_id=job_id,
        job_hash="ab" * 32,
        site=site,
        socket_insertions=3,
        device_id="winbond.w25q128jv",
        chip_id="EF4018",
        unique_id=None,
        serial=serial,
        result=result,
        failed_step=None if result == "pass" else "verify",
        message="ok" if result == "pass" else "verify failed",
        details={} if result == "pass" else {"address": "0x10"},
        timings={"program": 1.5},
    )


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The default log lives under tmp_path, never in the real user data folder."""
    folder = tmp_path / "data"
    monkeypatch.setenv("SOCKETEER_DATA_DIR", str(folder))
    return folder


@pytest.fixture
def filled(data_dir: Path) -> Path:
    """The default log with records 10 days, 30 hours, 2 hours and 10 minutes old."""
    path = data_dir / "production.sqlite3"
    with ProductionLog(path) as log:
        log.append(record(NOW - timedelta(days=10), serial="old"))
        log.append(record(NOW - timedelta(hours=30), site=1, result="fail", serial="day-old"))
        log.append(record(NOW - timedelta(hours=2), job_id="job-B", serial="recent"))
        log.append(record(NOW - timedelta(minutes=10), site=1, serial="newest"))
    return path


# -- export ---------------------------------------------------------------------------------


def test_export_csv_to_stdout_has_header_and_every_record(
    capsys: pytest.CaptureFixture[str], filled: Path
) -> None:
    code, out, err = run(capsys, "log", "export")
    assert code == 0 and err == ""
    rows = list(csv.DictReader(io.StringIO(out)))
    assert tuple(rows[0]) == EXPORT_COLUMNS
    assert [r["serial"] for r in rows] == ["old", "day-old", "recent", "newest"]
    assert json.loads(rows[1]["details"]) == {"address": "0x10"}


@pytest.mark.parametrize(
    ("since", "serials"),
    [("24h", ["recent", "newest"]), ("7d", ["day-old", "recent", "newest"]), ("30m", ["newest"])],
)
def test_export_since_relative(
    capsys: pytest.CaptureFixture[str], filled: Path, since: str, serials: list[str]
) -> None:
    code, out, _ = run(capsys, "log", "export", "--since", since, "--format", "jsonl")
    assert code == 0
    assert [json.loads(line)["serial"] for line in out.splitlines()] == serials


def test_export_since_until_iso_and_job(capsys: pytest.CaptureFixture[str], filled: Path) -> None:
    since = (NOW - timedelta(days=2)).isoformat()
    until = (NOW - timedelta(hours=1)).astimezone().replace(tzinfo=None).isoformat()  # local
    code, out, _ = run(capsys, "log", "export", "--since", since, "--until", until)
    assert code == 0
    assert [r["serial"] for r in csv.DictReader(io.StringIO(out))] == ["day-old", "recent"]
    code, out, _ = run(capsys, "log", "export", "--job", "job-B", "--format", "jsonl")
    assert [json.loads(line)["serial"] for line in out.splitlines()] == ["recent"]


def test_export_to_file_is_atomic_and_replaces(
    capsys: pytest.CaptureFixture[str], filled: Path, tmp_path: Path
) -> None:
    target = tmp_path / "out" / "log.jsonl"
    target.parent.mkdir()
    target.write_text("previous export\n")
    code, out, err = run(capsys, "log", "export", "--output", str(target))
    assert code == 0 and err == ""
    assert out.strip() == f"wrote 4 record(s) to {target} (jsonl)"  # format from the suffix
    docs = [json.loads(line) for line in target.read_text().splitlines()]
    assert [d["serial"] for d in docs] == ["old", "day-old", "recent", "newest"]
    assert os.listdir(target.parent) == ["log.jsonl"]  # no temp file left behind
    if os.name == "posix":
        umask = os.umask(0)
        os.umask(umask)
        assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask


def test_failed_export_leaves_the_old_file_and_no_temp(
    capsys: pytest.CaptureFixture[str],
    filled: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    target = tmp_path / "export.csv"
    target.write_text("previous export\n")
    real_export = ProductionLog.export

    def half_then_fail(self, stream, *args, **kwargs):
        real_export(self, stream, *args, **kwargs)
        raise UsageError("simulated failure half way")

    monkeypatch.setattr(ProductionLog, "export", half_then_fail)
    code, _, err = run(capsys, "log", "export", "-o", str(target))
    assert code == 2 and "simulated failure" in err
    assert target.read_text() == "previous export\n"
    assert sorted(os.listdir(tmp_path)) == ["data", "export.csv"]


def test_export_into_a_missing_folder_is_one_line(
    capsys: pytest.CaptureFixture[str], filled: Path, tmp_path: Path
) -> None:
    target = tmp_path / "nowhere" / "x.csv"
    code, _, err = run(capsys, "log", "export", "--output", str(target))
    assert code == 2 and err.count("\n") == 1 and str(target) in err


# -- bad WHEN and bad files -----------------------------------------------------------------


@pytest.mark.parametrize("option", ["--since", "--until"])
@pytest.mark.parametrize("value", ["yesterday", "24x", "2026-13-01", "99999999999d"])
def test_bad_when_is_a_one_line_usage_error(
    capsys: pytest.CaptureFixture[str], filled: Path, option: str, value: str
) -> None:
    for action in ("export", "summary"):
        code, out, err = run(capsys, "log", action, option, value)
        assert code == 2 and out == ""
        assert err.count("\n") == 1 and f"{option} {value!r}" in err


def test_until_before_since_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "log", "export", "--since", "2026-11-22", "--until", "2026-11-20")
    assert code == 2 and "is not after --since" in err


def test_db_option_reads_another_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    other = tmp_path / "elsewhere.sqlite3"
    with ProductionLog(other) as log:
        log.append(record(NOW, serial="from-other"))
    code, out, _ = run(capsys, "log", "export", "--db", str(other), "--format", "jsonl")
    assert code == 0 and json.loads(out)["serial"] == "from-other"


def test_missing_or_corrupt_db_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = tmp_path / "missing.sqlite3"
    code, _, err = run(capsys, "log", "summary", "--db", str(missing))
    assert code == 2 and err.count("\n") == 1 and str(missing) in err
    assert not missing.exists()
    corrupt = tmp_path / "corrupt.sqlite3"
    corrupt.write_bytes(os.urandom(8192))
    for action in ("export", "summary"):
        code, out, err = run(capsys, "log", action, "--db", str(corrupt))
        assert code == 2 and out == "" and err.count("\n") == 1 and str(corrupt) in err


def test_log_without_action_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "log")
    assert code == 2 and "export" in err and "summary" in err


# -- summary --------------------------------------------------------------------------------


def test_summary_json(capsys: pytest.CaptureFixture[str], filled: Path) -> None:
    code, out, _ = run(capsys, "log", "summary", "--json")
    assert code == 0
    doc = json.loads(out)
    assert (doc["total"], doc["passed"], doc["failed"], doc["yield_percent"]) == (4, 3, 1, 75.0)
    assert doc["per_site"]["1"] == {
        "total": 2,
        "passed": 1,
        "failed": 1,
        "cancelled": 0,
        "link_lost": 0,
        "errors": 0,
        "yield_percent": 50.0,
    }
    assert datetime.fromisoformat(doc["first_time"]) == NOW - timedelta(days=10)
    assert doc["devices_per_hour"] > 0
    code, out, _ = run(capsys, "log", "summary", "--json", "--since", "24h", "--job", "job-A")
    assert json.loads(out)["total"] == 1


def test_summary_text(capsys: pytest.CaptureFixture[str], filled: Path) -> None:
    code, out, _ = run(capsys, "log", "summary")
    assert code == 0
    assert "records:   4" in out and "yield:     75.0 %" in out
    table = out.split("\n\n")[1].splitlines()
    assert table[0].split() == ["SITE", "TOTAL", "PASS", "FAIL", "LINK", "CANC", "YIELD"]
    assert table[2].split() == ["1", "2", "1", "1", "0", "0", "50.0", "%"]


def test_summary_of_an_empty_log(capsys: pytest.CaptureFixture[str], data_dir: Path) -> None:
    code, out, _ = run(capsys, "log", "summary")
    assert code == 0 and out.strip() == "no records"
    assert (data_dir / "production.sqlite3").is_file()  # the default log is created


# -- WHEN parsing ---------------------------------------------------------------------------


def test_parse_when_forms() -> None:
    now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    assert log_command.parse_when("24h", now=now) == now - timedelta(hours=24)
    assert log_command.parse_when("7d", now=now) == now - timedelta(days=7)
    assert log_command.parse_when("30m", now=now) == now - timedelta(minutes=30)
    assert log_command.parse_when("2026-11-22T08:00Z") == datetime(2026, 11, 22, 8, tzinfo=UTC)
    assert log_command.parse_when("2026-11-22T08:00+02:00") == datetime(2026, 11, 22, 6, tzinfo=UTC)
    local = datetime(2026, 11, 22, 8, 0).astimezone()  # naive = local time
    assert log_command.parse_when("2026-11-22T08:00") == local
    assert log_command.parse_when("2026-11-22") == datetime(2026, 11, 22).astimezone()
    # a bare --until date includes that whole day
    assert log_command.parse_until("2026-11-22") == datetime(2026, 11, 23).astimezone()
    assert log_command.parse_until("2026-11-22T08:00") == local
    with pytest.raises(UsageError, match="--since 'soon'"):
        log_command.parse_when("soon")
