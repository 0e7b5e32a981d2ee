"""SPI EEPROMs (spi-eeprom): the spi_eeprom algorithm against the SpiEepromChip model,
end to end through the engine and the CLI on sim://, faults, and the DB's new fields."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_devicedb_validation import FILES, errors_for, only_error  # tests/ is on sys.path

from app.algorithms.base import ChipError
from app.algorithms.spi_eeprom import WRITE_KIND, SpiEeprom, page_split
from app.cli import main
from app.core.image import MemoryImage
from app.devicedb import Family
from app.devicedb.facts import SpiEepromFacts
from app.engine.cycle import part_names
from app.engine.planner import plan_program
from app.engine.site_runner import CycleSpec
from app.engine.station import Station
from app.hal.bus import SpiOp, SpiStep, WaitReady
from app.hal.programmer import open_programmer
from app.hal.sim.buses import LinkState, SimSpiBus
from app.hal.sim.clock import SimClock, Timing
from app.hal.sim.spi_eeprom_chip import SpiEepromChip
from app.hal.sim.spi_nor_chip import ChipFaults

DB = Path(__file__).resolve().parents[1] / "device_db" / "spi_eeprom"
FILES.setdefault("spi-eeprom", ("spi_eeprom/microchip.json", "Microchip"))

#: one part of each addressing kind
ONE_BYTE, A8_PARTS = "microchip.at25010b", ("microchip.25lc040a", "st.m95040-w", "onsemi.cat25040")
TWO_BYTES, THREE_BYTES = "microchip.25lc256", ("microchip.at25m01", "st.m95m02-dr")


class RecordingBus(SimSpiBus):
    """The simulated bus, keeping every step it was handed."""

    def __init__(self, chip: SpiEepromChip | None, clock: SimClock, **kw: Any) -> None:
        super().__init__(chip, clock, LinkState(), max_clock_hz=20_000_000, **kw)
        self.powered = True
        self.steps: list[SpiStep] = []

    def transfer(self, ops: Sequence[SpiStep]) -> list[bytes]:
        self.steps += ops
        return super().transfer(ops)

    def frames(self, opcode: int) -> list[bytes]:
        return [s.write for s in self.steps if isinstance(s, SpiOp) and s.write[0] == opcode]


def rig(database, device_id: str, timing: str = "instant", **chip_kw: Any):
    device = database.get(device_id)
    clock = SimClock(Timing.parse(timing))
    chip = SpiEepromChip(device, clock, **chip_kw)
    bus = RecordingBus(chip, clock)
    return device, chip, bus, SpiEeprom(bus, device)


def data(n: int, seed: int = 3) -> bytes:
    return bytes((i * 7 + seed + (i >> 8)) % 255 for i in range(n))  # never 0xFF


def program_all(algo: SpiEeprom, image: bytes) -> None:
    page = algo.geometry.page_size
    algo.program([(a, image[a : a + page]) for a in range(0, len(image), page)], lambda _n: None)


# -- the algorithm against the chip model ---------------------------------------------


@pytest.mark.parametrize("device_id", [ONE_BYTE, *A8_PARTS, TWO_BYTES, *THREE_BYTES])
def test_whole_part_programs_and_reads_back(database, device_id: str) -> None:
    device, chip, bus, algo = rig(database, device_id)
    assert algo.identify().present
    image = data(device.size_bytes)
    program_all(algo, image)
    assert bytes(chip.memory) == image
    assert algo.read(0, device.size_bytes, lambda _n: None) == image
    width = 1 + device.facts_as(SpiEepromFacts).address_bytes
    assert all(len(f) == width + algo.geometry.page_size for f in bus.frames(0x02))


@pytest.mark.parametrize("device_id", A8_PARTS)
def test_ninth_address_bit_goes_into_the_opcode(database, device_id: str) -> None:
    _, chip, bus, algo = rig(database, device_id)
    algo.program([(0x010, b"\x11" * 4), (0x110, b"\x22" * 4)], lambda _n: None)
    assert bus.frames(0x02)[0][:2] == b"\x02\x10"
    assert bus.frames(0x0A)[0][:2] == b"\x0a\x10"  # WRITE with A8: opcode bit 3
    assert chip.memory[0x010:0x014] == b"\x11" * 4 and chip.memory[0x110:0x114] == b"\x22" * 4
    assert algo.read(0x110, 4, lambda _n: None) == b"\x22" * 4
    assert bus.frames(0x0B)[0][:2] == b"\x0b\x10"  # READ with A8
    # a read across the 256-byte boundary continues in the upper half
    assert algo.read(0x10E, 4, lambda _n: None) == b"\xff\xff\x22\x22"


def test_writes_are_split_at_page_boundaries(database) -> None:
    device, chip, bus, algo = rig(database, "microchip.25lc256")
    page = device.facts_as(SpiEepromFacts).page_size
    assert list(page_split(page - 3, bytes(10), page)) == [(page - 3, bytes(3)), (page, bytes(7))]
    algo.program([(page - 3, b"ABCDEFGHIJ")], lambda _n: None)
    assert [f[1:3] for f in bus.frames(0x02)] == [(page - 3).to_bytes(2, "big"), b"\x00\x40"]
    assert chip.memory[page - 3 : page + 7] == b"ABCDEFGHIJ"
    assert chip.memory[:4] == b"\xff" * 4  # nothing wrapped to the page start


def test_the_chip_model_wraps_a_write_inside_its_page(database) -> None:
    _, chip, _, _ = rig(database, "microchip.25lc256")
    chip.transaction(b"\x06", 0)
    chip.transaction(b"\x02\x00\x3e" + b"WXYZ", 0)  # 64-byte page: two bytes wrap
    assert chip.memory[0x3E:0x40] == b"WX" and chip.memory[0:2] == b"YZ"


def test_every_write_waits_on_the_status_register(database) -> None:
    device, chip, bus, algo = rig(database, "st.m95m02-dr", timing="typ")
    start = chip.clock.now()
    algo.program([(0, b"\x00" * 256), (256, b"\x01" * 256)], lambda _n: None)
    waits = [s for s in bus.steps if isinstance(s, WaitReady)]
    assert len(waits) == 2 and {w.kind for w in waits} == {WRITE_KIND}
    assert all(w.opcode == 0x05 and w.mask == 0x01 and w.value == 0 for w in waits)
    cycle = device.facts_as(SpiEepromFacts).write_cycle
    assert chip.clock.now() - start >= 2 * cycle.ms_typ / 1000
    assert not chip.status() & 0x01  # the last write finished before program returned


def test_protect_and_unprotect_through_the_bp_bits(database) -> None:
    _, chip, _, algo = rig(database, "microchip.25lc640a")
    assert not algo.protection().protected
    algo.protect()
    state = algo.protection()
    assert state.protected and "whole array" in state.description
    chip.transaction(b"\x06", 0)
    chip.transaction(b"\x02\x00\x00\x00", 0)
    assert chip.memory[0] == 0xFF  # the protected part refused the write
    chip.power_cycle()
    assert algo.protection().protected  # BP bits are non-volatile
    algo.unprotect()
    assert not algo.protection().protected
    algo.program([(0, b"\x00")], lambda _n: None)
    assert chip.memory[0] == 0


def test_bp_bits_protect_a_quarter_or_a_half(database) -> None:
    device, chip, _, algo = rig(database, "microchip.25lc640a")
    size = device.size_bytes
    for bp, first in ((0x04, size * 3 // 4), (0x08, size // 2)):
        chip.nv_status = bp
        assert algo.protection().protected
        algo.program([(first - 32, b"\x00" * 32), (first, b"\x00" * 32)], lambda _n: None)
        assert chip.memory[first - 32 : first] == bytes(32)
        assert chip.memory[first : first + 32] == b"\xff" * 32
        chip.memory[:] = b"\xff" * size


def test_unprotect_fails_clearly_when_wp_locks_the_status_register(database) -> None:
    _, chip, _, algo = rig(database, "microchip.25lc640a", protected=True, wp_low=True)
    chip.nv_status |= 0x80  # WPEN set, WP pin low: status register read-only
    with pytest.raises(ChipError, match="WPEN"):
        algo.unprotect()


def test_identify_tells_a_part_from_an_empty_socket_or_a_dead_contact(database) -> None:
    _, chip, bus, algo = rig(database, "microchip.25lc256")
    ident = algo.identify()
    assert ident.present and ident.bus == "status" and ident.raw == b""
    bus.chip = None  # SO floats high
    assert not algo.identify().present
    bus.miso_level = 0x00  # SO stuck low
    assert not algo.identify().present
    assert not chip.wel  # the handshake leaves the latch cleared


def test_a_part_that_stays_busy_is_a_chip_error(database) -> None:
    _, _, _, algo = rig(database, "microchip.25lc256", faults=ChipFaults(busy_forever=True))
    with pytest.raises(ChipError, match="did not finish"):
        algo.program([(0, b"\x00")], lambda _n: None)


def test_there_is_no_erase_command(database) -> None:
    _, _, _, algo = rig(database, "microchip.25lc256")
    assert algo.geometry.regions == () and not algo.geometry.fill_pages
    with pytest.raises(ChipError, match="no erase"):
        algo.erase_chip()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    index=st.integers(min_value=0),
    spans=st.lists(
        st.tuples(st.integers(0, 2**18), st.binary(min_size=1, max_size=700)), max_size=5
    ),
)
def test_any_image_programs_and_verifies(database, index: int, spans) -> None:
    parts = database.search("", family=Family.SPI_EEPROM)
    device = parts[index % len(parts)]
    algo = rig(database, device.id)[3]
    image = MemoryImage()
    for start, blob in spans:
        start %= device.size_bytes
        image.add(start, blob[: device.size_bytes - start], last_wins=True)
    plan = plan_program(algo.geometry, image, "auto")
    algo.program(plan.writes, lambda _n: None)
    for lo, hi in plan.expected.ranges:
        assert algo.read(lo, hi - lo, lambda _n: None) == plan.expected.read(lo, hi)


# -- end to end: engine and CLI on sim:// ---------------------------------------------


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out + err


@pytest.mark.parametrize("device_id", [ONE_BYTE, A8_PARTS[1], TWO_BYTES, THREE_BYTES[0]])
def test_cli_programs_each_addressing_kind(capsys, tmp_path: Path, database, device_id) -> None:
    size = database.get(device_id).size_bytes
    image = tmp_path / "eeprom.bin"
    image.write_bytes(os.urandom(min(size, 4096)))
    argv = ["--programmer", "sim://?sites=2&timing=typ", "--device", device_id, str(image)]
    code, out = run_cli(capsys, "program", *argv, "--protect")
    assert code == 0 and "2 passed, 0 failed" in out, out
    assert "programmed and verified" in out
    read_back = tmp_path / "read.bin"
    code, out = run_cli(
        capsys, "read", "--programmer", "sim://", "--device", device_id, str(read_back)
    )
    assert code == 0 and read_back.stat().st_size == size, out


def test_cli_erase_writes_the_erased_value_and_blank_check_passes(capsys, tmp_path) -> None:
    argv = ["--programmer", "sim://", "--device", "st.m95040-w"]
    code, out = run_cli(capsys, "erase", *argv)
    assert code == 0, out
    code, out = run_cli(capsys, "blank-check", *argv)
    assert code == 0 and "1 passed" in out, out


@pytest.mark.parametrize(
    ("fault", "extra", "step"),
    [
        ("protected", (), "protection"),
        ("stuck-bit@0x40", (), "verify"),
        ("verify@0x41", (), "verify"),
        ("busy-timeout", (), "program"),
        ("contact", (), "identify"),
        ("empty", (), "socket"),
    ],
)
def test_cli_faults(capsys, tmp_path: Path, fault: str, extra: tuple[str, ...], step: str) -> None:
    image = tmp_path / "eeprom.bin"
    image.write_bytes(bytes(range(255)) * 2)
    url = f"sim://?sites=2&fault=2:{fault}"
    code, out = run_cli(
        capsys, "program", "--programmer", url, "--device", "onsemi.cat25040", str(image), *extra
    )
    assert code != 0 and "1 passed, 1 failed" in out, out
    assert f"FAIL at {step}" in out, out


def test_protected_part_programs_with_unprotect(database) -> None:
    device = database.get("rohm.br25s256-w")
    programmer = open_programmer("sim://?fault=1:protected", device=device, database=database)
    station = Station(programmer, lambda _e: None, part_names(database))
    image = MemoryImage.from_bytes(data(3000), 0x100)
    result = station.run(CycleSpec("program", device, image, unprotect=True)).results[0]
    assert result.passed, result.message
    chip = programmer.sites[0].chip
    assert isinstance(chip, SpiEepromChip) and chip.memory[0x100 : 0x100 + 3000] == data(3000)


def test_link_drop_is_reported_as_a_lost_link(database) -> None:
    device = database.get("microchip.25lc1024")
    programmer = open_programmer("sim://?fault=1:link-drop", device=device, database=database)
    station = Station(programmer, lambda _e: None, part_names(database))
    image = MemoryImage.from_bytes(data(device.size_bytes), 0)
    result = station.run(CycleSpec("program", device, image)).results[0]
    assert not result.passed and "link" in result.message


# -- the device database ------------------------------------------------------------


def entry(device_id: str = "microchip.25lc256") -> dict[str, Any]:
    doc = json.loads((DB / f"{device_id.split('.')[0]}.json").read_text())
    found = next(d for d in doc["devices"] if d["id"] == device_id)
    return copy.deepcopy(found) | {"packages": ["SOIC-8-150mil"]}


def test_db_has_40_parts_from_4_vendors(database) -> None:
    parts = database.search("", family=Family.SPI_EEPROM)
    assert len(parts) >= 40 and len({p.vendor for p in parts}) >= 4
    kinds = {
        (p.facts_as(SpiEepromFacts).address_bytes, p.facts_as(SpiEepromFacts).address_bit_in_opcode)
        for p in parts
    }
    assert kinds == {(1, False), (1, True), (2, False), (3, False)}


def test_size_must_fit_the_address_bytes(tmp_path: Path) -> None:
    bad = entry() | {"address_bytes": 1}
    path, message = only_error(tmp_path, bad)
    assert message.startswith(
        f"{path}: $.devices[0].size_bytes: 32768 does not fit address_bytes 1"
    )


def test_a_4kbit_part_needs_the_opcode_bit(tmp_path: Path) -> None:
    bad = entry("microchip.25lc040a")
    del bad["address_bit_in_opcode"]
    path, message = only_error(tmp_path, bad)
    assert message.startswith(f"{path}: $.devices[0].size_bytes: 512 does not fit address_bytes 1")
    assert "address_bit_in_opcode true" in message


def test_only_4kbit_parts_take_the_opcode_bit(tmp_path: Path) -> None:
    bad = entry() | {"address_bit_in_opcode": True}
    path, message = only_error(tmp_path, bad)
    assert message.startswith(f"{path}: $.devices[0].address_bit_in_opcode: only 512-byte parts")


def test_too_many_address_bytes(tmp_path: Path) -> None:
    path, message = only_error(tmp_path, entry() | {"address_bytes": 3})
    assert message.startswith(f"{path}: $.devices[0].address_bytes: 3 is too many")


def test_bp_mask_must_leave_rdy_wel_and_wpen_alone(tmp_path: Path) -> None:
    bad = entry()
    bad["status"]["bp_mask"] = "0x0E"
    path, message = only_error(tmp_path, bad)
    assert message.startswith(f"{path}: $.devices[0].status.bp_mask: 0x0E: the block-protect")


def test_page_size_is_checked_by_the_schema(tmp_path: Path) -> None:
    path, errors = errors_for(tmp_path, entry() | {"page_size_bytes": 48})
    assert f"{path}: $.devices[0].page_size_bytes: 48 does not divide size_bytes 32768" in errors
    assert any(
        e.startswith(f"{path}: $.devices[0].page_size_bytes: 48 is not one of") for e in errors
    )


def test_write_cycle_typ_must_not_exceed_max(tmp_path: Path) -> None:
    path, message = only_error(tmp_path, entry() | {"write_cycle_ms_typ": 9})
    assert message == f"{path}: $.devices[0].write_cycle_ms_typ: 9 is above write_cycle_ms_max 5"


def test_a_misspelt_field_is_named(tmp_path: Path) -> None:
    bad = entry()
    bad["adress_bytes"] = bad.pop("address_bytes")
    path, errors = errors_for(tmp_path, bad)
    assert (
        f"{path}: $.devices[0].adress_bytes: unknown field (did you mean 'address_bytes'?)"
        in errors
    )
