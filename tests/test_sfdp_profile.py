"""SFDP tables and provisional profiles (issue 15 item 4).

The reader is checked against tables read from real parts (tests/data/sfdp, see its
README), then against the simulator's table builder for random parts (a round trip
between two independently written halves), and for robustness on arbitrary bytes. The
profile rules and the approval gate are checked through the CLI on simulated parts whose
SFDP is correct, truncated and lying.
"""

from __future__ import annotations

import contextlib
import json
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.algorithms.sfdp import SfdpError, parse_sfdp
from app.cli import main
from app.engine.sfdp_profile import ProfileError, build_profile, profile_problems
from app.hal.sim.sfdp import build_sfdp

UNKNOWN = "sim://?chip=winbond.w25q256jv&jedec=A11719"  # a 32 MiB part nobody knows
PASSWORD = "engineer-secret"


def dump(data_dir: Path, name: str) -> bytes:
    return bytes.fromhex((data_dir / "sfdp" / name).read_text().replace("\n", " "))


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# -- the reader on real parts -------------------------------------------------------


def test_a_winbond_w25q01jv_table_reads_as_its_datasheet_part(data_dir: Path) -> None:
    info = parse_sfdp(dump(data_dir, "w25q01jv-iq.txt"))
    assert info is not None
    assert info.revision == (1, 6)
    assert info.size_bytes == 128 * 1024 * 1024  # 1 Gbit
    assert info.page_size_bytes == 256
    assert info.erase_types == ((0x20, 4096), (0x52, 32768), (0xD8, 65536))
    assert info.address_bytes == 4 and not info.three_byte_only
    # DWORD 10: 4K typ 3+1 units of 16 ms; multiplier 2 x (6 + 1)
    assert (info.erases[0].ms_typ, info.erases[0].ms_max) == (64, 64 * 14)
    assert info.page_program_ms == pytest.approx((0.704, 0.704 * 6))
    assert info.four_byte_entry == 0xA5  # B7h, extended address register, 4-byte opcodes
    assert profile_problems(bytes.fromhex("EF4021"), info) == []
    entry = build_profile(bytes.fromhex("EF4021"), info)
    assert entry["four_byte_mode"] == "opcodes" and entry["address_bytes"] == 4


def test_an_issi_2_gbit_table_reads_with_its_table_at_30h(data_dir: Path) -> None:
    info = parse_sfdp(dump(data_dir, "issi-is25lp02g.txt"))
    assert info is not None
    assert info.size_bytes == 256 * 1024 * 1024
    assert info.erase_types == ((0x20, 4096), (0x52, 32768), (0xD8, 65536))
    assert info.four_byte_entry == 0xA9  # B7h, bank register, 4-byte opcodes


def test_a_table_cut_short_names_the_dword(data_dir: Path) -> None:
    table = bytearray(dump(data_dir, "w25q01jv-iq.txt"))
    table[0x80 + 36 :] = b"\xff" * (len(table) - 0x80 - 36)  # DWORD 10 on reads FFh
    with pytest.raises(SfdpError, match=r"DWORD 10 \(at SFDP address 0xA4\).*cut short"):
        parse_sfdp(bytes(table))


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({11: 8}, "8 DWORDs long; JESD216 needs at least 9"),
        ({12: 0xF8, 13: 0x0F}, "lies outside the SFDP space"),
        ({8: 0x01}, "ID 0xFF01, not the BFPT"),
        ({10: 1, 9: 6, 11: 9}, "defines 16 DWORDs but the header gives 9"),
    ],
)
def test_a_bad_header_says_what_is_wrong(data_dir: Path, patch: dict, message: str) -> None:
    table = bytearray(dump(data_dir, "w25q01jv-iq.txt"))
    for at, value in patch.items():
        table[at] = value
    with pytest.raises(SfdpError, match=message):
        parse_sfdp(bytes(table))


def test_no_signature_is_no_table() -> None:
    assert parse_sfdp(b"\xff" * 64) is None


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=0, max_size=300))
def test_any_bytes_after_a_signature_give_a_table_or_sfdp_error(tail: bytes) -> None:
    with contextlib.suppress(SfdpError):
        parse_sfdp(b"SFDP" + tail)


ERASE_SIZES = st.lists(st.sampled_from([4096, 32768, 65536, 262144]), min_size=1, max_size=4)


@settings(max_examples=200, deadline=None)
@given(
    size_exp=st.integers(17, 28),
    page_exp=st.integers(4, 10),
    sizes=ERASE_SIZES,
    erase_typ=st.floats(0.5, 3000),
    factor=st.floats(1.0, 30.0),
    page_typ=st.floats(0.01, 2.0),
)
def test_the_simulators_tables_read_back_within_the_encodings_step(
    size_exp: int, page_exp: int, sizes: list[int], erase_typ: float, factor: float, page_typ: float
) -> None:
    size = 1 << size_exp
    ordered = sorted(set(sizes))
    erases = [(0x20 + i, s, erase_typ, erase_typ * factor) for i, s in enumerate(ordered)]
    address_bytes = 4 if size > 1 << 24 else 3
    table = build_sfdp(
        size, 1 << page_exp, erases, address_bytes,
        page_program_ms=(page_typ, page_typ * factor), chip_erase_ms=(1000.0, 5000.0),
    )  # fmt: skip
    info = parse_sfdp(table)
    assert info is not None
    assert info.size_bytes == size and info.page_size_bytes == 1 << page_exp
    assert [(op, s) for op, s, _, _ in erases] == list(info.erase_types)
    for written, read in zip(erases, info.erases, strict=True):
        _, _, typ, high = written
        assert read.ms_typ is not None and read.ms_max is not None
        assert typ <= read.ms_typ * (1 + 1e-9) and read.ms_max >= high * (1 - 1e-9)
        if typ <= 31 * 1000:  # within the encoding's range: at most one unit over
            assert read.ms_typ <= typ * 2 + 1
    assert info.page_program_ms is not None and info.page_program_ms[0] >= page_typ * (1 - 1e-9)


# -- profile rules ------------------------------------------------------------------


def _table(size: int, erases, address_bytes: int = 3, **kw) -> bytes:
    return build_sfdp(size, 256, erases, address_bytes, **kw)


def test_a_density_the_capacity_code_does_not_allow_builds_no_profile() -> None:
    info = parse_sfdp(_table(1 << 24, [(0x20, 4096, 45, 400)]))
    assert info is not None
    with pytest.raises(ProfileError, match=r"16 MiB disagrees .* code 17h \(8 MiB\)"):
        build_profile(bytes.fromhex("C84017"), info)
    assert build_profile(bytes.fromhex("C84018"), info)["size_bytes"] == 1 << 24


def test_3_byte_only_above_16_mib_and_no_4_byte_method_are_problems() -> None:
    table = bytearray(_table(1 << 25, [(0x20, 4096, 45, 400)], 4))
    dw1 = struct.unpack_from("<I", table, 0x80)[0] & ~(0x3 << 17)  # 00: 3-byte only
    struct.pack_into("<I", table, 0x80, dw1)
    info = parse_sfdp(bytes(table))
    assert info is not None
    problems = profile_problems(bytes.fromhex("EF4019"), info)
    assert any("3-byte addresses only" in p for p in problems)
    assert any("no way to enter 4-byte addressing" in p for p in problems)


def test_a_page_larger_than_the_smallest_erase_is_a_problem() -> None:
    info = parse_sfdp(build_sfdp(1 << 20, 8192, [(0x20, 4096, 45, 400)], 3))
    assert info is not None
    assert any("page size 8192" in p for p in profile_problems(bytes.fromhex("EF4014"), info))


# -- the CLI and the approval gate -------------------------------------------------


def _program(capsys, device: str, url: str, image: Path) -> tuple[int, str, str]:
    return run(capsys, "program", "--device", device, "--programmer", url, str(image))


def test_an_unknown_part_gets_a_profile_that_writes_only_after_approval(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    overlay = tmp_path / "overlay"
    monkeypatch.setenv("SOCKETEER_OVERLAY_DB", str(overlay))
    url = UNKNOWN + "&sfdp=ok"
    code, out, err = run(capsys, "detect", "--programmer", url)
    assert code == 0 and "not in the device database" in out and "from-sfdp" in out

    code, out, err = run(capsys, "devices", "from-sfdp", "--programmer", url, "--save")
    assert code == 0, err
    assert "32 MiB" in out and "NOT approved" in out and "Assumed: supply 2.7-3.6 V" in out
    saved = json.loads((overlay / "spi_nor" / "provisional.json").read_text())
    entry = saved["devices"][0]
    assert entry["id"] == "provisional.a11719" and entry["provisional"]["approved_by"] is None
    assert entry["four_byte_mode"] == "b7"  # the W25Q256JV's table offers WREN + B7h

    image = tmp_path / "fw.bin"
    image.write_bytes(bytes(range(256)) * 300)
    code, out, err = _program(capsys, "provisional.a11719", url, image)
    assert code == 2 and "not approved by an engineer" in err and "PASS" not in out
    code, out, err = run(capsys, "verify", "--device", "provisional.a11719", "--programmer",
                         url, str(image))  # fmt: skip
    assert code == 1 and "not approved" not in err  # reading with it is allowed
    code, out, err = run(
        capsys, "job", "new", str(tmp_path / "job.json"), "--device", "provisional.a11719",
        "--image", str(image),
    )  # fmt: skip
    assert code == 2 and "a job with it is refused" in err
    assert not (tmp_path / "job.json").exists()

    monkeypatch.setenv("SOCKETEER_NEW_ENGINEER_PASSWORD", PASSWORD)
    assert run(capsys, "job", "password")[0] == 0
    monkeypatch.setenv("SOCKETEER_ENGINEER_PASSWORD", "wrong")
    code, _, err = run(capsys, "devices", "approve", "provisional.a11719", "--by", "Ada")
    assert code == 2 and "wrong engineer password" in err
    monkeypatch.setenv("SOCKETEER_ENGINEER_PASSWORD", PASSWORD)
    code, out, err = run(capsys, "devices", "approve", "provisional.a11719", "--by", "Ada")
    assert code == 0, err

    code, out, err = _program(capsys, "provisional.a11719", url, image)
    assert code == 0, err
    assert "1 passed, 0 failed" in out
    code, out, _ = run(capsys, "devices", "show", "provisional.a11719")
    assert "approved by Ada" in out


@pytest.mark.parametrize(
    ("sfdp", "message"),
    [
        ("truncated", "DWORD 10 (at SFDP address 0xA4) reads FFFFFFFFh"),
        ("lying", "SFDP density 64 MiB disagrees with the JEDEC ID's capacity code 19h"),
        ("none", "has no SFDP table"),
    ],
)
def test_a_damaged_or_missing_table_builds_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch, sfdp: str, message: str
) -> None:
    overlay = tmp_path / "overlay"
    monkeypatch.setenv("SOCKETEER_OVERLAY_DB", str(overlay))
    url = f"{UNKNOWN}&sfdp={sfdp}"
    code, _, err = run(capsys, "devices", "from-sfdp", "--programmer", url, "--save")
    assert code == 2 and message in err
    assert not (overlay / "spi_nor" / "provisional.json").exists()


def test_a_part_the_database_knows_needs_no_profile(
    capsys: pytest.CaptureFixture[str], database
) -> None:
    known = next(
        d
        for d in database.search("", family="spi-nor")
        if len(database.identify("jedec", d.jedec_id).candidates) == 1
    )
    url = f"sim://?chip={known.id}&sfdp=ok"
    code, _, err = run(capsys, "devices", "from-sfdp", "--programmer", url)
    assert code == 2 and f"{known.part} ({known.id}) in the database" in err


def test_an_id_the_database_knows_ambiguously_gets_a_profile(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = "sim://?chip=winbond.w25q128jv&sfdp=ok"  # EF4018: W25Q128BV, FV and JV
    code, out, err = run(capsys, "devices", "from-sfdp", "--programmer", url, "--json")
    assert code == 0, err
    entry = json.loads(out)
    assert entry["ids"]["jedec"] == "EF4018" and entry["size_bytes"] == 16 * 1024 * 1024


def test_the_validator_refuses_an_approval_without_its_time(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    info = parse_sfdp(_table(1 << 20, [(0x20, 4096, 45, 400), (0xD8, 65536, 150, 2000)]))
    assert info is not None
    entry = build_profile(bytes.fromhex("A11714"), info)
    entry["provisional"]["approved_by"] = "Ada"
    folder = tmp_path / "spi_nor"
    folder.mkdir()
    doc = {"family": "spi-nor", "vendor": entry["vendor"], "devices": [entry]}
    (folder / "provisional.json").write_text(json.dumps(doc))
    code, out, err = run(capsys, "devices", "validate", str(folder / "provisional.json"))
    assert code == 2
    assert "$.devices[0].provisional: approved_by and approved_at go together" in out + err
    entry["provisional"]["approved_at"] = "2026-12-03T10:00:00+00:00"
    (folder / "provisional.json").write_text(json.dumps(doc))
    assert run(capsys, "devices", "validate", str(folder / "provisional.json"))[0] == 0
