"""The independent proof: the real OpenOCD (Debian's 0.12.0, `apt-get install openocd`)
drives the simulated targets over SWD, bit by bit, through an emulated Bus Pirate on a
pty (tests/openocd_buspirate.py, tests/swd_bitlevel.py). Nothing of app.hal.swd or
app.hal.debug_port is involved: if a target model or the bit-level front strayed from
ADIv5, the Cortex-M3 debug architecture or RM0008, OpenOCD would say so. Skipped where
OpenOCD is not installed.

- A bare SW-DP/MEM-AP over RAM (app.hal.sim.swd_target): OpenOCD identifies it, writes
  a 4 KiB image and reads it back. 0.12.0's verify_image needs a target that checksums
  memory, which a mem_ap target cannot, so the image is read back with dump_image.
- The whole simulated STM32F103 (app.hal.sim.mcu_target, built from the catalogue's
  st.stm32f10x-md entry): OpenOCD's cortex_m target halts it, its stm32f1x flash
  driver reads the device ID and flash size, erases the pages an image touches,
  programs it and verifies it; and the other way round, a part Socketeer's cortex_m_swd
  algorithm programmed is read back by OpenOCD; a part with readout protection is
  seen as protected by both.

OpenOCD runs with -c commands only (no configuration file from this machine). The
cortex_m target has no working area (-work-area-size 0): OpenOCD then programs the
flash with half-word memory writes and BSY polls over the debug port instead of a
loader running on the core, which the model does not execute, and verify_image reads
the flash back instead of running a CRC on the core.

OpenOCD 0.12.0's Bus Pirate driver drops a transaction the target answers WAIT (it
clears the sticky flags and goes on, src/jtag/drivers/buspirate.c
buspirate_swd_write_reg/read_reg), so every run here also checks the part answered no
WAIT: OpenOCD polls the flash's BSY flag before each write, as RM0008 3.3.3 asks, and
never touches the flash while it is busy.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest.importorskip("pty", reason="the emulated Bus Pirate needs a POSIX pseudo-terminal")

from openocd_buspirate import PtyBusPirate  # tests/ is on sys.path (rootdir)
from swd_bitlevel import SwdBitFront

from app.core.image import MemoryImage
from app.engine.cycle import part_names
from app.engine.site_runner import CycleSpec
from app.engine.station import Station
from app.hal.programmer import open_programmer
from app.hal.sim.clock import SimClock, Timing
from app.hal.sim.mcu_target import McuFaults, SimMcu, make_mcu
from app.hal.sim.swd_sites import mcu_spec
from app.hal.sim.swd_target import SimSwdTarget

OPENOCD = shutil.which("openocd") or "/usr/bin/openocd"
RAM = 0x2000_0000
DPIDR = 0x1BA01477
IMAGE_SIZE = 4096
TIMEOUT_S = 20
FLASH = 0x0800_0000
F103 = "st.stm32f10x-md"
F103_IMAGE_SIZE = 3 * 1024 + 200  # three pages and part of a fourth
MEM_AP = ["target create chip.mem mem_ap -dap chip.dap -ap-num 0"]
STM32F1 = [
    "target create chip.cpu cortex_m -dap chip.dap -work-area-size 0",
    f"flash bank chip.flash stm32f1x 0x{FLASH:08x} 0 0 0 chip.cpu",
]


@pytest.fixture(scope="module")
def openocd() -> str:
    if not Path(OPENOCD).exists():
        pytest.skip("OpenOCD is not installed (Debian: apt-get install openocd)")
    listed = subprocess.run(
        [OPENOCD, "-c", "adapter list", "-c", "shutdown"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    if "buspirate" not in listed.stdout + listed.stderr:
        pytest.skip("this OpenOCD was built without the buspirate adapter driver")
    return OPENOCD


@dataclass
class Run:
    returncode: int
    output: str
    seconds: float
    front: SwdBitFront


def run_openocd(
    openocd: str,
    target: SimSwdTarget,
    commands: list[str],
    cwd: Path,
    targets: list[str] = MEM_AP,
    nrst: Callable[[bool], None] | None = None,
) -> Run:
    """OpenOCD with ``targets`` (its target, flash bank and reset_config commands) on
    the DAP, then ``commands``, then shutdown. ``nrst``: the target's reset line, wired
    to the Bus Pirate's AUX pin (OpenOCD's SRST)."""
    front = SwdBitFront(target)
    with PtyBusPirate(front, nrst) as pirate:
        script = [
            # no listening ports: parallel runs (CI jobs, other tests) must not collide
            "gdb_port disabled",
            "tcl_port disabled",
            "telnet_port disabled",
            "adapter driver buspirate",
            f"buspirate port {pirate.path}",
            "transport select swd",
            f"swd newdap chip cpu -expected-id 0x{DPIDR:08x}",
            "dap create chip.dap -chain-position chip.cpu",
            *targets,
            "init",
            # 0.12.0 does not hold an SWD DPIDR to -expected-id: check it here
            "set dpidr [string trim [chip.dap dpreg 0]]",
            f'if {{$dpidr != 0x{DPIDR:08x}}} {{ error "DPIDR $dpidr, expected 0x{DPIDR:08x}" }}',
            *commands,
            "shutdown",
        ]
        args = [openocd]
        for command in script:
            args += ["-c", command]
        started = time.monotonic()
        done = subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT_S, cwd=cwd)
        seconds = time.monotonic() - started
        assert pirate.error is None, f"emulated Bus Pirate failed: {pirate.error!r}"
    return Run(done.returncode, done.stdout + done.stderr, seconds, front)


def image() -> bytes:
    return bytes((n * 7 + 3) & 0xFF for n in range(IMAGE_SIZE))


def test_openocd_identifies_writes_and_reads_back_the_target(openocd, tmp_path) -> None:
    data = image()
    (tmp_path / "image.bin").write_bytes(data)
    target = SimSwdTarget(regions={RAM: bytearray(16 * 1024)})
    run = run_openocd(
        openocd,
        target,
        [
            "chip.dap info 0",
            f"load_image image.bin 0x{RAM:08x} bin",
            f"dump_image readback.bin 0x{RAM:08x} {IMAGE_SIZE}",
            f"mdw 0x{RAM:08x} 4",
        ],
        tmp_path,
    )
    print(f"OpenOCD over the emulated Bus Pirate: {run.seconds:.2f} s")
    assert run.returncode == 0, run.output
    assert f"SWD DPIDR 0x{DPIDR:08x}" in run.output
    assert "AP ID register 0x24770011" in run.output and "Type is MEM-AP AHB3" in run.output
    assert f"downloaded {IMAGE_SIZE} bytes" in run.output
    assert f"dumped {IMAGE_SIZE} bytes" in run.output
    words = " ".join(f"{int.from_bytes(data[n : n + 4], 'little'):08x}" for n in range(0, 16, 4))
    assert f"0x{RAM:08x}: {words}" in run.output
    assert bytes(target.regions[RAM][:IMAGE_SIZE]) == data
    assert (tmp_path / "readback.bin").read_bytes() == data
    assert run.front.collisions == 0 and run.front.parity_errors == 0
    assert run.seconds < TIMEOUT_S


def test_openocd_refuses_a_wrong_idcode(openocd, tmp_path) -> None:
    (tmp_path / "image.bin").write_bytes(image())
    target = SimSwdTarget(regions={RAM: bytearray(16 * 1024)}, idcode=0x2BA01477)
    run = run_openocd(openocd, target, [f"load_image image.bin 0x{RAM:08x} bin"], tmp_path)
    assert run.returncode != 0
    assert "SWD DPIDR 0x2ba01477" in run.output
    assert f"DPIDR 0x2ba01477, expected 0x{DPIDR:08x}" in run.output
    assert target.regions[RAM] == bytearray(16 * 1024)  # nothing was written


# -- a whole STM32F103 ----------------------------------------------------------------


def stm32f103(database, faults: McuFaults | None = None) -> SimMcu:
    """The simulated part of the catalogue entry, on the wall clock: the flash busy for
    its datasheet times (DS5319: 20 ms a page erase, 52.5 us a half-word) in real time,
    as OpenOCD's timeouts expect."""
    timing = Timing("typ")
    spec = mcu_spec(database.get(F103))
    return make_mcu(spec, SimClock(timing), timing, faults or McuFaults())


def test_openocd_probes_programs_and_verifies_a_simulated_stm32f103(
    openocd, database, tmp_path
) -> None:
    mcu = stm32f103(database)
    mcu.flash[5 * 1024 : 6 * 1024] = b"\x5a" * 1024  # a page past the image, kept
    data = random.Random(1).randbytes(F103_IMAGE_SIZE)  # no period that hides a wrap
    (tmp_path / "image.bin").write_bytes(data)
    run = run_openocd(
        openocd,
        mcu,
        [
            "reset halt",
            "flash probe 0",
            f"flash write_image erase image.bin 0x{FLASH:08x}",
            f"verify_image image.bin 0x{FLASH:08x}",
            f"dump_image readback.bin 0x{FLASH:08x} {F103_IMAGE_SIZE}",
        ],
        tmp_path,
        STM32F1,
    )
    print(f"OpenOCD programs {F103_IMAGE_SIZE} bytes of an STM32F103: {run.seconds:.2f} s")
    assert run.returncode == 0, run.output
    assert "Cortex-M3 r1p1 processor detected" in run.output
    assert "halted due to debug-request" in run.output and mcu.halted
    assert "device id = 0x10000410" in run.output  # DBGMCU_IDCODE: REV_ID 0x1000, DEV_ID 0x410
    assert "flash size = 128 KiB" in run.output
    assert f"wrote {F103_IMAGE_SIZE} bytes from file image.bin" in run.output
    assert f"verified {F103_IMAGE_SIZE} bytes" in run.output
    assert bytes(mcu.flash[:F103_IMAGE_SIZE]) == data
    assert mcu.flash[F103_IMAGE_SIZE : 4 * 1024] == b"\xff" * (4 * 1024 - F103_IMAGE_SIZE)
    assert mcu.flash[5 * 1024 : 6 * 1024] == b"\x5a" * 1024  # only touched pages erased
    assert mcu.array.operations == 4 + F103_IMAGE_SIZE // 2  # 4 page erases, the half-words
    assert (tmp_path / "readback.bin").read_bytes() == data
    assert mcu.wait_acks == 0 and run.front.collisions == 0 and run.front.parity_errors == 0
    assert run.seconds < TIMEOUT_S


def test_openocd_reads_back_what_socketeer_programmed(openocd, database, tmp_path) -> None:
    """Two independent implementations on the same memory: Socketeer's cortex_m_swd
    algorithm (DebugPort over PacketLink, the engine's program cycle on sim://)
    programs the part, OpenOCD reads the flash back through its own DAP code."""
    device = database.get(F103)
    programmer = open_programmer("sim://", device=device, database=database)
    station = Station(programmer, lambda _event: None, part_names(database))
    data = random.Random(F103).randbytes(2048)
    image = MemoryImage.from_segments([(FLASH, data)])
    result = station.run(CycleSpec("program", device, image, backup=False)).results[0]
    assert result.passed, result.message
    mcu = programmer.sites[0].mcu
    run = run_openocd(
        openocd,
        mcu,
        ["halt", f"dump_image socketeer.bin 0x{FLASH:08x} {len(data)}"],
        tmp_path,
        STM32F1,
    )
    print(f"OpenOCD reads back 2 KiB Socketeer programmed: {run.seconds:.2f} s")
    assert run.returncode == 0, run.output
    assert f"dumped {len(data)} bytes" in run.output
    assert (tmp_path / "socketeer.bin").read_bytes() == data
    assert mcu.wait_acks == 0


def test_openocd_and_the_model_agree_a_protected_part_is_locked(
    openocd, database, tmp_path
) -> None:
    """RDP level 1 (RDP byte not 0xA5, PM0075 2.4.1): OpenOCD's option byte read says
    so (OBR.RDPRT), and its flash read fails: the model answers debugger reads of
    protected flash with a bus error, which a posted AP read reports as STICKYERR and a
    FAULT on the next AP access (ADIv5), so OpenOCD names the word after the first."""
    mcu = stm32f103(database, McuFaults(protected=True))
    mcu.flash[:4] = b"\x12\x34\x56\x78"  # something to hide
    run = run_openocd(
        openocd,
        mcu,
        [
            "reset halt",
            "flash probe 0",
            "stm32f1x options_read 0",
            f"dump_image locked.bin 0x{FLASH:08x} 16",  # fails, and OpenOCD with it
        ],
        tmp_path,
        STM32F1,
    )
    assert mcu.protected
    assert "read protection: on" in run.output, run.output
    assert run.returncode != 0
    assert f"Failed to read memory at 0x{FLASH + 4:08x}" in run.output
    assert "dumped" not in run.output
    assert mcu.wait_acks == 0


def test_openocd_reaches_a_part_whose_firmware_takes_the_swd_pins_only_under_reset(
    openocd, database, tmp_path
) -> None:
    """The firmware turns SWDIO/SWCLK into GPIOs once it runs (McuFaults
    swd_off_when_running: the port is silent while the core runs). With NRST on the
    Bus Pirate's AUX pin (OpenOCD's SRST), OpenOCD cannot read the DP of the running
    part, and reaches it with connect_assert_srst: under reset the port answers, and
    reset halt stops the core at its reset vector before the firmware can run."""
    srst = "reset_config srst_only srst_nogate"
    faults = McuFaults(swd_off_when_running=True)
    running = stm32f103(database, faults)
    plain = run_openocd(
        openocd, running, ["reset halt"], tmp_path, [*STM32F1, srst], running.set_reset
    )
    assert plain.returncode != 0
    assert "Error connecting DP" in plain.output and not running.halted
    part = stm32f103(database, faults)
    under_reset = run_openocd(
        openocd,
        part,
        ["reset halt", "flash probe 0"],
        tmp_path,
        [*STM32F1, f"{srst} connect_assert_srst"],
        part.set_reset,
    )
    print(f"OpenOCD connects under reset: {under_reset.seconds:.2f} s")
    assert under_reset.returncode == 0, under_reset.output
    assert "halted due to debug-request" in under_reset.output and part.halted
    assert "device id = 0x10000410" in under_reset.output
