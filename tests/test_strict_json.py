"""Strict JSON for user files: what Python's parser lets through is refused with the
place, and every input ends in a value or one clear error (job files and the device
database's overlay alike)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.cli import main
from app.core import strict_json
from app.core.strict_json import MAX_DEPTH, StrictJsonError

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=20)
    | st.floats(allow_nan=False, allow_infinity=False)
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(JSON_VALUES)
def test_valid_json_reads_back_as_written(value: object) -> None:
    assert strict_json.loads(json.dumps(value)) == value


@given(st.text(max_size=200))
def test_any_text_is_a_value_or_one_clear_error(text: str) -> None:
    try:
        strict_json.loads(text)
    except StrictJsonError as err:
        assert err.message and "\n" not in err.message


@pytest.mark.parametrize(
    ("text", "message", "line", "column"),
    [
        ('{\n "a": NaN}', "NaN is not a JSON number", 2, 7),
        ('{"a": -Infinity}', "-Infinity is not a JSON number", 1, 7),
        ('{"a": 1,\n "a": 2}', "duplicate key 'a'", 2, 2),
        ('{"name": "\\ud800"}', "$.name: a lone surrogate escape", None, None),
        ("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), "nested more than 64", 1, MAX_DEPTH + 1),
        ('{"a": "[[[[["}', None, None, None),  # brackets in strings do not nest
    ],
)
def test_what_python_lets_through_is_refused_with_the_place(
    text: str, message: str | None, line: int | None, column: int | None
) -> None:
    if message is None:
        strict_json.loads(text)
        return
    with pytest.raises(StrictJsonError) as caught:
        strict_json.loads(text)
    assert message in caught.value.message
    assert (caught.value.line, caught.value.column) == (line, column)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[" * 100_000 + "]" * 100_000, "deep.json:1:65: nested more than 64 levels deep"),
        ('{"format": "socketeer-job/1", "name": "\\ud800"}', "lone surrogate"),
        ('{"format": "socketeer-job/1", "count_limit": NaN}', "NaN is not a JSON number"),
    ],
)
def test_job_files_with_such_json_fail_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    path = tmp_path / "deep.json"
    path.write_text(content, encoding="utf-8")
    assert main(["job", "check", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_an_overlay_file_nested_too_deep_names_itself(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    monkeypatch.setenv("SOCKETEER_OVERLAY_DB", str(tmp_path))
    assert main(["devices", "search", "w25q128"]) == 2
    assert "deep.json:1:65: nested more than 64 levels deep" in capsys.readouterr().err
