"""The flash loader's machine code (app.algorithms.flash_loader, hand-encoded from the
ARMv6-M ARM) against the GNU assembler on the same program text, where Debian's
binutils-arm-none-eabi is installed (CI installs it): the encodings are checked by a
tool that is not ours. And the simulated core (app.hal.sim.thumb) runs a loop it was
not written from, to its BKPT."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from app.algorithms.flash_loader import assemble

AS = shutil.which("arm-none-eabi-as")
OBJCOPY = shutil.which("arm-none-eabi-objcopy")


def source(accesses: int, size: int, ready_when_set: bool) -> str:
    load, store = ("ldr", "str") if size == 4 else ("ldrh", "strh")
    moves = "".join(
        f"    {load} r6, [r0, #{k * size}]\n    {store} r6, [r1, #{k * size}]\n"
        for k in range(accesses)
    )
    wait = "beq" if ready_when_set else "bne"
    unit = accesses * size
    return (
        ".syntax unified\n.thumb\n.cpu cortex-m0\n"
        f"loop:\n{moves}"
        "wait:\n    ldr r7, [r3, #0]\n    tst r7, r4\n"
        f"    {wait} wait\n    tst r7, r5\n    bne done\n"
        f"    adds r0, #{unit}\n    adds r1, #{unit}\n    subs r2, #1\n    bne loop\n"
        "done:\n    bkpt #0\n"
    )


@pytest.mark.skipif(AS is None or OBJCOPY is None, reason="binutils-arm-none-eabi is not installed")
@pytest.mark.parametrize(
    ("accesses", "size", "ready_when_set"),
    [(1, 2, False), (1, 4, False), (2, 4, False), (1, 4, True)],
    ids=["F0/F1/F3 half-words", "F2/F4 words", "G0/G4/L4 double-words", "nRF NVMC"],
)
def test_the_loader_is_what_gnu_as_makes_of_its_source(
    tmp_path: Path, accesses: int, size: int, ready_when_set: bool
) -> None:
    asm = tmp_path / "loader.s"
    asm.write_text(source(accesses, size, ready_when_set))
    obj, raw = tmp_path / "loader.o", tmp_path / "loader.bin"
    subprocess.run([AS, "-o", str(obj), str(asm)], check=True, capture_output=True)
    subprocess.run([OBJCOPY, "-O", "binary", str(obj), str(raw)], check=True)
    ours = assemble(accesses, size, ready_when_set)
    theirs = raw.read_bytes()
    assert ours[: len(theirs)] == theirs
    assert ours[len(theirs) :] in (b"", b"\x00\xbf")  # our NOP pad to a whole word


def gnu_assembled(tmp_path: Path, text: str) -> bytes:
    asm = tmp_path / "code.s"
    asm.write_text(".syntax unified\n.thumb\n.cpu cortex-m0\n" + text)
    obj, raw = tmp_path / "code.o", tmp_path / "code.bin"
    subprocess.run([AS, "-o", str(obj), str(asm)], check=True, capture_output=True)
    subprocess.run([OBJCOPY, "-O", "binary", str(obj), str(raw)], check=True)
    code = raw.read_bytes()
    return code + b"\x00\xbf" * (len(code) % 4 // 2)


@pytest.mark.skipif(AS is None or OBJCOPY is None, reason="binutils-arm-none-eabi is not installed")
def test_the_simulated_core_runs_code_from_ram_to_its_bkpt_and_locks_up_on_a_fault(
    tmp_path: Path,
) -> None:
    from app.hal.debug_port import DebugPort
    from app.hal.sim.clock import SimClock, Timing
    from app.hal.sim.mcu_target import McuSpec, make_mcu
    from app.hal.swd import PacketLink

    spec = McuSpec("stm32f1", 0x0800_0000, (1024,) * 64, 0x2000_0000, 20480, 0x410)
    mcu = make_mcu(spec, SimClock(Timing()), Timing())
    port = DebugPort(PacketLink(mcu))
    port.connect()
    port.write_words(0xE000_EDF0, [0xA05F_0003])  # halt

    def run(code: bytes, registers: dict[int, int]) -> int:
        words = [int.from_bytes(code[i : i + 4], "little") for i in range(0, len(code), 4)]
        port.write_words(0x2000_0000, words)
        for register, value in {**registers, 15: 0x2000_0000, 16: 1 << 24}.items():
            port.write_words(0xE000_EDF8, [value])
            port.write_words(0xE000_EDF4, [(1 << 16) | register])
        port.write_words(0xE000_EDF0, [0xA05F_0001])  # resume
        return port.read_words(0xE000_EDF0, 1)[0]

    loop = "movs r0, #0\nloop:\n adds r0, #3\n subs r1, #1\n bne loop\n bkpt #7\n"
    status = run(gnu_assembled(tmp_path, loop), {1: 50})
    assert status & (1 << 17) and not status & (1 << 19)  # halted at its BKPT, no lockup
    port.write_words(0xE000_EDF4, [0])  # read R0
    assert port.read_words(0xE000_EDF8, 1)[0] == 150
    fault = "ldr r2, [r3, #0]\n bkpt #0\n"  # r3: nothing mapped there
    status = run(gnu_assembled(tmp_path, fault), {3: 0x6000_0000})
    assert status & (1 << 19)  # S_LOCKUP
