"""Engine against the simulator: real algorithms on bus-level chip models."""

from __future__ import annotations

import os
import threading
from dataclasses import replace

import pytest

from app.algorithms.sfdp import read_sfdp
from app.algorithms.spi_nor import identify_jedec
from app.core.image import MemoryImage
from app.devicedb import Family
from app.devicedb.facts import I2cEepromFacts, SpiNorFacts
from app.engine.cycle import part_names
from app.engine.events import CycleFinished, LogEvent, ProgressEvent
from app.engine.site_runner import CycleSpec
from app.engine.station import Station
from app.hal.programmer import open_programmer


def station(url: str, device, database, events: list | None = None) -> Station:
    programmer = open_programmer(url, device=device, database=database)
    sink = events.append if events is not None else (lambda _e: None)

    return Station(programmer, sink, part_names(database))


def random_image(size: int, base: int = 0, seed: int = 7) -> MemoryImage:
    rnd = bytearray(os.urandom(size))
    # No 0xFF bytes: every byte must really be programmed (makes fault tests exact).
    rnd = bytes(b if b != 0xFF else 0x5A for b in rnd)
    return MemoryImage.from_bytes(rnd, base)


@pytest.fixture(scope="module")
def w25q128(database):
    return database.get("winbond.w25q128jv")


FAULT_EXPECTATIONS = {
    "empty": ("fail", "socket", "socket empty"),
    "contact": ("fail", "identify", "no part or bad contact: ID reads 000000"),
    "wrong-id": ("fail", "identify", "unexpected part: found ID"),
    "stuck-bit": ("fail", "verify", "verify failed at 0x100: expected"),
    "verify": ("fail", "verify", "verify failed at 0x100: expected"),
    "busy-timeout": ("fail", "erase", "timed out"),
    "link-drop": ("link-lost", None, "link lost during"),
    "protected": ("fail", "protection", "write-protected"),
    "erase-fail": ("fail", "erase", "did not erase: 0x100: expected 0xFF, found 0x00"),
}


@pytest.mark.parametrize("kind", sorted(FAULT_EXPECTATIONS))
def test_each_fault_fails_only_its_site(kind: str, database, w25q128) -> None:
    st = station(f"sim://?sites=4&fault=3:{kind}@0x100", w25q128, database)
    image = random_image(96 * 1024)
    outcome = st.run(CycleSpec("program", w25q128, image))
    by_site = {r.site: r for r in outcome.results}
    for site in (1, 2, 4):
        assert by_site[site].passed, by_site[site].message
    status, step, text = FAULT_EXPECTATIONS[kind]
    failed = by_site[3]
    assert failed.status == status
    if step is not None:
        assert failed.failed_step == step
    assert text in failed.message


def test_verify_failure_details(database, w25q128) -> None:
    st = station("sim://?sites=2&fault=2:verify@0x1234", w25q128, database)
    image = random_image(8192)
    result = st.run(CycleSpec("program", w25q128, image)).results[1]
    m = result.mismatch
    assert m is not None and result.address == 0x1234 == m.address
    assert m.expected == image.read(0x1234, 0x1235)[0]
    assert m.found == m.expected ^ 0x10
    assert m.differing_bytes == 1 and m.bits_set + m.bits_cleared == 1


def test_wrong_id_names_the_part_found(database, w25q128) -> None:
    st = station("sim://?sites=1&fault=1:wrong-id", w25q128, database)
    result = st.run(CycleSpec("program", w25q128, random_image(4096))).results[0]
    assert result.chip_id and not result.chip_id.startswith("EF4018")
    assert result.candidates, "the ID found is a real DB part, so it must be named"
    assert result.candidates[0] in result.message


def test_ambiguous_id_is_reported_with_all_candidates(database) -> None:
    by_id: dict[str, list] = {}
    for dev in database.search("", family="spi-nor"):
        by_id.setdefault(dev.jedec_id, []).append(dev)
    shared = next(devs for devs in by_id.values() if len(devs) > 1)
    expected_device = next(
        d
        for d in database.search("", family="spi-nor")
        if d.jedec_id not in (shared[0].jedec_id,)
        and d.size_bytes == shared[0].size_bytes
        and d.family == "spi-nor"
    )
    # Put the shared-ID part in the socket while the job expects another part.
    st = station(f"sim://?sites=1&chip={shared[0].id}", expected_device, database)
    result = st.run(CycleSpec("verify", expected_device, random_image(256))).results[0]
    assert result.failed_step == "identify"
    assert f"{len(shared)} parts share this ID" in result.message
    assert len(result.candidates) == len(shared)


def test_read_gives_back_what_was_programmed(database, w25q128) -> None:
    st = station("sim://?sites=1", w25q128, database)
    image = MemoryImage.from_segments([(0x10, b"hello"), (0x20000, b"world" * 100)])
    assert st.run(CycleSpec("program", w25q128, image)).all_passed
    # The same programmer keeps its parts: read them back.
    result = st.run(CycleSpec("read", w25q128, read_range=(0, 0x30000))).results[0]
    assert result.passed and result.data is not None
    assert result.data[0x10:0x15] == b"hello"
    assert result.data[0x20000:0x20005] == b"world"
    assert result.data[0:0x10] == b"\xff" * 0x10
    assert st.run(CycleSpec("verify", w25q128, image)).all_passed
    assert not st.run(CycleSpec("blank-check", w25q128)).all_passed
    assert st.run(CycleSpec("erase", w25q128)).all_passed
    assert st.run(CycleSpec("blank-check", w25q128)).all_passed


@pytest.mark.parametrize("mode", ["b7", "opcodes", "bank-register"])
def test_four_byte_parts_program_above_16_mib(database, mode: str) -> None:
    device = next(
        d
        for d in database.search("", family=Family.SPI_NOR)
        if d.facts_as(SpiNorFacts).four_byte_mode == mode
    )
    st = station("sim://?sites=1", device, database)
    image = MemoryImage.from_segments([(0x100, b"low"), (0x1000100, b"above 16 MiB")])
    outcome = st.run(CycleSpec("program", device, image))
    assert outcome.all_passed, outcome.results[0].message
    chip = st.programmer.sites[0].chip
    assert bytes(chip.memory[0x1000100:0x100010C]) == b"above 16 MiB"
    assert bytes(chip.memory[0x100:0x103]) == b"low"


def test_sfdp_identifies_a_part_the_database_does_not_know(database, w25q128) -> None:
    facts = replace(w25q128.facts, jedec_id=bytes.fromhex("AA5518"), sfdp=True)
    unknown = replace(w25q128, facts=facts)
    programmer = open_programmer("sim://?sites=1", device=unknown, database=database)
    site = programmer.sites[0]
    site.power(True)
    ident = identify_jedec(site.spi)
    assert ident.hex == "AA5518" and not database.identify("jedec", "AA5518").found
    table = read_sfdp(site.spi)
    assert table is not None
    assert table.size_bytes == w25q128.size_bytes
    assert table.page_size_bytes == 256
    assert [size for _, size in table.erase_types] == [4096, 32768, 65536]


def test_protection_can_be_cleared_and_set(database, w25q128) -> None:
    st = station("sim://?sites=1&fault=1:protected", w25q128, database)
    image = random_image(4096)
    spec = CycleSpec("program", w25q128, image, unprotect=True, protect=True)
    result = st.run(spec).results[0]
    assert result.passed, result.message
    chip = st.programmer.sites[0].chip
    assert chip.sr1 & chip.bp_mask == chip.bp_mask  # protect set every BP bit again


def test_cancel_mid_program_leaves_a_clear_result(database, w25q128) -> None:
    events: list = []
    st = station("sim://?sites=2&timing=typ", w25q128, database, events)
    image = random_image(256 * 1024)
    done = threading.Event()
    outcome = {}

    def run() -> None:
        outcome["r"] = st.run(CycleSpec("program", w25q128, image, erase_mode="none"))
        done.set()

    worker = threading.Thread(target=run)
    worker.start()
    while not any(
        isinstance(e, ProgressEvent) and e.phase == "program" and e.done > 0 for e in list(events)
    ):
        assert worker.is_alive()
        threading.Event().wait(0.01)
    st.stop()
    assert done.wait(10), "station did not stop"
    worker.join()
    results = outcome["r"].results
    assert all(r.status == "cancelled" for r in results)
    assert all("program" in r.message for r in results)
    finished = [e for e in events if isinstance(e, CycleFinished)]
    assert len(finished) == 2
    assert not [t for t in threading.enumerate() if t.name.startswith("site-")]


def test_i2c_eeprom_programs_across_block_bits(database) -> None:
    device = next(
        d
        for d in database.search("", family=Family.I2C_EEPROM)
        if d.facts_as(I2cEepromFacts).block_bits == 3
    )
    st = station("sim://?sites=2&fault=2:stuck-bit@0x700", device, database)
    image = random_image(device.size_bytes)
    outcome = st.run(CycleSpec("program", device, image))
    assert outcome.results[0].passed, outcome.results[0].message
    assert outcome.results[1].failed_step == "verify"
    assert outcome.results[1].address == 0x700
    chip = st.programmer.sites[0].chip
    assert bytes(chip.memory) == image.read(0, device.size_bytes)


def test_sst26_block_protection_register(database) -> None:
    device = database.get("microchip.sst26vf016b")
    st = station("sim://?sites=1", device, database)
    image = random_image(4096)
    refused = st.run(CycleSpec("program", device, image)).results[0]
    assert refused.failed_step == "protection" and "block-protection register" in refused.message
    result = st.run(CycleSpec("program", device, image, unprotect=True)).results[0]
    assert result.passed, result.message


def test_several_boards_make_one_station(database, w25q128) -> None:
    url = "sim://?sites=2 ; sim://?sites=3&fault=1:verify@0x10"
    st = station(url, w25q128, database)
    assert st.site_numbers == [1, 2, 3, 4, 5]
    outcome = st.run(CycleSpec("program", w25q128, random_image(4096)))
    assert [r.passed for r in outcome.results] == [True, True, False, True, True]
    assert outcome.results[2].site == 3 and outcome.results[2].failed_step == "verify"


def test_skip_matching_leaves_blocks_that_already_hold_the_image(database, w25q128) -> None:
    events: list = []
    st = station("sim://?sites=1", w25q128, database, events)
    image = random_image(64 * 1024)
    assert st.run(CycleSpec("program", w25q128, image)).all_passed
    changed = image.copy()
    changed.add(0x8000, b"\x00\x01\x02", last_wins=True)
    result = st.run(CycleSpec("program", w25q128, changed, skip_matching=True)).results[0]
    assert result.passed
    notes = [e.message for e in events if isinstance(e, LogEvent)]
    assert any("15 block(s) already hold the image" in m for m in notes)
    chip = st.programmer.sites[0].chip
    assert bytes(chip.memory[0x8000:0x8003]) == b"\x00\x01\x02"
