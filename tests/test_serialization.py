"""Serial sources, encodings, the job's serialization config and the image patch."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.core.errors import InputError
from app.core.image import MemoryImage
from app.engine.serialization import (
    ENCODINGS,
    SerialConfig,
    SerialConfigError,
    SerialsExhausted,
    SerialSource,
    decode_number,
    encode_number,
    max_encodable,
    patch_serial,
    serial_range,
)


def incremental(**kw: object) -> SerialSource:
    return SerialSource(SerialConfig(kind="incremental", address=0, **kw))  # type: ignore[arg-type]


# -- encodings ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "width", "expected"),
    [
        ("bcd", 2, b"\x12\x34"),
        ("bcd", 3, b"\x00\x12\x34"),
        ("bin-le", 4, b"\xd2\x04\x00\x00"),
        ("bin-be", 4, b"\x00\x00\x04\xd2"),
        ("bin-le", 2, b"\xd2\x04"),
        ("ascii-dec", 6, b"001234"),
        ("ascii-dec", 4, b"1234"),
        ("ascii-hex", 4, b"04D2"),
        ("ascii-hex", 6, b"0004D2"),
    ],
)
def test_encodings_of_1234(encoding: str, width: int, expected: bytes) -> None:
    assert encode_number(1234, encoding, width) == expected
    assert decode_number(expected, encoding) == 1234


def test_ascii_hex_is_upper_case() -> None:
    assert encode_number(0xABCDEF, "ascii-hex", 6) == b"ABCDEF"


@pytest.mark.parametrize(
    ("value", "encoding", "width", "unit"),
    [
        (1234567, "ascii-dec", 6, "character"),
        (0x10000, "ascii-hex", 4, "character"),
        (12345, "bcd", 2, "byte"),
        (65536, "bin-le", 2, "byte"),
        (256, "bin-be", 1, "byte"),
    ],
)
def test_overflow_names_value_and_width(value: int, encoding: str, width: int, unit: str) -> None:
    with pytest.raises(InputError, match=rf"serial {value} does not fit {width} {unit}"):
        encode_number(value, encoding, width)


def test_largest_values_fit() -> None:
    assert encode_number(9999, "bcd", 2) == b"\x99\x99"
    assert encode_number(999999, "ascii-dec", 6) == b"999999"
    assert encode_number(0xFFFF, "bin-be", 2) == b"\xff\xff"


@pytest.mark.parametrize(
    ("data", "encoding"),
    [(b"12a4", "ascii-dec"), (b"04d2", "ascii-hex"), (b"\x1a\x34", "bcd"), (b"", "ascii-dec")],
)
def test_decode_rejects_invalid_bytes(data: bytes, encoding: str) -> None:
    with pytest.raises(InputError, match="not a valid"):
        decode_number(data, encoding)


@given(st.data())
def test_decode_inverts_encode(data: st.DataObject) -> None:
    encoding = data.draw(st.sampled_from(ENCODINGS))
    width = data.draw(st.integers(1, 10))
    n = data.draw(st.integers(0, max_encodable(encoding, width)))
    encoded = encode_number(n, encoding, width)
    assert len(encoded) == width
    assert decode_number(encoded, encoding) == n


# -- incremental source ---------------------------------------------------------------


def test_incremental_values_and_prefix() -> None:
    src = incremental(start=1234, step=10, width=6, prefix="SN-")
    first, third = src.value(0), src.value(2)
    assert (first.index, first.text, first.data) == (0, "SN-001234", b"SN-001234")
    assert (third.text, third.data) == ("SN-001254", b"SN-001254")
    assert src.size == 9


def test_binary_serial_text_is_decimal() -> None:
    value = incremental(start=0x1234, width=2, encoding="bin-be", prefix="S").value(1)
    assert (value.text, value.data) == ("S4661", b"S\x12\x35")


def test_limit_is_the_last_allowed_value() -> None:
    src = incremental(start=10, step=5, limit=20, width=2)
    assert src.value(2).data == b"20"
    with pytest.raises(SerialsExhausted, match="past the limit 20") as info:
        src.value(3)
    assert isinstance(info.value, InputError)


def test_running_past_the_width_is_an_overflow_error() -> None:
    src = incremental(start=9998, width=2, encoding="bcd")
    assert src.value(1).data == b"\x99\x99"
    with pytest.raises(InputError, match="serial 10000 does not fit 2 byte"):
        src.value(2)


def test_negative_index_is_refused() -> None:
    with pytest.raises(ValueError):
        incremental().value(-1)


@given(
    start=st.integers(0, 10**9),
    step=st.integers(1, 10**6),
    indexes=st.lists(st.integers(0, 10**5), min_size=1, max_size=30, unique=True),
    encoding=st.sampled_from(ENCODINGS),
)
def test_incremental_values_are_unique_and_follow_the_formula(
    start: int, step: int, indexes: list[int], encoding: str
) -> None:
    src = incremental(start=start, step=step, width=12, encoding=encoding, prefix="P")
    values = [src.value(i) for i in indexes]
    for i, value in zip(indexes, values, strict=True):
        assert value.index == i
        assert value.data[:1] == b"P"
        assert decode_number(value.data[1:], encoding) == start + i * step
    assert len({v.data for v in values}) == len(values)
    assert len({v.text for v in values}) == len(values)


# -- list source ----------------------------------------------------------------------


def list_source(tmp_path: Path, text: str, length: int = 8, **kw: object) -> SerialSource:
    path = tmp_path / "serials.txt"
    path.write_text(text, encoding="utf-8")
    config = SerialConfig(kind="list", address=0x10, list_path=str(path), length=length)
    return SerialSource(config, **kw)  # type: ignore[arg-type]


def test_list_skips_blank_lines_and_reads_hex_lines(tmp_path: Path) -> None:
    src = list_source(tmp_path, "A001\n\n   \nA002  \r\nhex:00 11 AA\nHEX:ff\n")
    got = [src.value(i) for i in range(4)]
    assert [v.data for v in got] == [b"A001", b"A002", b"\x00\x11\xaa", b"\xff"]
    assert [v.text for v in got] == ["A001", "A002", "hex:00 11 AA", "HEX:ff"]
    with pytest.raises(SerialsExhausted, match="holds 4 serial"):
        src.value(4)


def test_empty_list_is_exhausted_at_once(tmp_path: Path) -> None:
    with pytest.raises(SerialsExhausted):
        list_source(tmp_path, "\n\n").value(0)


def test_list_path_is_relative_to_base_dir(tmp_path: Path) -> None:
    (tmp_path / "s.txt").write_text("X1\n")
    config = SerialConfig(kind="list", address=0, list_path="s.txt", length=2)
    assert SerialSource(config, base_dir=tmp_path).value(0).data == b"X1"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("A1\nÄ2\n", r"serials\.txt:2: .*not ASCII"),
        ("A1\n\nhex:zz\n", r"serials\.txt:3: .*not valid hex"),
        ("hex:\n", r"serials\.txt:1: .*no bytes"),
        ("A1\nTOO-LONG-SERIAL\n", r"serials\.txt:2: .*longer than 8"),
        ("A1\nA2\nA1\n", r"serials\.txt:3: serial 'A1' repeats line 1"),
        ("hex:4131\nA1\n", r"serials\.txt:2: serial 'A1' repeats line 1"),
    ],
)
def test_bad_list_lines_are_named(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        list_source(tmp_path, text)


def test_missing_list_file(tmp_path: Path) -> None:
    config = SerialConfig(kind="list", address=0, list_path=str(tmp_path / "nope.txt"), length=4)
    with pytest.raises(InputError, match=r"nope\.txt: cannot read"):
        SerialSource(config)


# -- command source -------------------------------------------------------------------


def command_source(tmp_path: Path, body: str, length: int = 4, **kw: object) -> SerialSource:
    script = tmp_path / "serial_cmd.py"
    script.write_text("import os, sys, time\n" + body, encoding="utf-8")
    config = SerialConfig(
        kind="command", address=0, command=(sys.executable, str(script)), length=length
    )
    return SerialSource(config, **kw)  # type: ignore[arg-type]


GOOD = (
    "i = int(os.environ['SOCKETEER_SERIAL_INDEX'])\n"
    "s = int(os.environ['SOCKETEER_SITE'] or 255)\n"
    "print(f'CAFE{i:02x}{s:02X}')\n"
)


def test_command_prints_hex_bytes(tmp_path: Path) -> None:
    src = command_source(tmp_path, GOOD)
    value = src.value(7, site=3)
    assert (value.index, value.data, value.text) == (7, b"\xca\xfe\x07\x03", "CAFE0703")
    assert src.value(1).data == b"\xca\xfe\x01\xff"  # no site: SOCKETEER_SITE is empty


def test_command_failure_names_command_and_output(tmp_path: Path) -> None:
    src = command_source(tmp_path, "print('partial'); sys.stderr.write('no dongle'); sys.exit(3)")
    with pytest.raises(InputError) as info:
        src.value(0)
    message = str(info.value)
    assert "serial_cmd.py" in message
    assert "status 3" in message
    assert "partial" in message and "no dongle" in message


@pytest.mark.parametrize(
    "body", ["print('hello world')", "print('ABC')", "print('AB'); print('CD')", "pass"]
)
def test_command_garbage_output(tmp_path: Path, body: str) -> None:
    with pytest.raises(InputError, match=r"serial_cmd\.py.*expected one line of hex digits"):
        command_source(tmp_path, body).value(0)


def test_command_output_longer_than_length(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="printed 5 bytes; the serial length is 4"):
        command_source(tmp_path, "print('0102030405')").value(0)


def test_command_timeout(tmp_path: Path) -> None:
    src = command_source(
        tmp_path, "print('waiting', flush=True); time.sleep(30)", command_timeout_s=0.5
    )
    with pytest.raises(InputError, match=r"did not finish within 0\.5 s; it printed 'waiting'"):
        src.value(0)


def test_command_that_cannot_start(tmp_path: Path) -> None:
    config = SerialConfig(
        kind="command", address=0, command=(str(tmp_path / "missing-tool"),), length=4
    )
    with pytest.raises(InputError, match="missing-tool: cannot start"):
        SerialSource(config).value(0)


# -- config ---------------------------------------------------------------------------

CONFIGS = [
    SerialConfig(kind="incremental", address=0x1F00),
    SerialConfig(
        kind="incremental",
        address=16,
        policy="void",
        start=100,
        step=3,
        width=3,
        encoding="bcd",
        prefix="SN",
        limit=999_999,
    ),
    SerialConfig(kind="list", address=0, list_path="serials.txt", length=12),
    SerialConfig(kind="command", address=8, command=("gen-mac", "--oui", "001122"), length=6),
]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.kind)
def test_config_json_round_trip(config: SerialConfig) -> None:
    text = json.dumps(config.to_json())
    assert SerialConfig.from_json(json.loads(text)) == config


def test_config_to_json_holds_only_fields_of_its_kind() -> None:
    assert CONFIGS[2].to_json() == {
        "kind": "list",
        "address": 0,
        "policy": "reuse",
        "list_path": "serials.txt",
        "length": 12,
    }


def test_config_accepts_hex_strings_for_integers() -> None:
    config = SerialConfig.from_json({"kind": "incremental", "address": "0x1F00", "start": "0x10"})
    assert (config.address, config.start) == (0x1F00, 16)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"kind": "counter", "address": 0}, "kind"),
        ({"address": 0}, "kind"),
        ({"kind": "incremental"}, "address"),
        ({"kind": "incremental", "address": -1}, "address"),
        ({"kind": "incremental", "address": "zero"}, "address"),
        ({"kind": "incremental", "address": 0, "policy": "keep"}, "policy"),
        ({"kind": "incremental", "address": 0, "step": 0}, "step"),
        ({"kind": "incremental", "address": 0, "width": 0}, "width"),
        ({"kind": "incremental", "address": 0, "width": True}, "width"),
        ({"kind": "incremental", "address": 0, "width": 2.5}, "width"),
        ({"kind": "incremental", "address": 0, "encoding": "bcd8"}, "encoding"),
        ({"kind": "incremental", "address": 0, "prefix": "Nº"}, "prefix"),
        ({"kind": "incremental", "address": 0, "start": -5}, "start"),
        ({"kind": "incremental", "address": 0, "start": 100, "limit": 99}, "limit"),
        ({"kind": "incremental", "address": 0, "width": 1, "start": 10}, "start"),
        (
            {"kind": "incremental", "address": 0, "width": 1, "encoding": "bcd", "limit": 100},
            "limit",
        ),
        ({"kind": "incremental", "address": 0, "length": 4}, "length"),
        ({"kind": "incremental", "address": 0, "colour": "red"}, "colour"),
        ({"kind": "list", "address": 0, "list_path": "s.txt"}, "length"),
        ({"kind": "list", "address": 0, "length": 4}, "list_path"),
        ({"kind": "list", "address": 0, "list_path": "s.txt", "length": 4, "width": 4}, "width"),
        ({"kind": "command", "address": 0, "command": "gen --next", "length": 4}, "command"),
        ({"kind": "command", "address": 0, "command": [], "length": 4}, "command"),
        ({"kind": "command", "address": 0, "command": ["gen"], "length": 0}, "length"),
    ],
)
def test_config_errors_name_the_field(data: dict[str, object], field: str) -> None:
    with pytest.raises(SerialConfigError) as info:
        SerialConfig.from_json(data)
    assert info.value.field == field
    assert f"serialization.{field}:" in str(info.value)
    assert isinstance(info.value, InputError)


def test_config_refuses_non_default_fields_of_another_kind() -> None:
    with pytest.raises(SerialConfigError, match="width: does not apply to kind 'list'"):
        SerialConfig(kind="list", address=0, list_path="s.txt", length=4, width=8)


def test_serial_range() -> None:
    assert serial_range(CONFIGS[0]) == (0x1F00, 0x1F04)
    assert serial_range(CONFIGS[1]) == (16, 16 + 2 + 3)
    assert serial_range(CONFIGS[2]) == (0, 12)
    assert serial_range(CONFIGS[3]) == (8, 14)


# -- image patch ----------------------------------------------------------------------


def test_patch_serial_returns_a_patched_copy() -> None:
    image = MemoryImage.from_bytes(bytes(range(16)), base=0x100, source="fw.bin")
    image.start_address = 0x100
    patched = patch_serial(image, 0x104, b"SN01")
    assert patched.read(0x100, 0x110) == bytes([0, 1, 2, 3]) + b"SN01" + bytes(range(8, 16))
    assert image.read(0x104, 0x108) == bytes([4, 5, 6, 7])
    assert patched.start_address == 0x100
    assert len(patched.segments) == 1


def test_patch_serial_outside_the_data_adds_a_segment() -> None:
    image = MemoryImage.from_bytes(b"\x00" * 4)
    patched = patch_serial(image, 0x20, b"\x12\x34")
    assert [(s.start, bytes(s.data)) for s in patched.segments] == [
        (0, b"\x00" * 4),
        (0x20, b"\x12\x34"),
    ]
    assert image.max_address == 4
