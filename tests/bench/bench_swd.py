"""SWD transactions per KiB programmed and the simulated time at a 4 MHz SWD clock,
against the minimum each flash controller allows (issue 18).

For one part of each flash controller kind, a blank part on a simulated SWD site
(app.hal.sim.mcu_target behind DebugPort + PacketLink, as a packet-level probe) is
connected and halted, and 64 KiB of random data (or the whole part,
if smaller) are programmed; only the programming is measured. The target's clock is
virtual and advances with every SWD packet (its bits at 4 MHz) and with the flash's
datasheet typical times, so "simulated time" is what the same transfer costs on a
probe that clocks SWD at 4 MHz and never waits on USB.

Both ways are measured: through the flash loader the part's core runs from RAM (the
default: the probe writes the data into RAM once, in blocks), and unit by unit from the
host (loader=0: each unit written and read back through the debug port). The core runs
at 8 MHz (the STM32's reset clock) in the model.

The floor: the data crossing the wire once. From the host that is one data write per
programming access (a half-word on STM32 F0/F1/F3, a word on F2/F4 at x32, G0/G4/L4
and nRF) and nothing else, i.e. 1024/access transactions a KiB; a loader's buffer goes
as words, 256 a KiB. Its time is the larger of those packets' bits at 4 MHz and the
flash's own programming time (the units x tPROG typical).

Transactions are the packets answered OK; WAIT answers (the target's bus stalled while
the flash programs a unit) are counted apart: their time is in the simulated time.

Run: .venv/bin/python tests/bench/bench_swd.py [--kib 64]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from types import SimpleNamespace

from app.algorithms import flash_loader
from app.algorithms.cortex_m_swd import CortexMSwd
from app.devicedb import load_database
from app.hal.debug_port import DebugPort
from app.hal.sim.clock import SimClock, Timing
from app.hal.sim.mcu_target import make_mcu
from app.hal.sim.swd_sites import mcu_spec
from app.hal.swd import PacketLink
from app.hal.swd_site import SwdBus, SwdSiteOptions

SWD_HZ = 4_000_000
PACKET_BITS = 8 + 1 + 3 + 33 + 1 + 2  # request, turnaround, ACK, data+parity, turnaround, idle
PARTS = {
    "STM32F103 (F0/F1/F3: half-words)": "st.stm32f10x-md",
    "STM32F407 (F2/F4: words, x32)": "st.stm32f40x-f41x",
    "STM32L43x (G0/G4/L4: double-words)": "st.stm32l43x-l44x",
    "nRF52832 (NVMC: words)": "nordic.nrf52832-xxaa",
}


def measure(label: str, device_id: str, kib: int, loader: bool) -> None:
    device = load_database().get(device_id)
    size = min(kib * 1024, device.size_bytes)
    clock = SimClock(Timing())  # virtual: never sleeps; the part takes typical times
    mcu = make_mcu(mcu_spec(device), clock, Timing("typ"), swd_hz=SWD_HZ)
    # the host's pauses pass on the part's clock too (time.sleep would stop its world)
    flash_loader.time = SimpleNamespace(sleep=clock.advance, monotonic=clock.now)  # type: ignore[assignment]
    link = PacketLink(mcu)
    options = SwdSiteOptions(SWD_HZ, False, True, True, True, loader=loader)
    algo = CortexMSwd(SwdBus(DebugPort(link), options), device)
    assert algo.identify().present  # a fresh part: its flash is erased
    data = random.Random(18).randbytes(size)
    page = algo.geometry.page_size
    writes = [(offset, data[offset : offset + page]) for offset in range(0, size, page)]
    how = "flash loader in RAM" if loader else "unit by unit from the host (loader=0)"

    packets, waits, virtual = link.packets, link.waits, clock.now()
    wall = time.perf_counter()
    algo.program(writes, lambda _n: None)
    wall = time.perf_counter() - wall
    waits = link.waits - waits
    packets, virtual = link.packets - packets - waits, clock.now() - virtual
    readback = algo.read(0, size, lambda _n: None)
    assert readback == data, "read back differs"

    # the data crosses the wire once, as words, through a loader; from the host each
    # programming access is its own write (a half-word on F0/F1/F3)
    access = 4 if loader or algo.flash.unit != 2 else 2
    floor_packets = 1024 / access
    units = size / algo.flash.unit
    flash_s = units * algo.flash.times.program.ms_typ / 1000
    floor_s = max(size / 1024 * floor_packets * PACKET_BITS / SWD_HZ, flash_s)
    per_kib = packets / (size / 1024)
    print(f"{label}, {size // 1024} KiB programmed, {how}:")
    print(
        f"  transactions {per_kib:7.1f}/KiB (floor {floor_packets:5.0f}) = "
        f"{per_kib / floor_packets:.2f}x the floor; WAIT answers {waits / (size / 1024):.0f}/KiB"
        " (the bus stalled while the flash programs)"
    )
    print(
        f"  simulated time at 4 MHz {virtual * 1000:8.1f} ms (floor {floor_s * 1000:7.1f} ms:"
        f" flash alone {flash_s * 1000:.1f} ms) = {virtual / floor_s:.2f}x the floor"
        f"  ({wall:.2f} s in-process)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--kib", type=int, default=64, help="KiB to program (64)")
    args = parser.parse_args(argv)
    for label, device_id in PARTS.items():
        for loader in (True, False):
            measure(label, device_id, args.kib, loader)
    return 0


if __name__ == "__main__":
    sys.exit(main())
