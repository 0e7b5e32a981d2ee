"""`socketeer log wear` and `socketeer log wear-reset` end to end through app.cli.main."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.cli import main
from app.core.roles import RoleStore
from app.engine.production_log import default_log_path
from app.engine.socket_wear import SocketWear

SITE1 = "sim://?sites=4#site1"
SITE2 = "sim://?sites=4#site2"
PASSWORD = "engineer-pw"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> Path:
    """The default log with 12 insertions on site 1 and 3 on site 2; an engineer password."""
    monkeypatch.delenv("SOCKETEER_ENGINEER_PASSWORD", raising=False)
    RoleStore().set_password(PASSWORD)
    with SocketWear() as wear:
        for _ in range(12):
            wear.insert(SITE1)
        for _ in range(3):
            wear.insert(SITE2)
    return default_log_path()


def engineer(monkeypatch: pytest.MonkeyPatch, password: str = PASSWORD) -> None:
    monkeypatch.setenv("SOCKETEER_ENGINEER_PASSWORD", password)


def test_wear_lists_each_socket(capsys: pytest.CaptureFixture[str], counted: Path) -> None:
    code, out, _ = run(capsys, "log", "wear")
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split() == ["SOCKET", "INSERTIONS", "LAST", "RESET"]
    assert [row.split() for row in rows] == [[SITE1, "12", "never"], [SITE2, "3", "never"]]


def test_wear_of_an_empty_log(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "log", "wear")
    assert code == 0 and out.strip() == "no socket insertions counted yet"


def test_reset_needs_the_engineer_password_and_is_listed(
    capsys: pytest.CaptureFixture[str], counted: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engineer(monkeypatch, "wrong-pw")
    code, out, err = run(capsys, "log", "wear-reset", SITE1, "--reason", "socket replaced")
    assert code == 2 and out == ""
    assert err.strip() == "socketeer: error: wrong engineer password; nothing was reset"
    assert SocketWear().count(SITE1) == 12

    engineer(monkeypatch)
    code, out, _ = run(
        capsys, "log", "wear-reset", SITE1, "--reason", "socket replaced", "--by", "erin"
    )
    assert code == 0
    assert out.strip() == f"socket {SITE1}: 12 -> 0 insertions (reset by erin: socket replaced)"

    code, out, _ = run(capsys, "log", "wear")
    rows = out.splitlines()[1:]
    assert rows[0].split()[:2] == [SITE1, "0"]
    assert "by erin (was 12: socket replaced)" in rows[0]
    assert rows[1].split() == [SITE2, "3", "never"]

    code, out, _ = run(capsys, "log", "wear", "--json")
    doc = {s["socket"]: s for s in json.loads(out)["sockets"]}
    last = doc[SITE1]["last_reset"]
    assert (last["by"], last["previous_count"], last["reason"]) == ("erin", 12, "socket replaced")
    assert doc[SITE1]["insertions"] == 0 and doc[SITE1]["resets"] == [last]
    assert doc[SITE2]["last_reset"] is None and doc[SITE2]["resets"] == []


def test_reset_all(
    capsys: pytest.CaptureFixture[str], counted: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engineer(monkeypatch)
    code, out, _ = run(
        capsys, "log", "wear-reset", "--all", "--reason", "new adapter", "--by", "erin"
    )
    assert code == 0
    assert out.splitlines() == [
        f"socket {SITE1}: 12 -> 0 insertions (reset by erin: new adapter)",
        f"socket {SITE2}: 3 -> 0 insertions (reset by erin: new adapter)",
    ]
    assert SocketWear().all() == {SITE1: 0, SITE2: 0}


def test_unknown_socket_is_refused_before_the_password(
    capsys: pytest.CaptureFixture[str], counted: Path
) -> None:
    # No password in the environment: asking for one would fail differently.
    code, _, err = run(capsys, "log", "wear-reset", "sim://?sites=4#site7", "--reason", "x")
    assert code == 2 and err.count("\n") == 1
    assert "no socket 'sim://?sites=4#site7' in the wear counts; did you mean" in err
    code, _, err = run(capsys, "log", "wear-reset", SITE1, "--reason", " ")
    assert code == 2 and "needs a reason" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--reason", "x"), "one of the arguments SOCKET --all is required"),
        ((SITE1, "--all", "--reason", "x"), "argument --all: not allowed with argument SOCKET"),
        ((SITE1,), "the following arguments are required: --reason"),
    ],
)
def test_reset_usage_errors(
    capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], message: str
) -> None:
    code, _, err = run(capsys, "log", "wear-reset", *argv)
    assert code == 2 and err == f"socketeer log wear-reset: error: {message}\n"


def test_db_option_must_exist(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = tmp_path / "missing.sqlite3"
    code, _, err = run(capsys, "log", "wear", "--db", str(missing))
    assert code == 2 and f"{missing}: no production log there" in err
    assert not missing.exists()
