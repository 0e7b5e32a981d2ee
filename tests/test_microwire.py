"""93xx Microwire EEPROMs (microwire): the algorithm against the bit-level chip model,
the instruction frames against the datasheets' tables, the engine and CLI on sim://,
the FTDI MPSSE path against the pin-level fake, and the DB's fields."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from ftdi_fake import FakeUsb  # tests/ is on sys.path
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_devicedb_validation import FILES, errors_for, only_error

from app.algorithms.base import ChipError
from app.algorithms.microwire import Microwire
from app.cli import main
from app.core.image import MemoryImage
from app.devicedb import Family
from app.devicedb.facts import MicrowireFacts
from app.engine.cycle import part_names
from app.engine.planner import plan_program
from app.engine.site_runner import CycleSpec
from app.engine.station import Station
from app.hal.bus import MicrowireOp, MicrowireStep, ReadyWait
from app.hal.errors import ProgrammerUrlError
from app.hal.programmer import open_programmer
from app.hal.serprog import SerprogSite
from app.hal.sim.buses import LinkState, SimMicrowireBus
from app.hal.sim.clock import SimClock, Timing
from app.hal.sim.microwire_chip import MicrowireChip
from app.hal.sim.spi_nor_chip import ChipFaults

DB = Path(__file__).resolve().parents[1] / "device_db" / "microwire"
FILES.setdefault("microwire", ("microwire/microchip.json", "Microchip"))

#: every size in both organisations
PARTS = [
    "microchip.93lc46a",
    "microchip.93lc46b",
    "st.m93c56-x8",
    "st.m93c56-x16",
    "onsemi.cat93c66-x8",
    "microchip.93c66b",
    "microchip.93lc76c-x8",
    "rohm.br93g76-3a",
    "microchip.at93c86a-x8",
    "ablic.s-93c86c",
]


class RecordingBus(SimMicrowireBus):
    """The simulated bus, keeping every step it was handed."""

    def __init__(self, chip: MicrowireChip | None, clock: SimClock, **kw: Any) -> None:
        super().__init__(chip, clock, LinkState(), max_clock_hz=2_000_000, **kw)
        self.powered = True
        self.steps: list[MicrowireStep] = []

    def transfer(self, ops: Sequence[MicrowireStep]) -> list[int]:
        self.steps += ops
        return super().transfer(ops)

    def frames(self) -> list[str]:
        """Each frame's bits as the datasheet writes them ("1 10 0000101" without spaces)."""
        return [format(s.bits, f"0{s.count}b") for s in self.steps if isinstance(s, MicrowireOp)]


def rig(database, device_id: str, timing: str = "instant", **chip_kw: Any):
    device = database.get(device_id)
    clock = SimClock(Timing.parse(timing))
    chip = MicrowireChip(device, clock, **chip_kw)
    bus = RecordingBus(chip, clock)
    return device, chip, bus, Microwire(bus, device)


def data(n: int, seed: int = 3) -> bytes:
    return bytes((i * 7 + seed + (i >> 8)) % 255 for i in range(n))  # never 0xFF


def nothing(_n: int) -> None:
    return None


def program_all(algo: Microwire, image: bytes) -> None:
    plan = plan_program(algo.geometry, MemoryImage.from_bytes(image, 0), "auto")
    algo.program(plan.writes, nothing)


# -- instruction frames, from the datasheets' instruction tables ----------------------


def test_frames_of_a_93c46_in_x8_match_the_instruction_table(database) -> None:
    """Microchip DS20001749K table 2-1 (ORG = 0): 7 address bits, 8 data bits."""
    _, _, bus, algo = rig(database, "microchip.93lc46a")
    program_all(algo, b"\x00" * 0x55 + b"\xa5")  # the word at 0x55 only changes...
    bus.steps.clear()
    algo.program([(0x55, b"\xa5")], nothing)
    algo.erase_chip()
    algo.read(0x2A, 1, nothing)
    algo.finish(True)
    assert bus.frames() == [
        "1001100000",  # EWEN
        "101101010110100101",  # WRITE 0x55 <- A5
        "1001100000",  # EWEN
        "1001000000",  # ERAL
        "1100101010",  # READ 0x2A
        "1000000000",  # EWDS
    ]


def test_frames_of_a_93c86_in_x16_match_the_instruction_table(database) -> None:
    """16 Kbit x16: 10 address bits, 16 data bits, word address = byte address / 2."""
    _, _, bus, algo = rig(database, "ablic.s-93c86c")
    algo.program([(0x7FE, b"\x12\x34")], nothing)
    assert bus.frames() == ["1001100000000", "10111111111110001001000110100"]


def test_the_93c56_carries_one_dont_care_address_bit(database) -> None:
    """256 bytes x8 need 8 bits; the 93x56 takes 9 (the 93x66's length)."""
    device, chip, bus, algo = rig(database, "st.m93c56-x8")
    assert device.facts_as(MicrowireFacts).address_bits == 9 == chip.address_bits
    algo.read(0xFF, 1, nothing)
    assert bus.frames() == ["110011111111"]


# -- the algorithm against the chip model ---------------------------------------------


@pytest.mark.parametrize("device_id", PARTS)
def test_whole_part_programs_and_reads_back(database, device_id: str) -> None:
    device, chip, _, algo = rig(database, device_id)
    image = data(device.size_bytes)
    program_all(algo, image)
    assert bytes(chip.memory) == image
    assert algo.read(0, device.size_bytes, nothing) == image
    assert chip.cycles == device.size_bytes // algo.word  # one self-timed cycle a word


def test_x16_words_are_stored_most_significant_byte_first(database) -> None:
    _, chip, _, algo = rig(database, "microchip.93lc46b")
    algo.program([(4, b"\xab\xcd")], nothing)
    assert chip._word_bits(2) == [int(b) for b in format(0xABCD, "016b")]


def test_half_a_x16_word_keeps_the_other_byte_the_part_holds(database) -> None:
    _, chip, _, algo = rig(database, "microchip.93lc46b")
    algo.program([(10, b"\x11\x22")], nothing)
    algo.program([(11, b"\x99")], nothing)  # the low byte of word 5 only
    assert chip.memory[10:12] == b"\x11\x99"
    algo.program([(12, b"\x77")], nothing)  # the high byte of word 6, on an erased word
    assert chip.memory[12:14] == b"\x77\xff"


def test_a_read_starting_inside_a_word_returns_just_the_bytes_asked_for(database) -> None:
    _, chip, _, algo = rig(database, "onsemi.cat93c66-x16")
    chip.memory[:] = data(512)
    assert algo.read(3, 7, nothing) == data(512)[3:10]
    assert algo.read(511, 1, nothing) == data(512)[511:]


def test_sequential_read_wraps_at_the_end_of_the_array(database) -> None:
    _, chip, bus, _ = rig(database, "microchip.93lc46a")
    chip.memory[:] = data(128)
    frame = MicrowireOp(0b1_10_1111110, 10, 1 + 8 * 4)  # READ 0x7E, four words
    answer = bus.transfer([frame])[0]
    assert answer >> 32 == 0  # the dummy 0
    assert (answer & 0xFFFFFFFF).to_bytes(4, "big") == data(128)[126:] + data(128)[:2]


def test_writes_are_refused_without_ewen_and_after_ewds(database) -> None:
    _, chip, bus, algo = rig(database, "microchip.93c46a")
    write = MicrowireOp(0b1_01_0000001_01010101, 18)
    bus.transfer([write])
    assert chip.memory[1] == 0xFF and chip.cycles == 0  # powers up write-disabled
    algo.program([(0, b"\x00")], nothing)
    algo.finish(True)  # EWDS
    bus.transfer([write])
    assert chip.memory[1] == 0xFF and chip.memory[0] == 0x00


def test_every_write_waits_for_ready_on_do(database) -> None:
    _, chip, bus, algo = rig(database, "st.m93c46-x8", "typ")
    algo.program([(0, data(8))], nothing)
    waits = [s for s in bus.steps if isinstance(s, ReadyWait)]
    assert len(waits) == 8 and waits[0].kind == "word write"
    assert waits[0].timeout_s >= 0.005  # ST: 5 ms maximum
    assert chip.clock.now() >= 8 * 0.005 * 0.85  # it really waited for each cycle
    assert not chip.busy()


def test_the_model_erases_one_word_and_writes_all(database) -> None:
    """ERASE 11 + address sets one word to 1s; WRAL (00 01 + data) writes every word,
    both only after EWEN and started by CS falling (DS20001749K sections 3.3, 3.8)."""
    _, chip, bus, _ = rig(database, "microchip.93lc46b")
    ewen = MicrowireOp(0b1_00_11_0000, 9)
    wral = MicrowireOp((0b1_00_01_0000 << 16) | 0x1234, 9 + 16)
    erase_word_3 = MicrowireOp(0b1_11_000011, 9)
    bus.transfer([wral])
    assert chip.memory[:2] == b"\xff\xff"  # write-disabled after power-up
    bus.transfer([ewen, wral, ReadyWait(0.02)])
    assert bytes(chip.memory) == b"\x12\x34" * 64
    bus.transfer([erase_word_3, ReadyWait(0.02)])
    assert chip.memory[4:10] == b"\x12\x34\xff\xff\x12\x34"


def test_erase_all_sets_every_cell_and_blank_reads_ff(database) -> None:
    device, _, _, algo = rig(database, "microchip.93lc66c-x16")
    program_all(algo, data(device.size_bytes))
    algo.erase_chip()
    assert algo.read(0, device.size_bytes, nothing) == b"\xff" * device.size_bytes


def test_a_part_that_stays_busy_is_a_chip_error(database) -> None:
    _, _, _, algo = rig(database, "microchip.93lc56b", faults=ChipFaults(busy_forever=True))
    with pytest.raises(ChipError, match="did not finish"):
        algo.program([(0, b"\x00\x01"), (2, b"\x02\x03")], nothing)


def test_there_are_no_block_erases_and_no_protection_bits(database) -> None:
    _, _, _, algo = rig(database, "microchip.93lc56b")
    assert algo.geometry.regions == () and algo.geometry.chip_erase is not None
    assert not algo.protection().protected
    algo.unprotect()  # nothing to clear
    with pytest.raises(ChipError, match="no write protection"):
        algo.protect()


def test_identify_tells_a_part_from_an_open_line(database) -> None:
    _, _, bus, algo = rig(database, "microchip.93lc46a")
    assert algo.identify().present
    bus.chip = None  # nothing on the bus: DO pulled high
    ident = algo.identify()
    assert not ident.present and ident.raw == b"\x01\xff"
    assert "dummy 0" in ident.absent_reason and "ORG" not in ident.absent_reason


@pytest.mark.parametrize(("entry", "strapped"), [("st.m93c46-x16", 8), ("st.m93c46-x8", 16)])
def test_a_part_strapped_for_the_other_organisation_is_named(database, entry, strapped) -> None:
    _, _, _, algo = rig(database, entry, word_bits=strapped)
    ident = algo.identify()  # a blank part: the extra/missing address bit shifts the answer
    assert not ident.present
    assert f"ORG pin selects the other organisation (this entry is x{16 // (strapped // 8)})" in (
        ident.absent_reason
    )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    index=st.integers(min_value=0),
    spans=st.lists(
        st.tuples(st.integers(0, 2**12), st.binary(min_size=1, max_size=300)), max_size=4
    ),
)
def test_any_image_programs_and_verifies(database, index: int, spans) -> None:
    parts = database.search("", family=Family.MICROWIRE)
    device = parts[index % len(parts)]
    _, chip, _, algo = rig(database, device.id)
    chip.memory[:] = data(device.size_bytes, seed=9)  # old contents around the image
    image = MemoryImage()
    for start, blob in spans:
        start %= device.size_bytes
        image.add(start, blob[: device.size_bytes - start], last_wins=True)
    plan = plan_program(algo.geometry, image, "auto")
    algo.program(plan.writes, nothing)
    for lo, hi in plan.expected.ranges:
        assert algo.read(lo, hi - lo, nothing) == plan.expected.read(lo, hi)
    outside = [a for a in range(device.size_bytes) if image.read(a, a + 1) is None]
    old = data(device.size_bytes, seed=9)
    assert all(chip.memory[a] == old[a] for a in outside)  # nothing else changed


# -- end to end: engine and CLI on sim:// ---------------------------------------------


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out + err


@pytest.mark.parametrize("device_id", ["microchip.93lc46c-x8", "onsemi.cat93c86-x16"])
def test_cli_programs_reads_erases_and_blank_checks(capsys, tmp_path: Path, database, device_id):
    size = database.get(device_id).size_bytes
    image = tmp_path / "eeprom.bin"
    image.write_bytes(os.urandom(size))
    argv = ["--programmer", "sim://?sites=2", "--device", device_id]
    code, out = run_cli(capsys, "program", *argv, "--full-erase", str(image))
    assert code == 0 and "2 passed, 0 failed" in out, out
    read_back = tmp_path / "read.bin"
    code, out = run_cli(
        capsys, "read", "--programmer", "sim://", "--device", device_id, str(read_back)
    )
    assert code == 0 and read_back.stat().st_size == size, out
    code, out = run_cli(capsys, "erase", *argv)
    assert code == 0, out
    code, out = run_cli(capsys, "blank-check", *argv)
    assert code == 0 and "2 passed" in out, out


@pytest.mark.parametrize(
    ("fault", "extra", "step"),
    [
        ("stuck-bit@0x40", (), "verify"),
        ("verify@0x41", (), "verify"),
        ("busy-timeout", (), "program"),
        ("erase-fail@0x10", ("--full-erase",), "erase"),
        ("contact", (), "program"),  # DO held low: busy for ever after the first write
        ("empty", (), "socket"),
    ],
)
def test_cli_faults(capsys, tmp_path: Path, fault: str, extra: tuple[str, ...], step: str) -> None:
    image = tmp_path / "eeprom.bin"
    image.write_bytes(bytes(range(1, 256)) + b"\x01")
    url = f"sim://?sites=2&fault=2:{fault}"
    code, out = run_cli(
        capsys, "program", "--programmer", url, "--device", "st.m93c66-x8", str(image), *extra
    )
    assert code != 0 and "1 passed, 1 failed" in out, out
    assert f"FAIL at {step}" in out, out


def test_the_org_option_straps_the_simulated_part(capsys, tmp_path: Path) -> None:
    image = tmp_path / "eeprom.bin"
    image.write_bytes(b"\x00" * 128)
    url = "sim://?org=8"
    code, out = run_cli(
        capsys, "program", "--programmer", url, "--device", "microchip.93lc46c-x16", str(image)
    )
    assert code != 0 and "FAIL at identify" in out and "ORG pin" in out, out


def test_faults_that_do_not_apply_are_refused(database) -> None:
    device = database.get("st.m93c46-x8")
    with pytest.raises(ProgrammerUrlError, match="no write protection"):
        open_programmer("sim://?fault=1:protected", device=device, database=database)
    with pytest.raises(ProgrammerUrlError, match="no ID command"):
        open_programmer("sim://?fault=1:wrong-id", device=device, database=database)
    with pytest.raises(ProgrammerUrlError, match="org='4'"):
        open_programmer("sim://?org=4", device=device, database=database)


def test_link_drop_is_reported_as_a_lost_link(database) -> None:
    device = database.get("microchip.93lc86c-x16")
    programmer = open_programmer("sim://?fault=1:link-drop", device=device, database=database)
    station = Station(programmer, lambda _e: None, part_names(database))
    result = station.run(CycleSpec("program", device, MemoryImage.from_bytes(data(2048)))).results[
        0
    ]
    assert not result.passed and "link" in result.message


def test_a_programmer_without_the_bus_says_which_ones_have_it(database) -> None:
    assert SerprogSite.microwire is None  # bytes only: no single-bit clocking
    spi_only = open_programmer("sim://", device=database.get("winbond.w25q128jv"))
    station = Station(spi_only, lambda _e: None, part_names(database))
    device = database.get("microchip.93lc46a")
    result = station.run(CycleSpec("program", device, MemoryImage.from_bytes(data(16)))).results[0]
    assert not result.passed
    assert "cannot drive Microwire (93xx) parts" in result.message
    assert "ftdi://" in result.message and "serprog" in result.message


# -- FTDI MPSSE, against the pin-level fake -------------------------------------------


def ftdi_site(database, device_id: str, **chip_kw: Any):
    usb = FakeUsb()
    board = usb.add("FTMW", "232h")
    device = database.get(device_id)
    chip = MicrowireChip(device, SimClock(Timing("instant")), **chip_kw)
    board.interfaces[1].chip = chip
    programmer = open_programmer(
        "ftdi://ftdi:232h/1", device=device, database=database, ftdi_backend=usb.backend()
    )
    return programmer, chip, board.interfaces[1], device


@pytest.mark.parametrize("device_id", ["microchip.93lc46a", "onsemi.cat93c66-x16"])
def test_ftdi_programs_and_reads_back(database, device_id: str) -> None:
    programmer, chip, iface, device = ftdi_site(database, device_id)
    assert "microwire" in programmer.capabilities.buses
    station = Station(programmer, lambda _e: None, part_names(database))
    image = data(device.size_bytes)
    result = station.run(CycleSpec("program", device, MemoryImage.from_bytes(image))).results[0]
    assert result.passed, result.message
    assert bytes(chip.memory) == image
    read = station.run(CycleSpec("read", device, read_range=(0, device.size_bytes))).results[0]
    assert read.data == image
    assert iface.frequency <= device.max_clock_hz  # the part's clock, not the board's
    programmer.close()


def test_ftdi_selects_with_cs_high_and_leaves_it_low(database) -> None:
    programmer, _, iface, _ = ftdi_site(database, "st.m93c46-x8")
    bus = programmer.sites[0].microwire
    assert bus is not None
    iface.history.clear()
    assert bus.transfer([MicrowireOp(0b1_10_0000000, 10, 9)]) == [0x0FF]  # dummy 0, blank
    cs = [bool(levels & 0x08) for levels in iface.history]
    assert cs[0] is False and True in cs and cs[-1] is False
    programmer.close()


def test_ftdi_ready_busy_timeout_and_empty_socket(database) -> None:
    programmer, _, iface, device = ftdi_site(
        database, "st.m93c46-x8", faults=ChipFaults(busy_forever=True)
    )
    station = Station(programmer, lambda _e: None, part_names(database))
    result = station.run(CycleSpec("program", device, MemoryImage.from_bytes(b"\x00"))).results[0]
    assert not result.passed and "did not finish" in result.message
    iface.present = False  # the part taken out: DO pulled high
    result = station.run(CycleSpec("program", device, MemoryImage.from_bytes(b"\x00"))).results[0]
    assert not result.passed and "dummy 0" in result.message
    programmer.close()


# -- the device database ------------------------------------------------------------


def entry(device_id: str = "microchip.93lc46b") -> dict[str, Any]:
    doc = json.loads((DB / f"{device_id.split('.')[0]}.json").read_text())
    found = next(d for d in doc["devices"] if d["id"] == device_id)
    return copy.deepcopy(found) | {"packages": ["SOIC-8-150mil"]}


def test_db_has_30_parts_from_4_vendors_in_both_organisations(database) -> None:
    parts = database.search("", family=Family.MICROWIRE)
    assert len(parts) >= 30 and len({p.vendor for p in parts}) >= 4
    facts = [p.facts_as(MicrowireFacts) for p in parts]
    assert {f.word_bits for f in facts} == {8, 16}
    assert {p.size_bytes for p in parts} == {128, 256, 512, 1024, 2048}
    for part in database.search("93LC46C", family=Family.MICROWIRE):
        assert part.facts_as(MicrowireFacts).org_pin  # one entry per ORG strapping


def test_address_bits_must_reach_every_word(tmp_path: Path) -> None:
    path, message = only_error(tmp_path, entry() | {"address_bits": 8})
    assert message == (
        f"{path}: $.devices[0].address_bits: 8 does not address 64 words of 16 bits (needs 6,"
        " or 7 with one don't-care bit)"
    )


def test_size_must_be_a_power_of_two_of_words(tmp_path: Path) -> None:
    path, message = only_error(tmp_path, entry() | {"size_bytes": 96})
    assert message.startswith(f"{path}: $.devices[0].size_bytes: 96 is not a power-of-two")


def test_organisation_is_checked_by_the_schema(tmp_path: Path) -> None:
    path, errors = errors_for(tmp_path, entry() | {"organisation": 32})
    assert any(e.startswith(f"{path}: $.devices[0].organisation: 32 is not one of") for e in errors)


def test_a_misspelt_field_is_named(tmp_path: Path) -> None:
    bad = entry()
    bad["org_pins"] = bad.pop("org_pin")
    path, errors = errors_for(tmp_path, bad)
    assert f"{path}: $.devices[0].org_pins: unknown field (did you mean 'org_pin'?)" in errors
