"""The cortex_m_swd algorithm through an ST-LINK: the packet-level fake probe
(tests/stlink_fake.py) in front of the simulator's Cortex-M parts (app.hal.sim.mcu_target),
one part per flash-controller family of issue 18; program and verify through the whole
engine, with the probe's USB transfers counted."""

from __future__ import annotations

import random

import pytest
from stlink_fake import FakeStlinkUsb  # tests/ is on sys.path (rootdir)

from app.core.image import MemoryImage
from app.engine.site_runner import CycleSpec
from app.engine.station import Station
from app.hal.programmer import open_programmer
from app.hal.sim.clock import SimClock, Timing

# the SWD simulator and the cortex_m_swd algorithm's engine helpers (on main)
mcu_target = pytest.importorskip("app.hal.sim.mcu_target")
swd_sites = pytest.importorskip("app.hal.sim.swd_sites")
cycle = pytest.importorskip("app.engine.cycle")

FAMILIES = [
    ("st.stm32f10x-md", "V2J37"),  # half-words
    ("st.stm32f40x-f41x", "V3"),  # program size, sectors
    ("st.stm32g07x-g08x", "V2J37"),  # double-words
    ("st.stm32l43x-l44x", "V3"),
    ("nordic.nrf52832-xxaa", "V3"),  # NVMC words, READY flag
]


@pytest.mark.parametrize("loader", ["1", "0"], ids=["flash-loader", "host-driven"])
@pytest.mark.parametrize(("device_id", "variant"), FAMILIES)
def test_a_part_programs_and_verifies_through_an_st_link(
    database, device_id, variant, loader
) -> None:
    device = database.get(device_id)
    timing = Timing("instant")
    mcu = mcu_target.make_mcu(swd_sites.mcu_spec(device), SimClock(timing), timing)
    usb = FakeStlinkUsb()
    probe = usb.add(mcu, variant)
    programmer = open_programmer(
        f"stlink://?loader={loader}", device=device, database=database, stlink_backend=usb.backend()
    )
    station = Station(programmer, lambda _e: None, cycle.part_names(database))
    data = random.Random(device_id).randbytes(4096)
    image = MemoryImage.from_segments([(device.memory_base, data)])
    probe.bulk_out = probe.bulk_in = 0
    result = station.run(CycleSpec("program", device, image, backup=False)).results[0]
    assert result.passed, result.message
    assert bytes(mcu.flash[:4096]) == data
    # through the flash loader: the data in 1 KiB memory commands (4 transfers each),
    # the loader's registers and a few polls; from the host: each flash unit written
    # and read back, 8 transfers a half-word (a write and a read command), 4 a word (one
    # RW_MISC batch; a double-word's first word as a plain write, also 4); plus
    # connect, identify, erase and the verify read-back either way
    transfers = probe.bulk_out + probe.bulk_in
    if loader == "1":
        assert transfers < 4 * 4 + 200 + 600
    else:
        units, per_unit = (2048, 8) if device_id == "st.stm32f10x-md" else (1024, 4)
        assert units * per_unit < transfers < units * per_unit + 600
