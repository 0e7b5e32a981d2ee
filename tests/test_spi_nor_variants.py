"""SPI NOR parts without page program or RDID (issue 15 item 1): identification by RES
and REMS, byte program, SST AAI word program, EWSR and power-up protection; each end to
end on the simulator, the write sequences also against the chip model directly."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.algorithms.spi_nor_writes import (
    AAI_GAP,
    aai_pieces,
    aai_word_ops,
    byte_program_ops,
    runs,
)
from app.cli import main
from app.core.image import MemoryImage
from app.hal.bus import SpiOp, WaitReady
from app.hal.sim.clock import SimClock, Timing
from app.hal.sim.spi_nor_chip import SpiNorChip

RES_PART = "pmc.pm25lv010"  # RES answers 9D 7C, page program
REMS_BYTE_PART = "microchip.sst25vf040"  # REMS BF 44, byte program, EWSR, locked at power-up
AAI_PART = "microchip.sst25vf016b"  # RDID BF2541, AAI word program, locked at power-up
RES1_BYTE_PART = "micron.m25p05"  # RES answers 05, byte program
ATMEL_RDID_PART = "atmel.at25f512a"  # Read Product ID (15h) answers 1F 65, 128-byte pages


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def hex_file(tmp_path: Path, segments: list[tuple[int, bytes]]) -> Path:
    from app.core.formats import save_image

    path = tmp_path / "fw.hex"
    save_image(MemoryImage.from_segments(segments), path, "ihex")
    return path


@pytest.mark.parametrize(
    "device", [RES_PART, RES1_BYTE_PART, REMS_BYTE_PART, AAI_PART, ATMEL_RDID_PART]
)
def test_each_variant_programs_and_verifies_end_to_end(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, device: str
) -> None:
    rng = random.Random(device)
    # odd start, odd length, an erased gap in the middle, a second segment further on
    first = rng.randbytes(301) + b"\xff" * 40 + rng.randbytes(77)
    image = hex_file(tmp_path, [(0x1001, first), (0x8000, rng.randbytes(64))])
    code, out, err = run(
        capsys, "program", "--device", device, "--programmer", "sim://?timing=typ",
        "--unprotect", str(image),
    )  # fmt: skip
    assert code == 0, out + err
    assert "1 passed" in out


def test_sst_parts_power_up_protected_and_say_so(capsys, tmp_path: Path) -> None:
    image = hex_file(tmp_path, [(0, b"\x12\x34")])
    for device in (REMS_BYTE_PART, AAI_PART):
        code, out, _ = run(capsys, "program", "--device", device, "--programmer", "sim://",
                           str(image))  # fmt: skip
        assert code == 1 and "write-protected" in out and "unprotect" in out


def test_a_res_part_answering_another_signature_is_refused(capsys, tmp_path: Path) -> None:
    image = hex_file(tmp_path, [(0, b"\x00")])
    url = "sim://?jedec=9D7D00"  # RES answers 9D 7D: another PMC part
    code, out, _ = run(capsys, "program", "--device", RES_PART, "--programmer", url, str(image))
    assert code == 1
    assert "unexpected part: RES answers 9D7D, expected 9D7C (PMC (Chingis) Pm25LV010)" in out


def test_the_chip_id_in_the_result_is_what_the_named_command_answered(
    capsys, tmp_path: Path
) -> None:
    import json

    image = hex_file(tmp_path, [(0, b"\x00")])
    for device, answer in (
        (RES_PART, "9D7C"),
        (REMS_BYTE_PART, "BF44"),
        (RES1_BYTE_PART, "05"),
        (ATMEL_RDID_PART, "1F65"),
    ):
        code, out, _ = run(capsys, "verify", "--device", device, "--programmer", "sim://",
                           "--json", str(image))  # fmt: skip
        assert json.loads(out)["sites"][0]["chip_id"] == answer  # identify passed, verify not
        code, out, _ = run(capsys, "devices", "show", device)
        assert code == 0 and f"answers {answer}" in out


def validate_entry(capsys, tmp_path: Path, entry: dict) -> tuple[int, str]:
    """`devices validate` of a one-entry SPI NOR file named as the entry's vendor slug:
    the exit code and everything it printed."""
    import json

    folder = tmp_path / "spi_nor"
    folder.mkdir()
    path = folder / f"{entry['id'].split('.')[0]}.json"
    path.write_text(
        json.dumps({"family": "spi-nor", "vendor": entry["vendor"], "devices": [entry]})
    )
    code, out, err = run(capsys, "devices", "validate", str(path))
    return code, out + err


# -- the sequences themselves ------------------------------------------------------

WAIT = WaitReady(0x05, 0x01, 0x00, 0.1, 0.0, "test")


def cmd(opcode: int, address: int) -> bytes:
    return bytes([opcode]) + address.to_bytes(3, "big")


def test_aai_word_sequence_shape_with_odd_ends() -> None:
    ops = aai_word_ops(0x101, bytes(range(6)), cmd, WAIT, WAIT)  # 0x101..0x106
    writes = [op.write for op in ops if isinstance(op, SpiOp)]
    assert writes[0] == b"\x06"  # WREN, then a byte program of the odd first byte
    assert writes[1] == cmd(0x02, 0x101) + b"\x00"
    assert writes[2:4] == [b"\x06", cmd(0xAD, 0x102) + b"\x01\x02"]  # AAI from even
    assert writes[4] == b"\xad\x03\x04"  # next words: opcode and data only
    assert writes[5] == b"\x04"  # WRDI ends AAI
    assert writes[6:] == [b"\x06", cmd(0x02, 0x106) + b"\x05"]  # the odd last byte
    inside = writes[writes.index(cmd(0xAD, 0x102) + b"\x01\x02") + 1 : writes.index(b"\x04")]
    assert b"\x06" not in inside  # no WREN inside the sequence
    assert sum(isinstance(op, WaitReady) for op in ops) == 4  # after every program


def test_byte_program_skips_erased_bytes_and_runs_merge() -> None:
    ops = byte_program_ops(0x10, b"\x01\xff\x02", cmd, WAIT)
    assert [op.write for op in ops if isinstance(op, SpiOp)] == [
        b"\x06", cmd(0x02, 0x10) + b"\x01", b"\x06", cmd(0x02, 0x12) + b"\x02",
    ]  # fmt: skip
    assert list(runs([(0, b"ab"), (2, b"cd"), (10, b"e")])) == [(0, b"abcd"), (10, b"e")]
    data = b"\x01" + b"\xff" * AAI_GAP + b"\x02"
    assert list(aai_pieces(0x100, data)) == [(0x100, b"\x01"), (0x101 + AAI_GAP, b"\x02")]


def _chip(database, device_id: str) -> SpiNorChip:
    chip = SpiNorChip(database.get(device_id), SimClock(Timing("instant")))
    chip.sr1 = 0  # unprotected
    return chip


def _apply(chip: SpiNorChip, ops) -> None:
    for op in ops:
        if isinstance(op, SpiOp):
            chip.transaction(op.write, op.read_len)


SIZE = 4096
WRITES = st.lists(
    st.tuples(st.integers(0, SIZE - 1), st.binary(min_size=1, max_size=64)), max_size=6
)


def _image(writes: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
    """The writes as the planner hands them: sorted, not overlapping, inside the part."""
    memory: dict[int, int] = {}
    for address, data in writes:
        for i, value in enumerate(data[: SIZE - address]):
            memory[address + i] = value
    out: list[tuple[int, bytes]] = []
    for address in sorted(memory):
        if out and out[-1][0] + len(out[-1][1]) == address:
            out[-1] = (out[-1][0], out[-1][1] + bytes([memory[address]]))
        else:
            out.append((address, bytes([memory[address]])))
    return out


@settings(max_examples=120, deadline=None)
@given(WRITES)
def test_aai_and_byte_sequences_leave_exactly_the_image(database, writes) -> None:
    planned = _image(writes)
    for device, build in (
        (AAI_PART, lambda a, d: [
            op for at, piece in aai_pieces(a, d) for op in aai_word_ops(at, piece, cmd, WAIT, WAIT)
        ]),
        (REMS_BYTE_PART, lambda a, d: byte_program_ops(a, d, cmd, WAIT)),
    ):  # fmt: skip
        chip = _chip(database, device)
        for address, data in runs(planned):
            _apply(chip, build(address, data))
        expected = bytearray(b"\xff" * SIZE)
        for address, data in planned:
            expected[address : address + len(data)] = data
        assert bytes(chip.memory[:SIZE]) == bytes(expected), device


# -- boot sectors (erase_layout) ---------------------------------------------------


@pytest.mark.parametrize(
    ("device", "boot_sector"),
    [("eon.en25b32", (0x2000, 0x2000)), ("eon.en25b32t", (0x3FC000, 0x2000))],
)
def test_a_boot_sector_is_erased_alone_and_its_neighbours_keep_their_data(
    database, device: str, boot_sector: tuple[int, int]
) -> None:
    """8 KiB boot sector of a bottom- and a top-boot part: D8h there erases 8 KiB, so
    programming into it leaves the 4 KiB and 16 KiB sectors beside it as they were."""
    from app.engine.cycle import part_names
    from app.engine.site_runner import CycleSpec
    from app.engine.station import Station
    from app.hal.programmer import open_programmer

    dev = database.get(device)
    start, size = boot_sector
    programmer = open_programmer("sim://", device=dev, database=database)
    station = Station(programmer, lambda _e: None, part_names(database))
    region = (max(0, start - 0x8000), min(dev.size_bytes, start + 0x8000))  # and neighbours
    old = random.Random(1).randbytes(region[1] - region[0])
    image_old = MemoryImage.from_bytes(old, region[0])
    assert station.run(CycleSpec("program", dev, image_old)).results[0].passed
    new = MemoryImage.from_bytes(b"\x5a" * 0x100, start)
    result = station.run(CycleSpec("program", dev, new)).results[0]
    assert result.passed, result.message
    chip = programmer.sites[0].chip
    assert chip is not None
    memory = bytes(chip.memory[region[0] : region[1]])
    offset = start - region[0]
    assert memory[offset : offset + 0x100] == b"\x5a" * 0x100
    assert memory[offset + 0x100 : offset + size] == b"\xff" * (size - 0x100)  # erased
    assert memory[:offset] == old[:offset]  # the sectors below kept their data
    assert memory[offset + size :] == old[offset + size :]  # and those above


RUN_SIZES = st.sampled_from([4096, 8192, 16384, 32768, 65536])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(RUN_SIZES, st.integers(1, 3)), min_size=1, max_size=6))
def test_layout_regions_tile_the_part_with_the_layouts_own_blocks(runs_) -> None:
    from app.algorithms.spi_nor_regions import layout_regions
    from app.devicedb.facts import EraseLayout, EraseOp, SpiNorFacts, SpiNorProtection
    from app.devicedb.facts import Timing as DbTiming

    size = sum(block * count for block, count in runs_)
    layout = EraseLayout(0xD8, tuple(runs_))
    blocks = layout.blocks()
    if any(start % block for start, block in blocks):
        return  # not a real part: blocks must be aligned (the validator refuses it)
    timing = DbTiming(1.0, 2.0)
    facts = SpiNorFacts(
        jedec_id=b"\x01\x02\x03", extended_id=b"", legacy_rdid=None, page_size=256,
        erase_ops=(EraseOp(0xD8, 65536, timing), EraseOp(0xC7, None, timing)),
        page_program=timing, address_bytes=3, four_byte_mode=None,
        protection=SpiNorProtection(0x1C, None, None, False, timing),
        sfdp=False, unique_id=None, erase_layout=(layout,),
    )  # fmt: skip
    regions = layout_regions(size, facts)
    at = 0
    covered = []
    for region in regions:
        assert region.start == at
        (block,) = region.blocks
        covered += [(a, block.size) for a in range(at, at + region.size, block.size)]
        at += region.size
    assert at == size and covered == blocks


def test_the_validator_checks_a_layout_against_the_part(capsys, tmp_path: Path) -> None:
    from app.devicedb import load_database

    entry = dict(load_database().get("eon.en25b32").raw)
    entry["erase_layout"] = [{"opcode": "0xD8", "blocks": [[4096, 2], [8192, 1], [65536, 63]]}]
    code, output = validate_entry(capsys, tmp_path, entry)
    assert code == 2
    assert "$.devices[0].erase_layout[0].blocks: the blocks add up to" in output


# -- a part known to answer more than one ID (ZB25VQ16) --------------------------------

ZBIT = "zbit.zb25vq16"  # datasheet 5E6015; parts in the field answer 0E4015 (flashrom)


@pytest.mark.parametrize("answer", ["5E6015", "0E4015"])
def test_a_part_programs_with_either_id_it_is_known_to_answer(
    capsys, tmp_path: Path, answer: str
) -> None:
    image = hex_file(tmp_path, [(0x100, random.Random(answer).randbytes(5000))])
    url = f"sim://?chip={ZBIT}&jedec={answer}&timing=instant"
    code, out, err = run(capsys, "program", "--device", ZBIT, "--programmer", url, str(image))
    assert code == 0 and "1 passed" in out, out + err


def test_a_third_id_is_refused_naming_both_known_ones(capsys, tmp_path: Path) -> None:
    image = hex_file(tmp_path, [(0, b"\x00")])
    url = f"sim://?chip={ZBIT}&jedec=EF4015"
    code, out, _ = run(capsys, "program", "--device", ZBIT, "--programmer", url, str(image))
    assert code == 1
    assert "found ID EF4015" in out and "expected 5E6015 or 0E4015 (Zbit" in out


def test_identification_by_the_other_id_shows_both_and_the_source(capsys) -> None:
    code, out, _ = run(capsys, "devices", "by-id", "0E4015")
    assert code == 0 and "ZB25VQ16" in out
    assert "answers 0E4015 as well as its datasheet's 5E6015" in out
    assert "flashrom" in out
    code, out, _ = run(capsys, "devices", "by-id", "5E6015")
    assert code == 0 and "ZB25VQ16" in out and "as well as" not in out
    code, out, _ = run(capsys, "devices", "show", ZBIT)
    assert "JEDEC ID:         5E6015" in out and "also answers:     0E4015" in out


def test_detect_names_the_part_and_both_ids(capsys) -> None:
    code, out, _ = run(capsys, "detect", "--programmer", f"sim://?chip={ZBIT}&jedec=0E4015")
    assert code == 0 and "ZB25VQ16" in out and "5E6015" in out, out


@pytest.mark.parametrize(
    ("ids", "message"),
    [
        ({"jedec": "5E6015", "also_answers": [{"jedec": "5E6015", "source": "x"}]},
         "$.devices[0].ids.also_answers[0].jedec: 5E6015 is listed already"),
        ({"res": "14", "also_answers": [{"jedec": "0E4015", "source": "x"}]},
         "$.devices[0].ids.also_answers: needs ids.jedec"),
    ],
)  # fmt: skip
def test_the_validator_checks_other_answers(capsys, tmp_path: Path, ids, message) -> None:
    from app.devicedb import load_database

    entry = dict(load_database().get(ZBIT).raw)
    entry["ids"] = ids
    code, output = validate_entry(capsys, tmp_path, entry)
    assert code == 2
    assert message in output


# -- stacked dies (Micron die erase C4h, flag status 70h) and parts without a chip erase --


class _RecordingChip(SpiNorChip):
    """The sim chip model, keeping every command frame the algorithm sent."""

    def __init__(self, *args, **kwargs) -> None:
        self.frames: list[bytes] = []
        super().__init__(*args, **kwargs)

    def transaction(self, write: bytes, read_len: int) -> bytes:
        self.frames.append(bytes(write))
        return super().transaction(write, read_len)


def _algorithm_on(database, device_id: str):
    from app.algorithms import get_algorithm
    from app.hal.sim.buses import LinkState, SimSpiBus

    device = database.get(device_id)
    clock = SimClock(Timing("instant"))
    chip = _RecordingChip(device, clock)
    bus = SimSpiBus(chip, clock, LinkState(), max_clock_hz=50_000_000)
    bus.powered = True
    algo = get_algorithm(device.algorithm)(bus, device)
    algo.prepare()
    return algo, chip


@pytest.mark.parametrize(
    ("device", "dies", "die_size"),
    [("micron.n25q00aa13", 4, 32 << 20), ("micron.mt25ql01gbbb", 2, 64 << 20)],
)
def test_a_stacked_part_is_erased_die_by_die_in_4_byte_mode(
    database, device: str, dies: int, die_size: int
) -> None:
    from app.engine.planner import plan_program

    algo, chip = _algorithm_on(database, device)
    top = die_size * dies - 0x100
    for die in range(dies):  # something to erase on every die
        chip.memory[die * die_size + 5] = 0x00
    image = MemoryImage.from_segments([(top, b"\x5a" * 0x100)])
    plan = plan_program(algo.geometry, image, "full")
    assert not plan.chip_erase  # no bulk erase on a stacked part
    algo.erase_blocks(plan.erase, lambda _n: None)
    algo.program(plan.writes, lambda _n: None)
    assert chip.frames[:2] == [b"\x06", b"\xb7"]  # WREN, enter 4-byte mode
    die_erases = [f for f in chip.frames if f[0] == 0xC4]
    assert die_erases == [b"\xc4" + (d * die_size).to_bytes(4, "big") for d in range(dies)]
    assert all(chip.memory[d * die_size + 5] == 0xFF for d in range(dies))
    assert algo.read(top, 0x100, lambda _n: None) == b"\x5a" * 0x100
    # every erase and the program were followed by flag-status reads, not RDSR polls
    assert b"\x70" in chip.frames and b"\x05" not in chip.frames


def test_a_stacked_die_takes_no_program_until_its_flag_status_is_read(database) -> None:
    chip = _chip(database, "micron.n25q512a13")
    chip.transaction(b"\xb7", 0)
    for _ in range(2):  # two page programs, polling only RDSR (05h) in between
        chip.transaction(b"\x06", 0)
        chip.transaction(b"\x02\x00\x00\x00\x00" + b"\x11", 0)
        assert chip.transaction(b"\x05", 1)[0] & 1 == 0  # instant: ready
    chip.transaction(b"\x06", 0)
    chip.transaction(b"\x02\x00\x00\x01\x00" + b"\x22", 0)
    assert chip.memory[0x100] == 0xFF  # ignored: the die still owes its flag status
    assert chip.transaction(b"\x70", 1) == b"\x80"
    chip.transaction(b"\x06", 0)
    chip.transaction(b"\x02\x00\x00\x01\x00" + b"\x22", 0)
    assert chip.memory[0x100] == 0x22


def test_a_part_without_chip_erase_is_erased_by_blocks_and_refuses_protect(
    capsys, tmp_path: Path, database
) -> None:
    from app.engine.planner import plan_program

    algo, chip = _algorithm_on(database, "micron.m45pe40")
    plan = plan_program(algo.geometry, MemoryImage.from_segments([(0, b"\x01")]), "full")
    assert not plan.chip_erase and {b.opcode for b, _a in plan.erase} == {0xD8}
    assert len(plan.erase) == 8  # 512 KiB in 64 KiB sectors
    chip.transaction(b"\x06", 0)
    chip.transaction(b"\xc7", 0)  # a bulk erase the part does not have: ignored
    assert not chip._busy()
    image = hex_file(tmp_path, [(0x10, b"\x01\x02")])
    url = "sim://?timing=instant"
    code, out, _ = run(capsys, "program", "--device", "micron.m45pe40", "--programmer", url,
                       "--full-erase", "--protect", str(image))  # fmt: skip
    assert code == 1 and "no block-protect bits" in out


def _edited(device_id: str, **changes):
    from app.devicedb import load_database

    entry = dict(load_database().get(device_id).raw)
    for key, value in changes.items():
        if value is None:
            entry.pop(key, None)
        else:
            entry[key] = value
    return entry


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (lambda: _edited("micron.n25q512a13", dies=3),
         "$.devices[0].dies: 3 dies do not divide size_bytes 67108864"),
        (lambda: _edited("micron.n25q512a13", dies=4),
         "$.devices[0].erase: no die erase: dies 4 needs an entry whose size_bytes is one die"),
        (lambda: _edited("micron.n25q512a13", four_byte_mode="opcodes"),
         "$.devices[0].four_byte_mode: a stacked part needs \"b7\" or \"always\""),
        (lambda: _edited("micron.mt25ql512abb", dies=2),
         "a stacked part (dies: 2) has no chip erase"),
        (lambda: _edited("micron.m45pe10", no_chip_erase=None),
         "$.devices[0].erase: no chip erase"),
        (lambda: _edited("micron.m25pe10", no_chip_erase=True),
         "a chip erase, but no_chip_erase says none"),
    ],
)  # fmt: skip
def test_the_validator_checks_dies_and_chip_erase(capsys, tmp_path: Path, entry, message) -> None:
    code, output = validate_entry(capsys, tmp_path, entry())
    assert code == 2
    assert message in output


def test_an_atmel_rdid_part_answering_another_code_is_refused(capsys, tmp_path: Path) -> None:
    image = hex_file(tmp_path, [(0, b"\x00")])
    url = "sim://?chip=atmel.at25f2048&jedec=1F6400"  # the AT25F4096's code
    code, out, _ = run(capsys, "program", "--device", "atmel.at25f2048", "--programmer", url,
                       str(image))  # fmt: skip
    assert code == 1
    assert "unexpected part: Atmel RDID (15h) answers 1F64, expected 1F63" in out


def test_status_register_3_still_answers_on_parts_that_are_not_at25f(database) -> None:
    chip = _chip(database, "winbond.w25q128jv")
    chip.sr3 = 0x60
    assert chip.transaction(b"\x15", 1) == b"\x60"
