"""Read one device entry's JSON into typed facts: every hex parse and every default of
the device database is here, and nowhere else.

The JSON Schema has checked the entry before (the loader builds facts only for entries
without problems), but the reader does not rely on it: a missing or malformed value
raises :class:`FactsError` with the value's JSON path, which the validator reports as
``<file>: $.devices[3].erase[1].opcode: ...`` like its own messages.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.devicedb.facts import (
    SWD_CORES,
    SWD_SERIES,
    BootloaderFacts,
    CortexMFacts,
    DataFlashFacts,
    EraseLayout,
    EraseOp,
    FamilyFacts,
    FourByteMode,
    I2cEepromFacts,
    KnownId,
    MemoryLayout,
    MicrowireFacts,
    SectorRun,
    SpiEepromFacts,
    SpiNorFacts,
    SpiNorProtection,
    StatusBit,
    Stm32Facts,
    SwdFacts,
    Timing,
    UniqueIdRead,
    VoltageRange,
)
from app.devicedb.families import Family

JsonPath = tuple[str | int, ...]

#: ``status.unlock`` value of the SST26 Block-Protection Register
GLOBAL_UNLOCK = "global-0x98"
#: the ID commands of parts without RDID (9Fh): ``ids`` key -> what the command is
ID_COMMANDS = {"res": "RES (ABh)", "rems": "REMS (90h)", "atmel_rdid": "Atmel RDID (15h)"}
#: status register write time (tW): the DB has no field for it, every listed part is
#: within these
STATUS_WRITE = Timing(5.0, 15.0)
#: bootloader.erase values
EXTENDED_ERASE, LEGACY_ERASE = "extended", "legacy"


class FactsError(ValueError):
    """A value of a device entry that cannot become a fact. ``path`` is relative to the
    entry, e.g. ("erase", 1, "opcode"); ``str()`` is the reason alone."""

    def __init__(self, path: JsonPath, reason: str) -> None:
        super().__init__(reason)
        self.path = path
        self.reason = reason


def parse_hex(text: str) -> int:
    """ "0xD8", "0x08000000" or "EF4018" -> int. Raises ValueError if not hex."""
    digits = text[2:] if text[:2] in ("0x", "0X") else text
    if not digits or not all(c in "0123456789abcdefABCDEF" for c in digits):
        raise ValueError(f"{text!r} is not a hex number")
    return int(digits, 16)


class EntryReader:
    """Typed reads of one JSON object, each naming its path when the value is wrong."""

    def __init__(self, obj: Mapping[str, Any], path: JsonPath = ()) -> None:
        self.obj = obj
        self.path = path

    def error(self, key: str | int, reason: str) -> FactsError:
        return FactsError((*self.path, key), reason)

    def has(self, key: str) -> bool:
        return self.obj.get(key) is not None

    def value(self, key: str) -> Any:
        if key not in self.obj:
            raise FactsError(self.path, f"missing required field '{key}'")
        return self.obj[key]

    def text(self, key: str) -> str:
        value = self.value(key)
        if not isinstance(value, str):
            raise self.error(key, f"{value!r} is not a string")
        return value

    def optional_text(self, key: str) -> str | None:
        return self.text(key) if self.has(key) else None

    def integer(self, key: str, minimum: int = 0, *, default: int | None = None) -> int:
        if default is not None and not self.has(key):
            return default
        value = self.value(key)
        if type(value) is not int or value < minimum:
            raise self.error(key, f"{value!r} is not an integer >= {minimum}")
        return value

    def number(self, key: str) -> float:
        value = self.value(key)
        if type(value) not in (int, float) or value <= 0:
            raise self.error(key, f"{value!r} is not a positive number")
        return float(value)

    def flag(self, key: str, default: bool) -> bool:
        value = self.obj.get(key, default)
        if not isinstance(value, bool):
            raise self.error(key, f"{value!r} is not true or false")
        return value

    def hex_int(self, key: str) -> int:
        return _hex_value(self.value(key), (*self.path, key))

    def hex_ints(self, key: str) -> tuple[int, ...]:
        """A list of hex strings, e.g. ["0x00", "0x44"]."""
        values = self.value(key)
        if not isinstance(values, list):
            raise self.error(key, f"{values!r} is not a list of hex strings")
        return tuple(_hex_value(v, (*self.path, key, i)) for i, v in enumerate(values))

    def hex_bytes(self, key: str) -> bytes:
        """Hex digits without 0x, e.g. "EF4018" -> b"\\xef\\x40\\x18"."""
        value = self.text(key)
        try:
            return bytes.fromhex(value)
        except ValueError:
            raise self.error(key, f"{value!r} is not whole bytes of hex digits") from None

    def strings(self, key: str) -> tuple[str, ...]:
        """A list of strings; missing means empty."""
        values = self.obj.get(key, [])
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise self.error(key, f"{values!r} is not a list of strings")
        return tuple(values)

    def child(self, key: str) -> EntryReader:
        value = self.value(key)
        if not isinstance(value, Mapping):
            raise self.error(key, f"{value!r} is not an object")
        return EntryReader(value, (*self.path, key))

    def children(self, key: str) -> list[EntryReader]:
        values = self.value(key)
        if not isinstance(values, list):
            raise self.error(key, f"{values!r} is not a list")
        out = []
        for index, value in enumerate(values):
            if not isinstance(value, Mapping):
                raise FactsError((*self.path, key, index), f"{value!r} is not an object")
            out.append(EntryReader(value, (*self.path, key, index)))
        return out

    def timing(self, typ_key: str, max_key: str) -> Timing:
        """Typical and maximum time; a missing typical time is the maximum."""
        high = self.number(max_key)
        return Timing(self.number(typ_key) if typ_key in self.obj else high, high)

    def family(self) -> Family:
        value = self.value("family")
        try:
            return Family(value)
        except ValueError:
            known = ", ".join(Family)
            raise self.error("family", f"{value!r} is not a family ({known})") from None

    def voltage(self) -> VoltageRange:
        value = self.value("voltage_mv")
        if not (isinstance(value, list) and len(value) == 2 and all(type(v) is int for v in value)):
            raise self.error("voltage_mv", f"{value!r} is not [min, max] in millivolts")
        return VoltageRange(value[0], value[1])


def _hex_value(value: object, path: JsonPath) -> int:
    if not isinstance(value, str):
        raise FactsError(path, f"{value!r} is not a hex string")
    try:
        return parse_hex(value)
    except ValueError as err:
        raise FactsError(path, str(err)) from None


def family_facts(entry: EntryReader, family: Family) -> FamilyFacts:
    """The family part of a device entry."""
    if family is Family.SPI_NOR:
        return spi_nor_facts(entry)
    if family is Family.I2C_EEPROM:
        return i2c_eeprom_facts(entry)
    if family is Family.SPI_EEPROM:
        return spi_eeprom_facts(entry)
    if family is Family.DATAFLASH:
        return dataflash_facts(entry)
    if family is Family.MICROWIRE:
        return microwire_facts(entry)
    if family is Family.CORTEX_M:
        return cortex_m_facts(entry)
    return stm32_facts(entry)


def spi_nor_facts(entry: EntryReader) -> SpiNorFacts:
    ids = entry.child("ids")
    status = entry.child("status")
    mode = entry.optional_text("four_byte_mode")
    command = next((c for c in ID_COMMANDS if ids.has(c)), "rdid")
    return SpiNorFacts(
        jedec_id=ids.hex_bytes("jedec") if command == "rdid" else b"",
        extended_id=ids.hex_bytes("extended") if ids.has("extended") else b"",
        legacy_rdid=ids.hex_int("legacy_rdid") if ids.has("legacy_rdid") else None,
        page_size=entry.integer("page_size_bytes", 1),
        erase_ops=tuple(_erase_op(op) for op in entry.children("erase")),
        page_program=entry.timing("page_program_ms_typ", "page_program_ms_max"),
        address_bytes=entry.integer("address_bytes", 3),
        four_byte_mode=None if mode is None else _four_byte_mode(entry, mode),
        protection=SpiNorProtection(
            bp_mask=status.hex_int("bp_mask"),
            quad_enable=_status_bit(status, "qe"),
            status_protect=_status_bit(status, "srp"),
            global_unlock=status.optional_text("unlock") == GLOBAL_UNLOCK,
            status_write=STATUS_WRITE,
            status_write_enable=status.hex_int("write_enable")
            if status.has("write_enable")
            else 0x06,
            locked_at_power_up=status.flag("locked_at_power_up", False),
        ),
        sfdp=entry.flag("sfdp", False),
        unique_id=_unique_id(entry.child("unique_id")) if entry.has("unique_id") else None,
        id_command=command,
        id_answer=ids.hex_bytes(command) if command != "rdid" else b"",
        write_mode=entry.optional_text("write_mode") or "page",
        erase_layout=tuple(_erase_layout(item) for item in entry.children("erase_layout"))
        if entry.has("erase_layout")
        else (),
        also_answers=tuple(
            KnownId(item.hex_bytes("jedec"), item.text("source"))
            for item in ids.children("also_answers")
        )
        if ids.has("also_answers")
        else (),
        dies=entry.integer("dies", 2, default=1),
        die_select=entry.optional_text("die_select") == "c2",
    )


def _erase_layout(item: EntryReader) -> EraseLayout:
    runs = item.value("blocks")
    return EraseLayout(
        opcode=item.hex_int("opcode"),
        runs=tuple((int(size), int(count)) for size, count in runs),
    )


def _erase_op(op: EntryReader) -> EraseOp:
    size = op.value("size_bytes")
    return EraseOp(
        opcode=op.hex_int("opcode"),
        size=None if size == "chip" else op.integer("size_bytes", 1),
        timing=op.timing("ms_typ", "ms_max"),
    )


def _four_byte_mode(entry: EntryReader, mode: str) -> FourByteMode:
    try:
        return FourByteMode(mode)
    except ValueError:
        known = ", ".join(FourByteMode)
        raise entry.error("four_byte_mode", f"{mode!r} is not one of {known}") from None


def _status_bit(status: EntryReader, key: str) -> StatusBit | None:
    """ "sr2.1" -> StatusBit(2, 1); null -> None."""
    text = status.optional_text(key)
    if text is None:
        return None
    register, _, bit = text.removeprefix("sr").partition(".")
    if not (text.startswith("sr") and register.isdigit() and bit.isdigit()):
        raise status.error(key, f"{text!r} is not a status bit like 'sr2.1'")
    return StatusBit(int(register), int(bit))


def _unique_id(uid: EntryReader) -> UniqueIdRead:
    return UniqueIdRead(
        opcode=uid.hex_int("opcode"),
        dummy_bytes=uid.integer("dummy_bytes"),
        length=uid.integer("length_bytes", 1),
    )


def i2c_eeprom_facts(entry: EntryReader) -> I2cEepromFacts:
    return I2cEepromFacts(
        page_size=entry.integer("page_size_bytes", 1),
        address_bytes=entry.integer("address_bytes", 1),
        block_bits=entry.integer("block_bits"),
        write_cycle=entry.timing("write_cycle_ms_typ", "write_cycle_ms_max"),
    )


def spi_eeprom_facts(entry: EntryReader) -> SpiEepromFacts:
    status = entry.child("status")
    return SpiEepromFacts(
        page_size=entry.integer("page_size_bytes", 1),
        address_bytes=entry.integer("address_bytes", 1),
        address_bit_in_opcode=entry.flag("address_bit_in_opcode", False),
        write_cycle=entry.timing("write_cycle_ms_typ", "write_cycle_ms_max"),
        bp_mask=status.hex_int("bp_mask"),
        wpen=status.flag("wpen", False),
    )


def dataflash_facts(entry: EntryReader) -> DataFlashFacts:
    binary = entry.obj.get("binary_page_size_bytes")
    return DataFlashFacts(
        jedec_id=entry.child("ids").hex_bytes("jedec"),
        pages=entry.integer("pages", 1),
        page_size=entry.integer("page_size_bytes", 1),
        binary_page_size=None if binary is None else entry.integer("binary_page_size_bytes", 1),
        density_code=entry.hex_int("density_code") if entry.has("density_code") else None,
        page_program=entry.timing("page_program_ms_typ", "page_program_ms_max"),
        page_erase=entry.timing("page_erase_ms_typ", "page_erase_ms_max"),
        block_erase=entry.timing("block_erase_ms_typ", "block_erase_ms_max"),
        chip_erase=entry.timing("chip_erase_ms_typ", "chip_erase_ms_max"),
    )


def microwire_facts(entry: EntryReader) -> MicrowireFacts:
    return MicrowireFacts(
        word_bits=entry.integer("organisation", 8),
        address_bits=entry.integer("address_bits", 2),
        org_pin=entry.flag("org_pin", False),
        write_cycle=entry.timing("write_cycle_ms_typ", "write_cycle_ms_max"),
        erase_all=entry.timing("erase_all_ms_typ", "erase_all_ms_max"),
    )


def stm32_facts(entry: EntryReader) -> Stm32Facts:
    loader = entry.child("bootloader")
    erase = loader.text("erase")
    if erase not in (EXTENDED_ERASE, LEGACY_ERASE):
        raise loader.error("erase", f"{erase!r} is not '{EXTENDED_ERASE}' or '{LEGACY_ERASE}'")
    return Stm32Facts(
        pid=entry.child("ids").hex_int("stm32_pid"),
        flash_base=entry.hex_int("flash_base"),
        flash=_flash_layout(entry),
        ram_base=entry.hex_int("ram_base"),
        ram_bytes=entry.integer("ram_bytes", 1),
        bootloader=BootloaderFacts(
            version=loader.hex_int("version"),
            extended_erase=erase == EXTENDED_ERASE,
            commands=frozenset(loader.hex_ints("commands")),
            ram_reserved_bytes=loader.integer("ram_reserved_bytes", default=0),
            usarts=loader.strings("usart"),
        ),
        swd=swd_facts(entry.child("swd")) if entry.has("swd") else None,
    )


def _flash_layout(entry: EntryReader) -> MemoryLayout:
    runs = entry.children("flash_layout")
    return MemoryLayout(
        tuple(SectorRun(run.integer("count", 1), run.integer("size_bytes", 1)) for run in runs)
    )


def swd_facts(swd: EntryReader) -> SwdFacts:
    series, core = swd.text("series"), swd.text("core")
    if series not in SWD_SERIES:
        raise swd.error("series", f"{series!r} is not one of {', '.join(SWD_SERIES)}")
    if core not in SWD_CORES:
        raise swd.error("core", f"{core!r} is not one of {', '.join(SWD_CORES)}")
    return SwdFacts(
        series=series,
        core=core,
        id_address=swd.hex_int("id_register"),
        id_mask=swd.hex_int("id_mask"),
        id_values=tuple(swd.hex_ints("id_values")),
        banks=swd.integer("banks", 1) if swd.has("banks") else 1,
    )


def cortex_m_facts(entry: EntryReader) -> CortexMFacts:
    return CortexMFacts(
        flash_base=entry.hex_int("flash_base"),
        flash=_flash_layout(entry),
        ram_base=entry.hex_int("ram_base"),
        ram_bytes=entry.integer("ram_bytes", 1),
        swd=swd_facts(entry.child("swd")),
    )
