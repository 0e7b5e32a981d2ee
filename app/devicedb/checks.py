"""Semantic checks of one device entry: the rules JSON Schema cannot express.

Each check yields (JSON path relative to the entry, message). The checks tolerate
entries that also failed the schema (wrong types are skipped here, since the schema
already reported them), so one run reports every problem of a file.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from app.devicedb.entry_reader import EXTENDED_ERASE, ID_COMMANDS, LEGACY_ERASE, parse_hex
from app.devicedb.families import Family
from app.devicedb.schema import JsonPath

SIXTEEN_MIB = 16 * 1024 * 1024
CHIP_ERASE_OPCODES = frozenset({0xC7, 0x60, 0x62})

Problem = tuple[JsonPath, str]


def _int(value: Any) -> int | None:
    return value if type(value) is int else None


def _num(value: Any) -> float | None:
    return value if type(value) in (int, float) else None


def _hex(value: Any) -> int | None:
    if isinstance(value, str):
        try:
            return parse_hex(value)
        except ValueError:
            return None
    return None


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def entry_problems(entry: Mapping[str, Any]) -> Iterator[Problem]:
    """Every semantic problem of one device entry."""
    yield from _voltage(entry)
    family = entry.get("family")
    if family == Family.SPI_NOR:
        yield from _spi_nor(entry)
    elif family == Family.I2C_EEPROM:
        yield from _i2c_eeprom(entry)
    elif family == Family.STM32_UART:
        yield from _stm32_uart(entry)
    elif family == Family.SPI_EEPROM:
        yield from _spi_eeprom(entry)
    elif family == Family.DATAFLASH:
        yield from _dataflash(entry)
    elif family == Family.MICROWIRE:
        yield from _microwire(entry)


def _voltage(entry: Mapping[str, Any]) -> Iterator[Problem]:
    volts = entry.get("voltage_mv")
    if isinstance(volts, list) and len(volts) == 2:
        low, high = _int(volts[0]), _int(volts[1])
        if low is not None and high is not None and low > high:
            yield ("voltage_mv",), f"min {low} mV is above max {high} mV"


def _typ_max(obj: Mapping[str, Any], typ: str, high: str, path: JsonPath) -> Iterator[Problem]:
    typ_value, max_value = _num(obj.get(typ)), _num(obj.get(high))
    if typ_value is not None and max_value is not None and typ_value > max_value:
        yield (*path, typ), f"{typ_value} is above {high} {max_value}"


def _page_divides(entry: Mapping[str, Any], size: int | None) -> Iterator[Problem]:
    page = _int(entry.get("page_size_bytes"))
    if size and page and size % page:
        yield ("page_size_bytes",), f"{page} does not divide size_bytes {size}"


def _spi_nor(entry: Mapping[str, Any]) -> Iterator[Problem]:
    size = _int(entry.get("size_bytes"))
    yield from _page_divides(entry, size)
    yield from _typ_max(entry, "page_program_ms_typ", "page_program_ms_max", ())
    yield from _erase_table(entry, size)
    yield from _addressing(entry, size)
    yield from _provisional(entry)
    yield from _id_command(entry)
    yield from _also_answers(entry)
    yield from _erase_layout(entry, size)


def _also_answers(entry: Mapping[str, Any]) -> Iterator[Problem]:
    """Other known answers come on top of an RDID ID, each a different one."""
    ids = _dict(entry.get("ids"))
    seen = {ids.get("jedec")}
    for index, known in enumerate(_list(ids.get("also_answers"))):
        jedec = _dict(known).get("jedec")
        if "jedec" not in ids:
            yield ("ids", "also_answers"), "needs ids.jedec: other answers are RDID answers"
            return
        if jedec in seen:
            yield ("ids", "also_answers", index, "jedec"), f"{jedec} is listed already"
        seen.add(jedec)


def _erase_layout(entry: Mapping[str, Any], size: int | None) -> Iterator[Problem]:
    """Each layout covers the part exactly, with aligned power-of-two blocks, and its
    opcode is in the erase table (which gives its times)."""
    listed = {_hex(op.get("opcode")) for op in _list(entry.get("erase")) if isinstance(op, dict)}
    for index, layout in enumerate(_list(entry.get("erase_layout"))):
        path = ("erase_layout", index)
        if not isinstance(layout, dict):
            continue
        if _hex(layout.get("opcode")) not in listed:
            yield (*path, "opcode"), "is not in the erase table (which gives its times)"
        at = 0
        for run_index, run in enumerate(_list(layout.get("blocks"))):
            if not (isinstance(run, list) and len(run) == 2 and all(_int(v) for v in run)):
                continue
            block, count = run
            if block & (block - 1) or at % block:
                yield (
                    (*path, "blocks", run_index),
                    f"{block}-byte blocks at 0x{at:X} are not aligned powers of two",
                )
            at += block * count
        if size is not None and at != size:
            yield (*path, "blocks"), f"the blocks add up to {at} bytes, not size_bytes {size}"


def _id_command(entry: Mapping[str, Any]) -> Iterator[Problem]:
    """One way to identify the part: RDID (jedec), or RES or REMS for parts without it."""
    given = [key for key in ("jedec", *ID_COMMANDS) if key in _dict(entry.get("ids"))]
    if len(given) > 1:
        yield (
            ("ids",),
            f"gives {' and '.join(given)}: a part is identified one way (jedec for RDID,"
            " else res, rems or atmel_rdid)",
        )


def _provisional(entry: Mapping[str, Any]) -> Iterator[Problem]:
    """An approval names who and when, or neither."""
    mark = _dict(entry.get("provisional"))
    if bool(mark.get("approved_by")) != bool(mark.get("approved_at")):
        yield (
            ("provisional",),
            "approved_by and approved_at go together: an approval names who and when",
        )


def _erase_table(entry: Mapping[str, Any], size: int | None) -> Iterator[Problem]:
    chips: list[int] = []
    for index, erase in enumerate(_list(entry.get("erase"))):
        if not isinstance(erase, dict):
            continue
        path: JsonPath = ("erase", index)
        yield from _typ_max(erase, "ms_typ", "ms_max", path)
        block = erase.get("size_bytes")
        opcode = _hex(erase.get("opcode"))
        if block == "chip":
            chips.append(index)
            if len(chips) > 1:
                yield (
                    (*path, "size_bytes"),
                    (
                        f"second chip erase (the first is erase[{chips[0]}]); "
                        "there must be exactly one"
                    ),
                )
            continue
        block = _int(block)
        if block is None or not size:
            continue
        if size % block:
            yield (*path, "size_bytes"), f"{block} does not divide size_bytes {size}"
        elif opcode in CHIP_ERASE_OPCODES:
            yield (
                (*path, "size_bytes"),
                (
                    f"opcode 0x{opcode:02X} is a chip erase, which covers the whole part: "
                    'give size_bytes "chip"'
                ),
            )
    if not isinstance(entry.get("erase"), list):
        return
    dies = _int(entry.get("dies"))
    if entry.get("die_select") is not None and not dies:
        yield ("die_select",), "die select needs dies (the number of stacked dies)"
    if dies and entry.get("die_select") is not None:
        if entry.get("write_mode", "page") != "page":
            yield ("die_select",), "die select is implemented for page-program parts only"
        if size and size % dies:
            yield ("dies",), f"{dies} dies do not divide size_bytes {size}"
        if not chips:
            yield ("erase",), 'a die-select part needs its chip erase ("chip"): it erases one die'
    elif dies:
        yield from _die_erase(entry, size, dies, chips)
    elif entry.get("no_chip_erase") is True:
        for index in chips:
            yield ("erase", index, "size_bytes"), "a chip erase, but no_chip_erase says none"
    elif not chips:
        yield (
            ("erase",),
            'no chip erase (an entry with size_bytes "chip"); there must be one,'
            ' or "no_chip_erase": true for a part without',
        )


def _die_erase(
    entry: Mapping[str, Any], size: int | None, dies: int, chips: list[int]
) -> Iterator[Problem]:
    """A stacked part erases die by die (C4h at each die's address), never as a chip,
    and in 4-byte mode, the only one in which the die erase reaches the upper dies."""
    for index in chips:
        yield (
            ("erase", index, "size_bytes"),
            f"a stacked part (dies: {dies}) has no chip erase: it erases die by die",
        )
    if entry.get("four_byte_mode") not in ("b7", "always"):
        yield (
            ("four_byte_mode",),
            'a stacked part needs "b7" or "always": its die erase takes a 4-byte address'
            " only in 4-byte mode",
        )
    if not size:
        return
    if size % dies:
        yield ("dies",), f"{dies} dies do not divide size_bytes {size}"
        return
    blocks = [_int(_dict(op).get("size_bytes")) for op in _list(entry.get("erase"))]
    if size // dies not in blocks:
        yield (
            ("erase",),
            f"no die erase: dies {dies} needs an entry whose size_bytes is one die"
            f" ({size // dies})",
        )


def _addressing(entry: Mapping[str, Any], size: int | None) -> Iterator[Problem]:
    address_bytes = _int(entry.get("address_bytes"))
    if size is None or address_bytes is None:
        return
    mode = entry.get("four_byte_mode")
    if size > SIXTEEN_MIB:
        if address_bytes != 4:
            yield (
                ("address_bytes",),
                (f"{address_bytes}: parts above 16 MiB (size_bytes {size}) need address_bytes 4"),
            )
        if mode is None:
            yield (
                (),
                (
                    f"missing 'four_byte_mode': parts above 16 MiB (size_bytes {size}) must say "
                    "how they address above 16 MiB (b7, opcodes, bank-register or always)"
                ),
            )
    else:
        if address_bytes != 3:
            yield (
                ("address_bytes",),
                (
                    f"{address_bytes}: parts of 16 MiB or less (size_bytes {size}) "
                    "use address_bytes 3"
                ),
            )
        if mode is not None:
            yield (
                ("four_byte_mode",),
                (f"{mode!r}: only parts above 16 MiB have four_byte_mode (size_bytes {size})"),
            )


def _i2c_eeprom(entry: Mapping[str, Any]) -> Iterator[Problem]:
    size = _int(entry.get("size_bytes"))
    yield from _page_divides(entry, size)
    yield from _typ_max(entry, "write_cycle_ms_typ", "write_cycle_ms_max", ())
    address_bytes = _int(entry.get("address_bytes"))
    block_bits = _int(entry.get("block_bits"))
    if size is None or address_bytes not in (1, 2) or block_bits is None or block_bits < 0:
        return
    reach = 256**address_bytes * 2**block_bits
    if size > reach:
        yield (
            ("size_bytes",),
            (
                f"{size} does not fit address_bytes {address_bytes} and block_bits {block_bits} "
                f"(they address at most {reach} bytes)"
            ),
        )
    elif block_bits > 0 and size <= reach // 2:
        yield (
            ("block_bits",),
            (
                f"{block_bits} is too many for size_bytes {size}: with address_bytes "
                f"{address_bytes}, block_bits {block_bits - 1} already address {reach // 2} bytes"
            ),
        )


#: SPI EEPROM status register: bit 0 is /RDY (WIP), bit 1 WEL, bit 7 WPEN
SPI_EEPROM_FIXED_BITS = 0x83


def _spi_eeprom(entry: Mapping[str, Any]) -> Iterator[Problem]:
    size = _int(entry.get("size_bytes"))
    yield from _page_divides(entry, size)
    yield from _typ_max(entry, "write_cycle_ms_typ", "write_cycle_ms_max", ())
    page = _int(entry.get("page_size_bytes"))
    if size and page and page > size:
        yield ("page_size_bytes",), f"{page} is larger than size_bytes {size}"
    bp_mask = _hex(_dict(entry.get("status")).get("bp_mask"))
    if bp_mask is not None and (bp_mask == 0 or bp_mask & SPI_EEPROM_FIXED_BITS):
        yield (
            ("status", "bp_mask"),
            (
                f"0x{bp_mask:02X}: the block-protect bits sit in bits 2-6 (BP0/BP1 = 0x0C);"
                " bits 0, 1 and 7 are /RDY, WEL and WPEN"
            ),
        )
    address_bytes = _int(entry.get("address_bytes"))
    in_opcode = entry.get("address_bit_in_opcode", False)
    if size is None or address_bytes not in (1, 2, 3) or not isinstance(in_opcode, bool):
        return
    reach = 256**address_bytes * (2 if in_opcode else 1)
    if size > reach:
        hint = (
            "; a 4 Kbit part with one address byte needs address_bit_in_opcode true"
            if address_bytes == 1 and size <= 512
            else ""
        )
        yield (
            ("size_bytes",),
            (
                f"{size} does not fit address_bytes {address_bytes}"
                f"{' and address bit 8 in the opcode' if in_opcode else ''}"
                f" (they address at most {reach} bytes){hint}"
            ),
        )
    elif in_opcode and (address_bytes != 1 or size <= reach // 2):
        yield (
            ("address_bit_in_opcode",),
            (
                f"only 512-byte parts with address_bytes 1 carry address bit 8 in the opcode"
                f" (this part: size_bytes {size}, address_bytes {address_bytes})"
            ),
        )
    elif address_bytes > 1 and size <= 256 ** (address_bytes - 1):
        yield (
            ("address_bytes",),
            (
                f"{address_bytes} is too many for size_bytes {size}:"
                f" {address_bytes - 1} address byte(s) already reach it"
            ),
        )


def _stm32_uart(entry: Mapping[str, Any]) -> Iterator[Problem]:
    size = _int(entry.get("size_bytes"))
    runs = _list(entry.get("flash_layout"))
    total = 0
    for run in runs:
        run = _dict(run)
        count, block = _int(run.get("count")), _int(run.get("size_bytes"))
        if count is None or block is None:
            return
        total += count * block
    if runs and size is not None and total != size:
        yield ("flash_layout",), f"runs add up to {total} bytes, not size_bytes {size}"
    loader = _dict(entry.get("bootloader"))
    commands = {_hex(c) for c in _list(loader.get("commands"))}
    needed = {EXTENDED_ERASE: 0x44, LEGACY_ERASE: 0x43}.get(str(loader.get("erase")))
    if needed is not None and commands and needed not in commands:
        yield (
            ("bootloader", "erase"),
            (f"{loader.get('erase')!r} erase needs command 0x{needed:02X} in bootloader.commands"),
        )
    reserved, ram = _int(loader.get("ram_reserved_bytes")), _int(entry.get("ram_bytes"))
    if reserved is not None and ram is not None and reserved >= ram:
        yield ("bootloader", "ram_reserved_bytes"), f"{reserved} is not below ram_bytes {ram}"


#: DataFlash page sizes: the DataFlash page and the power-of-two page of the same part
DATAFLASH_PAGES = {264: 256, 528: 512, 1056: 1024}


def _dataflash(entry: Mapping[str, Any]) -> Iterator[Problem]:
    """The size is the pages in the power-of-two mode where the part has one (as
    flashrom lists it), else in DataFlash pages; each page size pairs with its own."""
    for kind in ("page_program", "page_erase", "block_erase", "chip_erase"):
        yield from _typ_max(entry, f"{kind}_ms_typ", f"{kind}_ms_max", ())
    size, pages = _int(entry.get("size_bytes")), _int(entry.get("pages"))
    page, binary = _int(entry.get("page_size_bytes")), entry.get("binary_page_size_bytes")
    if page in DATAFLASH_PAGES and binary is not None and binary != DATAFLASH_PAGES[page]:
        yield (
            ("binary_page_size_bytes",),
            f"{binary} does not pair with page_size_bytes {page} (its power-of-two page is"
            f" {DATAFLASH_PAGES[page]})",
        )
        return
    if pages and pages % 8:
        yield ("pages",), f"{pages} is not a whole number of 8-page blocks"
    if size and pages and page:
        expected = pages * (binary if isinstance(binary, int) else page)
        if size != expected:
            mode = "power-of-two" if isinstance(binary, int) else "DataFlash"
            yield ("size_bytes",), f"{size} is not pages x the {mode} page ({expected})"
    code = _hex(entry.get("density_code"))
    if code is not None and code > 0x0F:
        yield ("density_code",), f"0x{code:X} is more than the 4 bits of status bits 5-2"


def _microwire(entry: Mapping[str, Any]) -> Iterator[Problem]:
    """The address field must reach every word of the organisation and carry at most
    one don't-care bit (93x56 and 93x76 send the address length of the next size up)."""
    yield from _typ_max(entry, "write_cycle_ms_typ", "write_cycle_ms_max", ())
    yield from _typ_max(entry, "erase_all_ms_typ", "erase_all_ms_max", ())
    size, word_bits = _int(entry.get("size_bytes")), _int(entry.get("organisation"))
    bits = _int(entry.get("address_bits"))
    if not size or word_bits not in (8, 16) or bits is None:
        return
    words = size * 8 // word_bits
    if size * 8 % word_bits or words & (words - 1):
        yield ("size_bytes",), f"{size} is not a power-of-two number of {word_bits}-bit words"
        return
    needed = max(words.bit_length() - 1, 2)
    if not needed <= bits <= needed + 1:
        yield (
            ("address_bits",),
            f"{bits} does not address {words} words of {word_bits} bits (needs {needed},"
            f" or {needed + 1} with one don't-care bit)",
        )
