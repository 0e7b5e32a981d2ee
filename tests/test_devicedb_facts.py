"""Typed device facts: every DB entry loads into them, defaults and hex parsing live in
app.devicedb.entry_reader only, and a bad value is named by file and JSON path."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from test_devicedb_validation import (  # tests/ is on sys.path (rootdir conftest)
    eeprom_entry,
    spi_entry,
    stm32_entry,
    write_db,
)

from app.algorithms import get_algorithm
from app.devicedb import Device, FactsError, Family, validate_paths
from app.devicedb.entry_reader import parse_hex
from app.devicedb.facts import (
    CortexMFacts,
    DataFlashFacts,
    FourByteMode,
    I2cEepromFacts,
    MemoryLayout,
    MicrowireFacts,
    SectorRun,
    SpiEepromFacts,
    SpiNorFacts,
    StatusBit,
    Stm32Facts,
    Timing,
)

FAMILY_FACTS = {
    Family.SPI_NOR: SpiNorFacts,
    Family.I2C_EEPROM: I2cEepromFacts,
    Family.STM32_UART: Stm32Facts,
    Family.SPI_EEPROM: SpiEepromFacts,
    Family.DATAFLASH: DataFlashFacts,
    Family.MICROWIRE: MicrowireFacts,
    Family.CORTEX_M: CortexMFacts,
}


def device(entry: dict[str, Any]) -> Device:
    """A Device from a JSON entry, as the loader builds it."""
    return Device.from_raw(entry, "test.json")


# -- the installed database ---------------------------------------------------------


def test_every_entry_loads_into_typed_facts(database) -> None:
    assert len(database) > 400
    for dev in database:
        assert isinstance(dev.family, Family)
        assert isinstance(dev.facts, FAMILY_FACTS[dev.family]), dev.id
        assert 0 <= dev.erased_value <= 0xFF and dev.erased_value in (0x00, 0xFF)
        low, high = dev.voltage_mv
        assert 900 <= low <= high <= 7000
        facts = dev.facts
        if isinstance(facts, SpiNorFacts):
            if facts.id_command == "rdid":
                assert len(facts.jedec_id) == 3 and dev.jedec_id == dev.raw["ids"]["jedec"]
            else:  # RES or REMS instead of RDID: no JEDEC ID to index the part by
                assert facts.jedec_id == b"" and not dev.jedec_id
                assert facts.id_answer == bytes.fromhex(dev.raw["ids"][facts.id_command])
            die_erases = facts.dies > 1 and not facts.die_select  # die select: C7h a die
            if dev.raw.get("no_chip_erase") or die_erases:  # block or die erases only
                assert facts.chip_erase is None
            else:
                assert facts.chip_erase is not None and facts.chip_erase.size is None
            assert facts.dies == dev.raw.get("dies", 1)
            assert all(dev.size_bytes % (op.size or 0) == 0 for op in facts.block_erases)
            assert (facts.four_byte_mode is None) == (facts.address_bytes == 3)
            assert dev.max_clock_hz
        elif isinstance(facts, I2cEepromFacts | SpiEepromFacts):
            assert facts.write_cycle.ms_typ <= facts.write_cycle.ms_max
            assert dev.max_clock_hz
        elif isinstance(facts, DataFlashFacts):
            page = facts.binary_page_size or facts.page_size
            assert dev.size_bytes == facts.pages * page
            assert dev.address_range == (0, facts.pages * facts.page_size)
            assert dev.jedec_id == dev.raw["ids"]["jedec"] and dev.max_clock_hz
        elif isinstance(facts, MicrowireFacts):
            assert (
                facts.word_bits == dev.raw["organisation"]
                and dev.size_bytes % facts.word_bytes == 0
            )
            assert dev.address_range == (0, dev.size_bytes) and not dev.jedec_id
            assert facts.write_cycle.ms_typ <= facts.write_cycle.ms_max and dev.max_clock_hz
        else:
            assert facts.flash.size == dev.size_bytes
            assert facts.flash.sectors[-1].end == dev.size_bytes
            assert dev.address_range == (facts.flash_base, facts.flash_base + dev.size_bytes)
            assert dev.max_clock_hz is None
        # its algorithm builds a geometry from the facts alone (no bus needed for that)
        geometry = get_algorithm(dev.algorithm)(None, dev).geometry
        assert geometry.size == dev.size_bytes and geometry.erased_value == dev.erased_value


def test_facts_are_frozen_and_hashable(database) -> None:
    dev = database.get("winbond.w25q128jv")
    with pytest.raises(dataclasses.FrozenInstanceError):
        dev.size_bytes = 1  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        dev.facts.page_size = 1  # type: ignore[misc]
    assert len({dev, database.get("winbond.w25q128jv")}) == 1


def test_facts_as_names_the_wrong_family(database) -> None:
    dev = database.get("microchip.24lc256")
    assert dev.facts_as(I2cEepromFacts).page_size == 64
    with pytest.raises(TypeError, match=r"microchip\.24lc256 is of family i2c-eeprom, not spi-nor"):
        dev.facts_as(SpiNorFacts)


# -- parsing and defaults -----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [("0xD8", 0xD8), ("0x08000000", 0x0800_0000), ("EF4018", 0xEF4018), ("0X1f", 0x1F)],
)
def test_parse_hex(text: str, value: int) -> None:
    assert parse_hex(text) == value


@pytest.mark.parametrize("text", ["", "0x", "zz", "0x12 ", "-0x1", "1_0"])
def test_parse_hex_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="is not a hex number"):
        parse_hex(text)


def test_spi_nor_facts_and_their_defaults() -> None:
    entry = spi_entry()
    for key in ("sfdp", "unique_id"):
        entry.pop(key, None)
    dev = device(entry)
    facts = dev.facts_as(SpiNorFacts)
    assert facts.jedec_id == b"\xef\x40\x18" and facts.extended_id == b""
    assert facts.legacy_rdid is None
    assert [op.opcode for op in facts.block_erases] == [0x20, 0x52, 0xD8]
    assert facts.chip_erase is not None and facts.chip_erase.opcode == 0xC7
    assert facts.block_erases[0].timing == Timing(45, 400)
    assert facts.protection.bp_mask == 0x7C
    assert facts.protection.quad_enable == StatusBit(2, 1)
    assert facts.protection.status_protect == StatusBit(1, 7)
    assert not facts.protection.global_unlock
    assert facts.protection.status_write == Timing(5, 15)  # no field: the one default
    assert (facts.sfdp, facts.unique_id, facts.four_byte_mode) == (False, None, None)
    assert dev.erased_value == 0xFF and dev.max_clock_hz == 133_000_000

    entry.update(
        ids={"jedec": "EF4019", "extended": "4D01", "legacy_rdid": "0x18"},
        size_bytes=32 << 20,
        address_bytes=4,
        four_byte_mode="opcodes",
    )
    entry["status"]["unlock"] = "global-0x98"
    facts = device(entry).facts_as(SpiNorFacts)
    assert facts.extended_id == b"\x4d\x01" and facts.legacy_rdid == 0x18
    assert facts.four_byte_mode is FourByteMode.OPCODES and facts.protection.global_unlock


def test_eeprom_typical_write_cycle_defaults_to_the_maximum() -> None:
    entry = eeprom_entry()
    entry.pop("write_cycle_ms_typ", None)
    facts = device(entry).facts_as(I2cEepromFacts)
    assert facts.write_cycle == Timing(entry["write_cycle_ms_max"], entry["write_cycle_ms_max"])
    entry["write_cycle_ms_typ"] = 3
    assert device(entry).facts_as(I2cEepromFacts).write_cycle.ms_typ == 3


def test_stm32_facts_and_non_uniform_sectors() -> None:
    entry = stm32_entry()
    entry["bootloader"].pop("ram_reserved_bytes", None)
    entry["bootloader"].pop("usart", None)
    dev = device(entry)
    facts = dev.facts_as(Stm32Facts)
    assert facts.pid == 0x413 and facts.flash_base == 0x0800_0000 == dev.memory_base
    assert facts.bootloader.extended_erase and 0x44 in facts.bootloader.commands
    assert (facts.bootloader.ram_reserved_bytes, facts.bootloader.usarts) == (0, ())
    sectors = facts.flash.sectors
    assert [s.size // 1024 for s in sectors[:6]] == [16, 16, 16, 16, 64, 128]
    assert sectors[4].start == 0x10000 and sectors[5].start == 0x20000


def test_memory_layout_numbers_and_spans() -> None:
    layout = MemoryLayout((SectorRun(4, 0x4000), SectorRun(1, 0x10000), SectorRun(3, 0x20000)))
    assert layout.size == 0x80000
    assert layout.numbers_in(0x4000, 0xC000) == range(1, 3)
    assert layout.numbers_in(0x3FFF, 0x4001) == range(0, 2)
    assert layout.numbers_in(0xF000, 0x30000) == range(3, 6)
    assert layout.numbers_in(0x100, 0x100) == range(0)
    assert layout.spans([1, 2, 4, 6]) == [(0x4000, 0xC000), (0x10000, 0x20000), (0x40000, 0x60000)]
    assert MemoryLayout.uniform(0x10000, 0x400).numbers_in(0x800, 0xC01) == range(2, 4)


# -- bad values are named by their JSON path ----------------------------------------


@pytest.mark.parametrize(
    ("change", "path", "reason"),
    [
        (lambda e: e["erase"][1].update(opcode="0xZZ"), ("erase", 1, "opcode"), "not a hex"),
        (lambda e: e["status"].update(qe="bit6"), ("status", "qe"), "not a status bit"),
        (lambda e: e.pop("page_size_bytes"), (), "missing required field 'page_size_bytes'"),
        (lambda e: e.update(family="nand"), ("family",), "'nand' is not a family"),
        (lambda e: e["ids"].update(jedec="EF40Z8"), ("ids", "jedec"), "not whole bytes"),
    ],
)
def test_bad_value_raises_with_its_path(change, path: tuple, reason: str) -> None:
    entry = spi_entry()
    change(entry)
    with pytest.raises(FactsError, match=reason) as err:
        device(entry)
    assert err.value.path == path


def test_a_value_the_schema_missed_is_reported_with_file_and_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The facts reader is the last line: without the schema, a bad bootloader command
    still comes back as a validation message like the schema's own."""
    import app.devicedb.validation as validation

    monkeypatch.setattr(validation, "schema_errors", lambda _name, _doc: iter(()))
    entry = stm32_entry()
    entry["bootloader"]["commands"][2] = "0xG2"
    path = write_db(tmp_path / "db", entry)
    assert validate_paths([tmp_path / "db"]) == [
        f"{path}: $.devices[0].bootloader.commands[2]: '0xG2' is not a hex number"
    ]


def test_swd_facts_reach_the_parts_that_have_them(database) -> None:
    """STM32 entries with an "swd" block and the Cortex-M family carry SwdFacts; the
    database identifies a part by its SWD ID register as by its other IDs."""
    f103 = database.get("st.stm32f10x-md")
    assert f103.swd is not None and f103.swd.controller == "stm32f1"
    assert (f103.swd.id_address, f103.swd.id_values) == (0xE0042000, (0x410,))
    assert database.get("st.stm32f10x-xl").swd is None  # two flash controllers: not yet
    nrf = database.get("nordic.nrf52840")
    assert nrf.swd is not None and nrf.swd.controller == "nrf52" and nrf.memory_base == 0
    found = database.identify("swd", "E0042000:410")
    assert [d.id for d in found.candidates] == ["st.stm32f10x-md"]
    assert [d.id for d in database.identify("swd", "1000005C:72").candidates] == [
        "nordic.nrf51822-xxaa"
    ]
    with pytest.raises(Exception, match="give the ID register and its value in hex"):
        database.identify("swd", "E0042000")
