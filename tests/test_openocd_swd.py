"""The independent proof: the real OpenOCD (Debian's 0.12.0, `apt-get install openocd`)
drives the simulated SW-DP/MEM-AP (app.hal.sim.swd_target) over SWD, bit by bit, through
an emulated Bus Pirate on a pty (tests/openocd_buspirate.py, tests/swd_bitlevel.py),
identifies it, writes a 4 KiB image into its RAM and reads it back. Nothing of
app.hal.swd or app.hal.debug_port is involved: if the target model or the bit-level
front strayed from ADIv5, OpenOCD would say so. Skipped where OpenOCD is not installed.

OpenOCD runs with -c commands only (no configuration file from this machine). 0.12.0's
verify_image needs a target that checksums memory, which a mem_ap target cannot, so
the image is read back with dump_image and compared here.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest.importorskip("pty", reason="the emulated Bus Pirate needs a POSIX pseudo-terminal")

from openocd_buspirate import PtyBusPirate  # tests/ is on sys.path (rootdir)
from swd_bitlevel import SwdBitFront

from app.hal.sim.swd_target import SimSwdTarget

OPENOCD = shutil.which("openocd") or "/usr/bin/openocd"
RAM = 0x2000_0000
DPIDR = 0x1BA01477
IMAGE_SIZE = 4096
TIMEOUT_S = 20


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


def run_openocd(openocd: str, target: SimSwdTarget, commands: list[str], cwd: Path) -> Run:
    front = SwdBitFront(target)
    with PtyBusPirate(front) as pirate:
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
            "target create chip.mem mem_ap -dap chip.dap -ap-num 0",
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
