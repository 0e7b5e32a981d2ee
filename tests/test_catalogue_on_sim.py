"""Every SPI NOR part of the catalogue programs and verifies on the simulator: data at
the first and the last bytes of the part (4-byte addressing on the large ones), through
the algorithm the entry names and the erase commands it lists."""

from __future__ import annotations

import random

import pytest

from app.core.image import MemoryImage
from app.devicedb import load_database
from app.engine.cycle import part_names
from app.engine.site_runner import CycleSpec
from app.engine.station import Station
from app.hal.programmer import open_programmer

SPI_NOR = [d.id for d in load_database(use_overlay=False).search("", family="spi-nor")]


@pytest.mark.parametrize("device_id", SPI_NOR)
def test_the_part_programs_and_verifies_at_both_ends(database, device_id: str) -> None:
    device = database.get(device_id)
    size = device.size_bytes
    rng = random.Random(device_id)
    image = MemoryImage.from_segments([(0, rng.randbytes(300)), (size - 300, rng.randbytes(300))])
    programmer = open_programmer("sim://", device=device, database=database)
    station = Station(programmer, lambda _e: None, part_names(database))
    spec = CycleSpec("program", device, image, unprotect=True)  # SST26: protected at power-up
    result = station.run(spec).results[0]
    assert result.passed, result.message
    chip = programmer.sites[0].chip
    assert chip is not None
    assert bytes(chip.memory[size - 300 : size]) == image.read(size - 300, size)
