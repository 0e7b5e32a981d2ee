"""The one parser of numbers the user types: every string is a number in bounds or one
UsageError naming the option, never a ValueError or OverflowError."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.cli import main
from app.core.errors import UsageError
from app.core.numbers import ADDRESS_SPACE, parse_byte, parse_number, parse_range


@pytest.mark.parametrize(
    ("text", "value"),
    [("4096", 4096), ("0x1000", 4096), ("0X1_000", 4096), ("0b1_0", 2), ("0o17", 15),
     ("4K", 4096), ("16m", 16 << 20), ("1G", 1 << 30), (" 12 ", 12), ("4294967296", 1 << 32)],
)  # fmt: skip
def test_accepted_forms(text: str, value: int) -> None:
    assert parse_number(text) == value


@pytest.mark.parametrize(
    "text", ["", "1__0", "_1", "1_", "0x", "0x_", "12Q", "1.5", "²", "--1", "1e3", "9" * 5000]
)
def test_refused_forms_name_the_option(text: str) -> None:
    with pytest.raises(UsageError, match="--base"):
        parse_number(text, "--base")


def test_bounds() -> None:
    with pytest.raises(UsageError, match="beyond 0x100000000"):
        parse_number("0x100000001")
    with pytest.raises(UsageError, match="negative"):
        parse_number("-1")
    assert parse_number("-0x10", signed=True) == -16
    with pytest.raises(UsageError, match="beyond 0xFF"):
        parse_byte("0x100")
    with pytest.raises(UsageError, match="END must be >= START"):
        parse_range("0x10:0x8")
    with pytest.raises(UsageError, match="range end '1024G' is beyond"):
        parse_range("0:1024G")


@given(st.text(max_size=60))
def test_any_text_is_a_number_in_bounds_or_a_usage_error(text: str) -> None:
    try:
        value = parse_number(text, "--x", signed=True)
    except UsageError as err:
        assert "--x" in str(err)
    else:
        assert -ADDRESS_SPACE <= value <= ADDRESS_SPACE


@given(st.integers(min_value=0, max_value=ADDRESS_SPACE))
def test_round_trip_of_every_address(value: int) -> None:
    assert parse_number(hex(value)) == value == parse_number(str(value))


@pytest.mark.parametrize(
    "argv",
    [
        ["image", "checksum", "{img}", "--range", "1__0:0x100"],
        ["image", "checksum", "{img}", "--range", "0:1024G"],
        ["image", "convert", "{img}", "{tmp}/o.s37", "--offset", "0x100000000"],
        ["image", "info", "{img}", "--base", "9" * 5000],
    ],
)
def test_cli_numbers_at_the_edges_fail_in_one_line(
    tmp_path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    img = tmp_path / "fw.bin"
    img.write_bytes(bytes(256))
    code = main([a.format(img=img, tmp=tmp_path) for a in argv])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "error" in err


@pytest.mark.parametrize(
    ("fault", "message"),
    [("²:verify", "expected SITE:KIND"), ("1:verify@1__0", "not a number"),
     ("1:verify@0x1_0000_0000_0", "beyond")],
)  # fmt: skip
def test_simulator_fault_numbers(fault: str, message: str) -> None:
    from app.hal.errors import ProgrammerUrlError
    from app.hal.sim.faults import parse_faults

    with pytest.raises(ProgrammerUrlError, match=message):
        parse_faults(fault, 4)


def test_a_simulator_fault_beyond_the_part_is_a_url_error(
    tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = tmp_path / "fw.bin"
    image.write_bytes(bytes(4096))
    url = "sim://?sites=1&fault=1:verify@0x1000000&timing=instant"
    code = main(["program", "--device", "winbond.w25x40cl", "--programmer", url, str(image)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1  # a bad programmer URL is bad input
    assert "'1:verify@0x1000000': the address lies beyond the W25X40CL (524288 bytes)" in err
