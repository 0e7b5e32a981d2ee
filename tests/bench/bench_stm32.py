"""STM32 through the ROM bootloader (ST AN3155): Socketeer against stm32flash (issue 14).

Both tools write and verify the same random 64 KiB image at 0x08000000 on the AN3155
emulator (tests/stm32_emulator.py) of an STM32F103 medium-density part (1 KiB pages) on a
pseudo-terminal, at 115200 baud, each as a user runs it: a new process, start-up and
device lookup included, timed from its start to its exit.

- Socketeer: ``socketeer program --device st.stm32f10x-md --programmer
  uart://PTY?parity=none --no-backup --format bin --base 0x08000000 IMAGE`` (no
  automatic backup of the in-system part: stm32flash keeps none): erases only the 64
  pages the image touches (one Erase command), writes 256-byte blocks, then reads
  everything back to verify.
- stm32flash: ``stm32flash -b 115200 -m 8n1 -w IMAGE -v PTY``: erases only the pages
  the image touches too (one Erase command), reads each 256-byte block back right
  after writing it.
- For reference, not the same operation: ``socketeer program ... --full-erase`` erases
  the whole flash with one mass erase (F1: 20 ms typical, against 20 ms for each page).

Emulator modes: ``instant`` (answers at once: what each tool costs on the host),
``typical`` (each ACK waits the F1 datasheet's 20 ms page erase and 52.5 us half-word
program, as a real part; bytes take no time on a pty) and ``wire`` (typical, and every
byte also takes its 10 bit times at 115200 baud, as on a real wire; ~16 s a run). Before
each run the emulator is reset (the tools start with 0x7F) and its flash refilled with
old firmware. One unmeasured warm-up run each (Socketeer's device-database cache), then
runs alternate Socketeer / stm32flash; medians are printed. Goal: ratio <= 1.00.

Run: .venv/bin/python tests/bench/bench_stm32.py [--runs N] [--modes instant,typical,wire]
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the emulator

from stm32_emulator import STM32F10X_MD, Stm32Emulator

DEVICE = "st.stm32f10x-md"
FLASH = 0x0800_0000
SIZE = 64 * 1024
BAUD = 115200
FULL = "socketeer --full-erase"


def socketeer_command() -> list[str]:
    """The installed console script next to this Python, else ``python -m app``."""
    script = shutil.which("socketeer", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "app"]


def timed_run(
    emu: Stm32Emulator, command: list[str], old: bytes, image: bytes
) -> tuple[float, int]:
    """Wall seconds of one whole run, and the bootloader commands it sent."""
    emu.reset()  # the tools start with 0x7F, as after a reset into the bootloader
    emu.load_flash(FLASH, old)
    seen = emu.commands_seen
    t0 = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{command[0]} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    if emu.flash_bytes(FLASH, SIZE) != image:
        raise SystemExit(f"{command[0]}: the emulator's flash does not hold the image")
    return wall, emu.commands_seen - seen


def compare(mode: str, runs: int, image_file: Path, image: bytes, stm32flash: str | None) -> None:
    old = bytes(random.Random(2).randrange(255) for _ in range(STM32F10X_MD.flash_bytes))
    timing = "instant" if mode == "instant" else "typical"
    with Stm32Emulator(STM32F10X_MD, timing=timing, wire=mode == "wire") as emu:
        url = f"uart://{emu.port}?parity=none"
        ours = [
            *socketeer_command(),
            *("program", "--device", DEVICE, "--programmer", url, "--no-backup"),
            *("--format", "bin", "--base", f"0x{FLASH:08X}", str(image_file)),
        ]
        theirs = [stm32flash or "", "-b", str(BAUD), "-m", "8n1", "-w", str(image_file), "-v"]
        theirs.append(emu.port)
        tools: list[tuple[str, list[str]]] = [("socketeer", ours)]
        if stm32flash:
            tools.append(("stm32flash", theirs))
        tools.append((FULL, [*ours, "--full-erase"]))
        times: dict[str, list[float]] = {name: [] for name, _ in tools}
        commands: dict[str, int] = {}
        busy: dict[str, float] = {}
        wire: dict[str, float] = {}
        for _name, command in tools:  # warm-up, not counted
            timed_run(emu, command, old[:SIZE], image)
        for _ in range(runs):
            for name, command in tools:
                before, on_wire = emu.busy_s, emu.wire_s
                wall, commands[name] = timed_run(emu, command, old[:SIZE], image)
                times[name].append(wall)
                busy[name] = emu.busy_s - before
                wire[name] = emu.wire_s - on_wire
        mine = statistics.median(times["socketeer"])
        print(f"[{mode}] 64 KiB write + verify, STM32F103 emulator, median of {runs}:")
        line = "    {:<24} {:6.2f} s  ({} commands, flash busy {:.2f} s, wire {:.2f} s)"
        for name in times:
            print(
                line.format(
                    name, statistics.median(times[name]), commands[name], busy[name], wire[name]
                )
            )
        if not stm32flash:
            print("    stm32flash not found, own figures only")
            return
        ref = statistics.median(times["stm32flash"])
        ratios = [a / b for a, b in zip(times["socketeer"], times["stm32flash"], strict=True)]
        print(
            f"    ratio socketeer / stm32flash: {mine / ref:.2f}"
            f" (median of pairs {statistics.median(ratios):.2f}; goal <= 1.00)"
        )
        full = statistics.median(times[FULL]) / ref
        print(f"    ratio {FULL} / stm32flash: {full:.2f} (erases all 128 pages: not the same)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--runs", type=int, default=5, help="measured runs per tool (5)")
    parser.add_argument(
        "--modes",
        default="instant,typical",
        help="emulator modes, comma-separated: instant, typical, wire (default instant,typical)",
    )
    args = parser.parse_args(argv)
    modes = args.modes.split(",")
    for mode in modes:
        if mode not in ("instant", "typical", "wire"):
            parser.error(f"unknown mode {mode!r}")
    stm32flash = shutil.which("stm32flash")
    if stm32flash is None:
        print("stm32flash not found, own figures only (apt-get install stm32flash)")
    image = bytes(random.Random(1).randrange(256) for _ in range(SIZE))
    with tempfile.TemporaryDirectory() as tmp:
        image_file = Path(tmp) / "firmware.bin"
        image_file.write_bytes(image)
        for mode in modes:
            compare(mode, args.runs, image_file, image, stm32flash)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
