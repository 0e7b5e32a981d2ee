"""`socketeer devices search|show|by-id|validate`: the device database from the command line."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from app.commands import devices_sfdp, help_for
from app.core.errors import UsageError
from app.devicedb import (
    FAMILIES,
    ID_BUSES,
    Device,
    DeviceDatabase,
    ValidationReport,
    check_installed,
    check_paths,
    load_database,
    normalize,
)
from app.devicedb.entry_reader import ID_COMMANDS
from app.devicedb.facts import (
    CortexMFacts,
    DataFlashFacts,
    I2cEepromFacts,
    MemoryLayout,
    MicrowireFacts,
    SpiEepromFacts,
    SpiNorFacts,
    StatusBit,
    Stm32Facts,
    SwdFacts,
    Timing,
)
from app.devicedb.files import display_path

_BUS_LABEL = {"jedec": "JEDEC ID", "stm32_pid": "STM32 product ID", "swd": "SWD ID register"}


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("devices", help=help_for("devices"))
    dsub = parser.add_subparsers(dest="devices_command", metavar="ACTION")

    search = dsub.add_parser("search", help="find parts by name, alias, size or ID fields")
    search.add_argument(
        "query",
        nargs="*",
        help="words to match (case and punctuation ignored); size words like 16MiB, "
        "128Mbit or 128M filter by size; nothing lists every part",
    )
    search.add_argument("--family", help=f"only this family ({', '.join(FAMILIES)})")
    search.add_argument("--vendor", help="only this vendor (name or its start)")
    search.add_argument("--package", help="only parts offered in this package (name or its start)")
    search.add_argument("--json", action="store_true", help="print the entries as JSON")
    search.set_defaults(func=cmd_search)

    show = dsub.add_parser("show", help="every fact of one part")
    show.add_argument("id", help="device id, e.g. winbond.w25q128jv")
    show.add_argument("--json", action="store_true", help="print the entry as JSON")
    show.set_defaults(func=cmd_show)

    by_id = dsub.add_parser("by-id", help="which parts answer an ID read from a chip")
    by_id.add_argument("hex", nargs="+", help="the ID bytes in hex: EF4018, 0xEF4018 or EF 40 18")
    by_id.add_argument(
        "--bus",
        choices=ID_BUSES,
        default="jedec",
        help="jedec (SPI NOR 9Fh ID, default), stm32_pid (AN3155 Get ID) or swd"
        " (REGISTER:VALUE read through the debug port, e.g. E0042000:410)",
    )
    by_id.add_argument("--json", action="store_true", help="print one JSON document")
    by_id.set_defaults(func=cmd_by_id)

    validate = dsub.add_parser(
        "validate", help="check device files against the schema and the semantic rules"
    )
    validate.add_argument(
        "paths",
        nargs="*",
        type=Path,
        help="device files or DB folders (default: the installed DB and the user overlay)",
    )
    validate.set_defaults(func=cmd_validate)
    devices_sfdp.register(dsub, describe)

    parser.set_defaults(func=None, _help=parser)


# -- formatting helpers -------------------------------------------------------


def format_size(size: int) -> str:
    """16777216 -> "16 MiB", 2048 -> "2 KiB", 128 -> "128 B"."""
    for shift, unit in ((30, "GiB"), (20, "MiB"), (10, "KiB")):
        if size >= 1 << shift and size % (1 << shift) == 0:
            return f"{size >> shift} {unit}"
    return f"{size} B"


def format_size_long(size: int) -> str:
    """16777216 -> "16 MiB = 128 Mbit (16,777,216 bytes)"."""
    bits = size * 8
    for shift, unit in ((30, "Gbit"), (20, "Mbit"), (10, "Kbit")):
        if bits >= 1 << shift and bits % (1 << shift) == 0:
            return f"{format_size(size)} = {bits >> shift} {unit} ({size:,} bytes)"
    return f"{format_size(size)} ({size:,} bytes)"


def format_ms(value: float) -> str:
    return f"{value / 1000:g} s" if value >= 1000 else f"{value:g} ms"


def format_hz(value: int) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:g} MHz"
    return f"{value / 1000:g} kHz"


def format_voltage(device: Device) -> str:
    low, high = device.voltage_mv
    return f"{low / 1000:g}-{high / 1000:g} V"


def _table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
    return "\n".join(lines)


def device_table(devices: Iterable[Device]) -> str:
    header = ("ID", "VENDOR", "PART", "FAMILY", "SIZE", "VOLTAGE", "PACKAGES")
    rows = [
        (
            d.id,
            d.vendor,
            d.part,
            d.family,
            format_size(d.size_bytes),
            format_voltage(d),
            ", ".join(d.packages),
        )
        for d in devices
    ]
    return _table(rows, header)


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2))


# -- commands -----------------------------------------------------------------


def _family_filter(text: str | None) -> str | None:
    if text is None:
        return None
    for family in FAMILIES:
        if normalize(family) == normalize(text):
            return family
    raise UsageError(f"--family {text!r} is not a family (use one of: {', '.join(FAMILIES)})")


def cmd_search(args: argparse.Namespace) -> int:
    db = load_database()
    query = " ".join(args.query)
    hits = db.search(
        query, family=_family_filter(args.family), vendor=args.vendor, package=args.package
    )
    if args.json:
        _print_json([d.to_json() for d in hits])
        return 0 if hits else 1
    if not hits:
        what = f"matches {query!r}" if query else "matches the filters"
        print(f"no device {what}" if db else "the device database is empty")
        return 1
    print(device_table(hits))
    print(f"{len(hits)} device{'s' if len(hits) != 1 else ''}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    db = load_database()
    device = db.get(args.id)
    if args.json:
        _print_json(device.to_json())
        return 0
    print("\n".join(describe(device, db)))
    return 0


def _line(label: str, value: object) -> str:
    return f"{label + ':':<18}{value}"


def describe(device: Device, db: DeviceDatabase) -> list[str]:
    """The human-readable `devices show` text of one device."""
    out = [
        f"{device.id}: {device.vendor} {device.part}",
        _line("family", f"{device.family} (algorithm {device.algorithm})"),
    ]
    if device.aliases:
        out.append(_line("aliases", ", ".join(device.aliases)))
    if device.flashrom_names:
        out.append(_line("flashrom name", ", ".join(device.flashrom_names)))
    out.append(_line("size", format_size_long(device.size_bytes)))
    facts = device.facts
    if isinstance(facts, SpiNorFacts):
        out += _describe_spi_nor(facts, device)
    elif isinstance(facts, I2cEepromFacts):
        out += _describe_i2c_eeprom(facts, device)
    elif isinstance(facts, SpiEepromFacts):
        out += _describe_spi_eeprom(facts, device)
    elif isinstance(facts, DataFlashFacts):
        out += _describe_dataflash(facts, device)
    elif isinstance(facts, MicrowireFacts):
        out += _describe_microwire(facts, device)
    elif isinstance(facts, Stm32Facts):
        out += _describe_stm32_uart(facts)
    else:
        out += _describe_flash_layout(facts.flash_base, facts.flash)
    if device.swd is not None:
        out += _describe_swd(device.swd, facts)
    low, high = device.voltage_mv
    out.append(_line("voltage", f"{format_voltage(device)} ({low}-{high} mV)"))
    out.append(_line("erased value", f"0x{device.erased_value:02X}"))
    out.append("packages:")
    for name in device.packages:
        package = db.packages.get(name)
        if package is None:
            out.append(f"  {name}")
            continue
        adapter = package.adapter or "none (in-system only)"
        out.append(
            f"  {name:<16} {package.pins} pins, {package.pitch_mm:g} mm pitch, adapter: {adapter}"
        )
    tested = device.tested
    if tested:
        out.append(_line("tested", ", ".join(f"{k} {v}" for k, v in tested.items())))
    out.append(_line("source", device.source))
    mark = device.provisional
    if mark is not None:
        state = (
            f"approved by {mark.approved_by} on {mark.approved_at}"
            if mark.approved
            else "NOT approved: writing with it is refused (socketeer devices approve)"
        )
        out.append(_line("provisional", f"built from SFDP on {mark.created}; {state}"))
    if device.notes:
        out.append(_line("notes", device.notes))
    origin = display_path(Path(device.source_file))
    if device.overrides:
        replaced = display_path(Path(device.overrides))
        origin += f" (user overlay; replaces the entry in {replaced})"
    out.append(_line("defined in", origin))
    return out


def _status_bit(bit: StatusBit | None) -> str:
    return f"sr{bit.register}.{bit.bit}" if bit is not None else "none"


def _describe_spi_nor(facts: SpiNorFacts, device: Device) -> list[str]:
    ident = facts.jedec_id.hex().upper()
    if facts.extended_id:
        ident += f" + extended {facts.extended_id.hex().upper()}"
    if facts.legacy_rdid is not None:
        ident += f" (ABh device ID 0x{facts.legacy_rdid:02X})"
    if facts.id_command == "rdid":
        out = [_line("JEDEC ID", ident)]
        out += [
            _line("also answers", f"{known.jedec.hex().upper()} ({known.source})")
            for known in facts.also_answers
        ]
    else:
        command = ID_COMMANDS[facts.id_command]
        out = [_line("ID", f"no RDID; {command} answers {facts.id_answer.hex().upper()}")]
    out.append(_line("page size", f"{facts.page_size} bytes"))
    program = facts.page_program
    unit = {"page": "page program", "byte": "byte program", "aai-word": "AAI word (ADh)"}
    out.append(
        _line(
            unit[facts.write_mode],
            f"typ {format_ms(program.ms_typ)}, max {format_ms(program.ms_max)}",
        )
    )
    if facts.protection.locked_at_power_up:
        enable = facts.protection.status_write_enable
        out.append(
            _line(
                "power-up",
                f"block-protect bits set (unprotect before writing; status write after"
                f" {enable:02X}h)",
            )
        )
    addressing = f"{facts.address_bytes} bytes"
    if facts.four_byte_mode is not None:
        addressing += f" (4-byte mode: {facts.four_byte_mode})"
    out.append(_line("address", addressing))
    out.append(_line("max clock", format_hz(device.max_clock_hz or 0)))
    protection = facts.protection
    out.append(
        _line(
            "status",
            f"BP mask 0x{protection.bp_mask:02X}, QE {_status_bit(protection.quad_enable)}"
            f", SRP {_status_bit(protection.status_protect)}",
        )
    )
    out.append(_line("SFDP", "yes" if facts.sfdp else "no"))
    unique = facts.unique_id
    if unique is not None:
        out.append(
            _line(
                "unique ID",
                f"opcode 0x{unique.opcode:02X}, {unique.dummy_bytes} dummy "
                f"bytes, {unique.length} bytes long",
            )
        )
    out.append("erase:")
    rows = []
    for erase in facts.erase_ops:
        size = erase.size
        label = "chip" if size is None else f"{format_size(size)} ({size:,} bytes)"
        timing = erase.timing
        rows.append(
            (f"  0x{erase.opcode:02X}", label, format_ms(timing.ms_typ), format_ms(timing.ms_max))
        )
    out.append(_table(rows, ("  OPCODE", "BLOCK", "TYP", "MAX")))
    return out


def _describe_i2c_eeprom(facts: I2cEepromFacts, device: Device) -> list[str]:
    cycle = facts.write_cycle
    write = f"max {format_ms(cycle.ms_max)}"
    if cycle.ms_typ != cycle.ms_max:  # the DB gives the typical time of some parts only
        write = f"typ {format_ms(cycle.ms_typ)}, " + write
    return [
        _line("page size", f"{facts.page_size} bytes"),
        _line(
            "address",
            f"{facts.address_bytes} byte(s) + {facts.block_bits} block bit(s) "
            "in the device address",
        ),
        _line("write cycle", write),
        _line("max clock", format_hz(device.max_clock_hz or 0)),
    ]


def _describe_spi_eeprom(facts: SpiEepromFacts, device: Device) -> list[str]:
    cycle = facts.write_cycle
    write = f"max {format_ms(cycle.ms_max)}"
    if cycle.ms_typ != cycle.ms_max:
        write = f"typ {format_ms(cycle.ms_typ)}, " + write
    address = f"{facts.address_bytes} byte(s)"
    if facts.address_bit_in_opcode:
        address += " + address bit 8 in opcode bit 3 (READ 0x0B / WRITE 0x0A)"
    wpen = ", WPEN (bit 7)" if facts.wpen else ""
    return [
        _line("ID", "none (no ID command; presence from the status register)"),
        _line("page size", f"{facts.page_size} bytes"),
        _line("address", address),
        _line("write cycle", write),
        _line("max clock", format_hz(device.max_clock_hz or 0)),
        _line("status", f"BP mask 0x{facts.bp_mask:02X}{wpen}"),
    ]


def _describe_microwire(facts: MicrowireFacts, device: Device) -> list[str]:
    words = device.size_bytes // facts.word_bytes
    org = f"x{facts.word_bits}: {words} words of {facts.word_bits} bits"
    if facts.org_pin:
        org += f" (ORG pin {'low' if facts.word_bits == 8 else 'high'})"
    return [
        _line("ID", "none (no ID command; presence from the READ's dummy 0)"),
        _line("organisation", org),
        _line("address", f"{facts.address_bits} bits (start bit + 2-bit opcode before them)"),
        _line("write cycle", f"max {format_ms(facts.write_cycle.ms_max)} (WRITE/ERASE)"),
        _line("erase all", f"max {format_ms(facts.erase_all.ms_max)} (ERAL)"),
        _line("max clock", format_hz(device.max_clock_hz or 0)),
        _line("buses", "Microwire: ftdi:// (MPSSE) and sim://; not serprog"),
    ]


def _describe_dataflash(facts: DataFlashFacts, device: Device) -> list[str]:
    binary = facts.binary_page_size
    pages = f"{facts.pages:,} x {facts.page_size} bytes"
    if binary:
        pages += (
            f" ({facts.pages * facts.page_size:,} bytes), or x {binary} once set to"
            " power-of-two pages; the part's status register tells which"
        )
    else:
        pages += " (no power-of-two option)"

    def times(t: Timing) -> str:
        return f"typ {format_ms(t.ms_typ)}, max {format_ms(t.ms_max)}"

    density = "" if facts.density_code is None else f", density code {facts.density_code:04b}b"
    return [
        _line("JEDEC ID", facts.jedec_id.hex().upper()),
        _line("pages", pages),
        _line("page program", times(facts.page_program) + " (buffer 84h, then 88h)"),
        _line("page erase", times(facts.page_erase) + " (81h)"),
        _line("block erase", times(facts.block_erase) + " (50h, 8 pages)"),
        _line("chip erase", times(facts.chip_erase) + " (C7h 94h 80h 9Ah)"),
        _line("max clock", format_hz(device.max_clock_hz or 0)),
        _line("status", f"D7h: bit 7 ready, bit 1 protect, bit 0 page mode{density}"),
    ]


def _describe_stm32_uart(facts: Stm32Facts) -> list[str]:
    loader = facts.bootloader
    erase = "extended" if loader.extended_erase else "legacy"
    out = [
        _line("product ID", f"0x{facts.pid:03X}"),
        _line("RAM", f"{format_size(facts.ram_bytes)} at 0x{facts.ram_base:08X}"),
        _line(
            "bootloader",
            f"version 0x{loader.version:02X}, {erase} erase"
            + (f", USART: {', '.join(loader.usarts)}" if loader.usarts else ""),
        ),
    ]
    if loader.ram_reserved_bytes:
        out.append(_line("bootloader RAM", f"{loader.ram_reserved_bytes} bytes reserved"))
    out.append(_line("commands", " ".join(f"0x{c:02X}" for c in sorted(loader.commands))))
    return out + _describe_flash_layout(facts.flash_base, facts.flash)


def _describe_flash_layout(base: int, layout: MemoryLayout) -> list[str]:
    out = [f"flash layout (from 0x{base:08X}):"]
    address = base
    for run in layout.runs:
        out.append(f"  0x{address:08X}  {run.count} x {format_size(run.size)}")
        address += run.count * run.size
    return out


def _describe_swd(swd: SwdFacts, facts: object) -> list[str]:
    ids = " or ".join(f"0x{value:X}" for value in swd.id_values)
    out = [
        _line("SWD", f"{swd.series} ({swd.controller} flash controller), {swd.core}"),
        _line("SWD ID", f"register 0x{swd.id_address:08X} & 0x{swd.id_mask:X} = {ids}"),
    ]
    if isinstance(facts, CortexMFacts):
        out.append(_line("RAM", f"{format_size(facts.ram_bytes)} at 0x{facts.ram_base:08X}"))
    return out


def cmd_by_id(args: argparse.Namespace) -> int:
    db = load_database()
    found = db.identify(args.bus, "".join(args.hex))
    if args.json:
        _print_json(found.to_json())
        return 0 if found.found else 1
    label = f"{_BUS_LABEL[found.bus]} {found.id_hex}"
    if not found.found:
        print(f"{label}: no device in the database has this ID")
        if found.note:
            print(f"note: {found.note}")
        return 1
    if found.ambiguous:
        print(
            f"{label}: ambiguous: {len(found.candidates)} parts share this ID "
            "(choose the part by its marking)"
        )
    else:
        print(f"{label}: {found.candidates[0].vendor} {found.candidates[0].part}")
    if found.note:
        print(f"note: {found.note}")
    print(device_table(found.candidates))
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    report = check_paths(args.paths) if args.paths else check_installed()
    if report.errors:
        for message in report.errors:
            print(message)
        count = len(report.errors)
        print(
            f"socketeer: {count} error{'s' if count != 1 else ''} in the device database",
            file=sys.stderr,
        )
        return 2
    print("\n".join(summarize(report)))
    return 0


def summarize(report: ValidationReport) -> list[str]:
    """The `devices validate` success text: counts per family and per layer."""
    files = sum(layer.files for layer in report.layers)
    total = len(report.devices)
    out = [
        f"valid: {total} device{'s' if total != 1 else ''} in {files} file"
        f"{'s' if files != 1 else ''}"
    ]
    for family, (devices, vendors) in report.family_counts().items():
        out.append(
            f"  {family:<11} {devices:>4} devices from {vendors} vendor"
            f"{'s' if vendors != 1 else ''}"
        )
    out.append(f"  {'packages':<11} {len(report.packages):>4}")
    for layer in report.layers:
        where = ", ".join(layer.roots)
        if layer.missing and not layer.files:
            out.append(f"{layer.name}: {where} (not present)")
            continue
        text = f"{layer.name}: {where}: {layer.files} files, {layer.devices} devices"
        if layer.overrides:
            plural = "entry" if layer.overrides == 1 else "entries"
            text += f" (replacing {layer.overrides} installed {plural})"
        out.append(text)
    return out
