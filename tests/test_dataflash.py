"""AT45 DataFlash (issue 15 item 1): the dataflash algorithm against the bus-level chip
model in both page modes (DataFlash pages of 264/528/1056 bytes, power-of-two pages),
segmented addresses, the status register (ready, density code, page mode, protection),
faults, the database checks and the CLI end to end."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.algorithms.dataflash import device_address
from app.cli import main
from app.core.image import MemoryImage
from app.devicedb import load_database
from app.engine.cycle import part_names
from app.engine.site_runner import CycleSpec
from app.engine.station import Station
from app.hal.programmer import open_programmer
from app.hal.sim.clock import SimClock, Timing
from app.hal.sim.dataflash_chip import DataFlashChip

DATAFLASH = [d.id for d in load_database(use_overlay=False).search("", family="dataflash")]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _cycle(database, device_id: str, image: MemoryImage, url: str = "sim://", **spec):
    device = database.get(device_id)
    programmer = open_programmer(url, device=device, database=database)
    station = Station(programmer, lambda _e: None, part_names(database))
    result = station.run(CycleSpec("program", device, image, **spec)).results[0]
    return result, programmer.sites[0].chip


@pytest.mark.parametrize("device_id", DATAFLASH)
@pytest.mark.parametrize("pages", ["dataflash", "binary"])
def test_every_part_programs_and_verifies_at_both_ends_in_either_mode(
    database, device_id: str, pages: str
) -> None:
    facts = database.get(device_id).facts
    binary = pages == "binary" and facts.binary_page_size is not None
    page = facts.binary_page_size if binary else facts.page_size
    size = facts.pages * page
    rng = random.Random(device_id + pages)
    # odd start and length across a page boundary, and the last bytes of the part
    first, last = rng.randbytes(page + 77), rng.randbytes(300)
    image = MemoryImage.from_segments([(page - 33, first), (size - 300, last)])
    result, chip = _cycle(database, device_id, image, f"sim://?pages={pages}")
    assert result.passed, result.message
    assert bytes(chip.memory[page - 33 : page - 33 + len(first)]) == first
    assert bytes(chip.memory[size - 300 : size]) == last
    assert chip.memory[page - 34] == 0xFF  # the byte before the image stays erased


def test_a_528_byte_page_part_uses_segmented_addresses_on_the_bus(database) -> None:
    """AT45DB161D with 528-byte pages: page N starts at N << 10 on the bus."""
    image = MemoryImage.from_segments([(528 * 5, b"\xa5" * 528)])
    result, chip = _cycle(database, "atmel.at45db161d", image)
    assert result.passed, result.message
    assert bytes(chip.memory[528 * 5 : 528 * 6]) == b"\xa5" * 528
    # read through the model at the segmented address of page 5
    assert chip.transaction(bytes([0xE8, 0x00, 5 << 2, 0x00]) + bytes(4), 4) == b"\xa5" * 4


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from([(264, 256), (528, 512), (1056, 1024)]),
    st.integers(0, 8191),
    st.integers(0, 1055),
)
def test_segmented_addresses_keep_page_and_offset_apart(pair, page_number, offset) -> None:
    page, binary_page = pair
    offset %= page
    address = device_address(page_number * page + offset, page, binary=False)
    bits = (page - 1).bit_length()
    assert address >> bits == page_number and address & ((1 << bits) - 1) == offset
    linear = page_number * binary_page + offset % binary_page
    assert device_address(linear, binary_page, binary=True) == linear


def test_an_image_for_the_larger_mode_is_refused_by_a_part_set_to_binary_pages(
    capsys, tmp_path: Path
) -> None:
    image = tmp_path / "dump.bin"
    image.write_bytes(bytes(range(256)) * (8192 * 528 // 256))  # a 528-byte-page dump
    url = "sim://?pages=binary&timing=instant"
    code, out, _ = run(capsys, "program", "--device", "atmel.at45db321d", "--programmer", url,
                       str(image))  # fmt: skip
    assert code == 1
    assert "FAIL at plan: the image reaches 0x420000, past the 4,194,304-byte memory" in out
    assert "(512-byte pages)" in out
    code, out, _ = run(capsys, "program", "--device", "atmel.at45db321d", "--programmer",
                       "sim://?timing=instant", str(image))  # fmt: skip
    assert code == 0 and "1 passed" in out


def test_a_read_of_a_dataflash_mode_part_is_the_whole_528_byte_page_memory(
    capsys, tmp_path: Path
) -> None:
    out_file = tmp_path / "read.bin"
    code, out, err = run(capsys, "read", "--device", "atmel.at45db011d", "--programmer",
                         "sim://", str(out_file))  # fmt: skip
    assert code == 0, out + err
    assert out_file.stat().st_size == 512 * 264
    code, out, err = run(capsys, "read", "--device", "atmel.at45db011d", "--programmer",
                         "sim://?pages=binary", str(tmp_path / "b.bin"))  # fmt: skip
    assert code == 0 and (tmp_path / "b.bin").stat().st_size == 512 * 256


def test_another_density_answering_this_id_is_caught_by_the_status_register(database) -> None:
    """A 32 Mbit part (density code 1101b) answering the 16 Mbit ID: prepare refuses."""
    image = MemoryImage.from_segments([(0, b"\x00")])
    url = "sim://?chip=atmel.at45db321d&jedec=1F2600"
    result, _chip = _cycle(database, "atmel.at45db161d", image, url)
    assert not result.passed
    assert "density code 0xD, not this part's 0xB" in result.message


def test_sector_protection_is_reported_and_cleared_only_when_asked(database) -> None:
    image = MemoryImage.from_segments([(0, b"\x12\x34")])
    url = "sim://?fault=1:protected"
    result, _chip = _cycle(database, "atmel.at45db041d", image, url)
    assert not result.passed and "sector protection enabled" in result.message
    result, chip = _cycle(database, "atmel.at45db041d", image, url, unprotect=True)
    assert result.passed, result.message
    assert not chip.protected and bytes(chip.memory[0:2]) == b"\x12\x34"


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("verify@0x20", "verify failed at 0x20"),
        ("erase-fail@0x10", "did not erase"),
        ("busy-timeout", "timed out"),
        ("wrong-id", "unexpected part: found ID"),
        ("empty", "no part"),
    ],
)
def test_faults_fail_the_cycle_with_the_reason(database, fault: str, message: str) -> None:
    image = MemoryImage.from_segments([(0, bytes(range(64)))])
    url = f"sim://?fault=1:{fault}&chip=atmel.at45db081d"
    result, _chip = _cycle(database, "atmel.at45db081d", image, url, erase_mode="full")
    assert not result.passed
    assert message in result.message.lower() or message in result.message


def test_buffer_program_without_erase_only_clears_bits(database) -> None:
    """88h ANDs the buffer into the page (the datasheet's program without erase); 83h
    erases the page first; 84h wraps inside the buffer."""
    chip = DataFlashChip(database.get("atmel.at45db021d"), SimClock(Timing("instant")))
    chip.transaction(b"\x84\x00\x00\x00" + b"\x0f" * 264, 0)
    chip.transaction(b"\x88\x00\x02\x00", 0)  # page 1 (264-byte pages: 9 offset bits)
    chip.transaction(b"\x84\x00\x00\x00" + b"\xf0" * 264, 0)
    chip.transaction(b"\x88\x00\x02\x00", 0)
    assert bytes(chip.memory[264:528]) == b"\x00" * 264
    chip.transaction(b"\x83\x00\x02\x00", 0)  # with built-in erase: the buffer as it is
    assert bytes(chip.memory[264:528]) == b"\xf0" * 264
    chip.transaction(b"\x84\x00\x01\x06" + b"\x11\x22\x33\x44", 0)  # offset 262: wraps
    assert chip.buffer[262:264] == b"\x11\x22" and chip.buffer[0:2] == b"\x33\x44"
    status = chip.transaction(b"\xd7", 2)
    assert status == bytes([0x80 | 0x5 << 2]) * 2  # ready, density 0101b, DataFlash pages


def test_devices_show_and_by_id_name_the_dataflash_facts(capsys) -> None:
    code, out, _ = run(capsys, "devices", "show", "atmel.at45db642d")
    assert code == 0
    assert "8,192 x 1056 bytes" in out and "or x 1024 once set" in out
    assert "density code 1111b" in out
    code, out, _ = run(capsys, "devices", "by-id", "1F2800")
    assert code == 0 and "AT45DB642D" in out
    code, out, _ = run(capsys, "devices", "search", "AT45DB321C")
    assert code == 0 and "atmel.at45db321c" in out


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"binary_page_size_bytes": 256}, "256 does not pair with page_size_bytes 528"),
        ({"size_bytes": 4096 * 528}, "is not pages x the power-of-two page (2097152)"),
        ({"pages": 4100}, "4100 is not a whole number of 8-page blocks"),
        ({"density_code": "0x1B"}, "more than the 4 bits"),
        ({"page_erase_ms_typ": 50}, "50 is above page_erase_ms_max 35"),
    ],
)
def test_the_validator_checks_the_dataflash_fields(capsys, tmp_path: Path, change, message):
    entry = dict(load_database(use_overlay=False).get("atmel.at45db161d").raw)
    entry.update(change)
    folder = tmp_path / "dataflash"
    folder.mkdir()
    doc = {"family": "dataflash", "vendor": "Atmel", "devices": [entry]}
    (folder / "atmel.json").write_text(json.dumps(doc))
    code, out, err = run(capsys, "devices", "validate", str(folder / "atmel.json"))
    assert code == 2
    assert message in out + err
