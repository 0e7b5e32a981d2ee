"""Winbond SpiStack (W25M512JV): two dies behind one chip select, reached one at a time
after Software Die Select (C2h + die number). The algorithm against the DieStack model,
the model itself against the datasheet's rules, the engine on sim://, and the DB rules."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from test_spi_nor_variants import validate_entry  # tests/ is on sys.path

from app.algorithms.spi_nor import SpiNor
from app.cli import main
from app.core.image import MemoryImage
from app.engine.planner import plan_program
from app.hal.sim.buses import LinkState, SimSpiBus
from app.hal.sim.clock import SimClock, Timing
from app.hal.sim.die_stack import DieStack

PART = "winbond.w25m512jv"
DIE = 32 << 20
DB = Path(__file__).resolve().parents[1] / "device_db" / "spi_nor" / "winbond.json"


class RecordingStack(DieStack):
    """The model, keeping every frame and the die that was active for it."""

    def __init__(self, *args, **kwargs) -> None:
        self.frames: list[tuple[int, bytes]] = []
        super().__init__(*args, **kwargs)

    def transaction(self, write: bytes, read_len: int) -> bytes:
        self.frames.append((self.active, bytes(write)))
        return super().transaction(write, read_len)


def rig(database, **kw):
    device = database.get(PART)
    clock = SimClock(Timing("instant"))
    stack = RecordingStack(device, clock, **kw)
    bus = SimSpiBus(stack, clock, LinkState(), max_clock_hz=50_000_000)
    bus.powered = True
    algo = SpiNor(bus, device)
    assert algo.identify().hex.startswith("EF7119")
    algo.prepare()
    return algo, stack


def nothing(_n: int) -> None:
    return None


def test_every_die_enters_4_byte_mode(database) -> None:
    _, stack = rig(database)
    b7 = [die for die, frame in stack.frames if frame == b"\xb7"]
    assert b7 == [0, 1]


def test_an_image_across_the_die_boundary_lands_on_both_dies(database) -> None:
    algo, stack = rig(database)
    data = bytes(range(256)) * 64  # 16 KiB, half on each die
    image = MemoryImage.from_segments([(DIE - 8192, data)])
    plan = plan_program(algo.geometry, image, "auto")
    algo.erase_blocks(plan.erase, nothing)
    algo.program(plan.writes, nothing)
    assert bytes(stack.dies[0].memory[DIE - 8192 : DIE]) == data[:8192]
    assert bytes(stack.dies[1].memory[0:8192]) == data[8192:]  # the upper die, at its 0
    assert bytes(stack.dies[0].memory[0:8192]) == b"\xff" * 8192  # nothing wrapped round
    assert algo.read(DIE - 8192, len(data), nothing) == data  # one read, split at the boundary
    programs = [(die, frame[1:5]) for die, frame in stack.frames if frame[:1] == b"\x02"]
    assert programs[0] == (0, (DIE - 8192).to_bytes(4, "big"))
    assert programs[-1] == (1, (8192 - 256).to_bytes(4, "big"))


def test_die_select_goes_out_only_when_the_die_changes(database) -> None:
    algo, stack = rig(database)
    stack.frames.clear()
    algo.program(
        [(0x100, b"\x01"), (0x200, b"\x02"), (DIE, b"\x03"), (DIE + 0x100, b"\x04")], nothing
    )
    selects = [frame for _, frame in stack.frames if frame[:1] == b"\xc2"]
    assert selects == [b"\xc2\x00", b"\xc2\x01"]  # once per change (prepare left die 1)
    algo.read(0, 16, nothing)
    assert [frame for _, frame in stack.frames if frame[:1] == b"\xc2"][-1] == b"\xc2\x00"


def test_the_chip_erase_erases_each_die(database) -> None:
    algo, stack = rig(database)
    stack.dies[0].memory[5] = stack.dies[1].memory[7] = 0x00
    algo.erase_chip()
    erases = [die for die, frame in stack.frames if frame == b"\xc7"]
    assert erases == [0, 1]
    assert stack.memory[5] == 0xFF and stack.memory[DIE + 7] == 0xFF
    assert stack.memory[DIE - 2 : DIE + 2] == b"\xff" * 4


def test_protection_is_read_and_cleared_on_every_die(database) -> None:
    algo, stack = rig(database)
    stack.dies[1].sr1 = 0x1C  # only the upper die protected
    state = algo.protection()
    assert state.protected and state.description.startswith("die 1:")
    algo.unprotect()
    assert not algo.protection().protected
    algo.protect()
    assert all(die.sr1 & 0x7C == 0x7C for die in stack.dies)


def test_the_model_accepts_die_select_while_a_die_is_busy(database) -> None:
    device = database.get(PART)
    stack = DieStack(device, SimClock(Timing("max")))
    stack.transaction(b"\x06", 0)
    stack.transaction(b"\xc7", 0)  # die 0 erases for seconds
    assert stack.transaction(b"\x05", 1)[0] & 1
    stack.transaction(b"\xc2\x01", 0)
    assert stack.active == 1 and not stack.transaction(b"\x05", 1)[0] & 1  # die 1 is idle
    stack.transaction(b"\xc2\x07", 0)  # no die 7: ignored
    assert stack.active == 1
    stack.power_cycle()
    assert stack.active == 0


def test_a_fault_address_lands_on_its_die(database) -> None:
    from app.hal.sim.spi_nor_chip import ChipFaults

    device = database.get(PART)
    stack = DieStack(device, SimClock(Timing("instant")), faults=ChipFaults(verify_address=DIE + 4))
    assert stack.dies[0].faults.verify_address is None
    assert stack.dies[1].faults.verify_address == 4


def test_cli_programs_across_the_boundary_with_a_full_erase(capsys, tmp_path: Path) -> None:
    image = tmp_path / "fw.bin"
    image.write_bytes(bytes(range(1, 256)) * 300)
    argv = ["--programmer", "sim://?sites=2&fault=2:verify@0x2000010", "--device", PART]
    code = main(["program", *argv, "--base", hex(DIE - 0x8000), str(image)])
    out = capsys.readouterr().out
    assert code != 0 and "1 passed, 1 failed" in out and "FAIL at verify" in out, out
    assert "0x2000010" in out  # the failing address is the global one


def _entry() -> dict:
    doc = json.loads(DB.read_text())
    return copy.deepcopy(next(d for d in doc["devices"] if d["id"] == PART))


def test_die_select_needs_dies(capsys, tmp_path: Path) -> None:
    bad = _entry()
    del bad["dies"]
    code, out = validate_entry(capsys, tmp_path, bad)
    assert code == 2 and "die_select: die select needs dies" in out, out


def test_die_select_needs_the_chip_erase_and_page_program(capsys, tmp_path: Path) -> None:
    bad = _entry()
    bad["erase"] = [e for e in bad["erase"] if e["size_bytes"] != "chip"]
    bad["write_mode"] = "byte"
    code, out = validate_entry(capsys, tmp_path, bad)
    assert code == 2 and "needs its chip erase" in out and "page-program parts only" in out, out
