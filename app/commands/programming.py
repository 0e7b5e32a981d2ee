"""`socketeer detect|read|program|verify|erase|blank-check`: device cycles from the CLI.

Same engine as the GUI, no Qt. Exit codes: 0 every site passed, 1 a device failed,
2 bad input or usage, 3 programmer or connection error.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
from pathlib import Path
from typing import Any

from app.algorithms import algorithm_names
from app.algorithms.base import ChipError
from app.algorithms.spi_nor import SpiNor
from app.algorithms.stm32_uart import Stm32Uart
from app.commands.image import parse_number, parse_range
from app.core.errors import InputError, UsageError
from app.core.formats import FORMATS, format_from_extension, load_image, save_image
from app.core.image import MemoryImage
from app.devicedb import load_database
from app.engine.events import Event, LogEvent, PhaseStarted, SiteFinished
from app.engine.results import FAIL, LINK_LOST, DeviceResult
from app.engine.site_runner import CycleSpec
from app.engine.station import Station, StationResult
from app.hal.errors import HalError
from app.hal.programmer import open_programmer

DEFAULT_PROGRAMMER = os.environ.get("SOCKETEER_PROGRAMMER", "sim://")


def register(sub: argparse._SubParsersAction) -> None:
    def common(p: argparse.ArgumentParser, *, device: bool = True) -> None:
        p.add_argument(
            "--programmer",
            default=DEFAULT_PROGRAMMER,
            metavar="URL",
            help="programmer URL, e.g. 'sim://?sites=8' (default: %(default)s)",
        )
        if device:
            p.add_argument(
                "--device",
                required=True,
                metavar="ID",
                help="device id from the database (socketeer devices search)",
            )
        p.add_argument("--json", action="store_true", help="print one JSON document")

    def sites(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--sites", default="all", metavar="all|1,2,...", help="which sites to run (default all)"
        )

    def image_in(p: argparse.ArgumentParser) -> None:
        p.add_argument("image", type=Path, help="image file")
        p.add_argument("--format", dest="in_format", choices=FORMATS)
        p.add_argument(
            "--base",
            default=None,
            help="load address of a raw binary (default: the device's first address)",
        )

    p = sub.add_parser("detect", help="read the part's ID on each site and name it")
    common(p, device=False)
    p.add_argument("--site", type=int, help="only this site")
    p.set_defaults(func=cmd_detect)

    p = sub.add_parser("read", help="read a part into a file")
    common(p)
    p.add_argument("--site", type=int, default=1, help="site to read (default 1)")
    p.add_argument("--range", help="START:END to read (default the whole part)")
    p.add_argument(
        "--to",
        dest="out_format",
        choices=FORMATS,
        help="output format (default: from OUT's extension, else bin)",
    )
    p.add_argument("output", type=Path)
    p.set_defaults(func=cmd_read)

    p = sub.add_parser("program", help="erase, program and verify parts on all sites")
    common(p)
    sites(p)
    image_in(p)
    erase = p.add_mutually_exclusive_group()
    erase.add_argument("--no-erase", action="store_true", help="do not erase first")
    erase.add_argument("--full-erase", action="store_true", help="erase the whole chip first")
    p.add_argument("--no-verify", action="store_true", help="skip the verify step")
    p.add_argument("--blank-check", action="store_true", help="blank check before programming")
    p.add_argument("--unprotect", action="store_true", help="clear block protection first")
    p.add_argument("--protect", action="store_true", help="set block protection afterwards")
    p.add_argument(
        "--skip-matching",
        action="store_true",
        help="read first; leave blocks that already hold the image untouched",
    )
    p.set_defaults(func=cmd_cycle, action="program")

    p = sub.add_parser("verify", help="compare parts with an image")
    common(p)
    sites(p)
    image_in(p)
    p.set_defaults(func=cmd_cycle, action="verify")

    p = sub.add_parser("erase", help="erase whole parts")
    common(p)
    sites(p)
    p.add_argument("--unprotect", action="store_true", help="clear block protection first")
    p.set_defaults(func=cmd_cycle, action="erase")

    p = sub.add_parser("blank-check", help="check that parts are erased")
    common(p)
    sites(p)
    p.set_defaults(func=cmd_cycle, action="blank-check")


def _open(url: str, device: Any, database: Any) -> Any:
    try:
        return open_programmer(url, device=device, database=database)
    except HalError:
        raise
    except (OSError, ValueError) as err:
        raise HalError(f"cannot open programmer {url!r}: {err}") from None


def _candidates(database: Any) -> Any:
    def names(id_hex: str, bus: str = "jedec") -> list[str]:
        found = database.identify(bus, id_hex)
        return [f"{d.vendor} {d.part}" for d in found.candidates]

    return names


class _LivePrinter:
    """One line per site whenever its phase changes (stdout, unless --json)."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        if self.quiet:
            return
        with self.lock:
            if isinstance(event, PhaseStarted) and event.phase not in ("socket", "power"):
                print(f"site {event.site}: {event.phase}...", flush=True)
            elif isinstance(event, SiteFinished):
                print(f"site {event.site}: {_result_line(event.result)}", flush=True)
            elif isinstance(event, LogEvent) and event.level == "warning":
                print(f"site {event.site}: warning: {event.message}", flush=True)


def _result_line(result: DeviceResult) -> str:
    if result.passed:
        return result.message
    step = f" at {result.failed_step}" if result.failed_step else ""
    return f"{result.status.upper()}{step}: {result.message}"


def _site_list(text: str, available: list[int]) -> list[int]:
    if text == "all":
        return available
    try:
        chosen = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UsageError(f"--sites {text!r}: expected 'all' or a list like 1,2,5") from None
    missing = sorted(set(chosen) - set(available))
    if missing or not chosen:
        raise UsageError(f"--sites {text!r}: this programmer has sites {available}")
    return chosen


def _exit_code(outcome: StationResult) -> int:
    statuses = {r.status for r in outcome.results}
    if FAIL in statuses or "cancelled" in statuses:
        return 1
    if LINK_LOST in statuses:
        return 3
    return 0


def _load_for_device(args: argparse.Namespace, device: Any) -> MemoryImage:
    lo, hi = device.address_range
    base = lo if args.base is None else parse_number(args.base, "--base")
    loaded = load_image(args.image, args.in_format, base)
    image = loaded.image
    if image.is_empty:
        raise InputError(f"{args.image}: the image holds no data")
    image.check_within(lo, hi, f"{device.part} ({device.size_bytes} bytes at 0x{lo:X})")
    return image


def fitting_adapters(database: Any, device: Any) -> frozenset[str]:
    """The socket adapters of the device's packages (from packages.json)."""
    packages = database.packages
    return frozenset(
        packages[name].adapter
        for name in device.packages
        if name in packages and packages[name].adapter
    )


def _programmable(database: Any, device_id: str) -> Any:
    device = database.get(device_id)
    if device.algorithm not in algorithm_names():
        raise UsageError(
            f"{device.id}: the '{device.algorithm}' algorithm is not in this version of Socketeer"
        )
    return device


def cmd_cycle(args: argparse.Namespace) -> int:
    database = load_database()
    device = _programmable(database, args.device)
    image = _load_for_device(args, device) if args.action in ("program", "verify") else None
    erase_mode = "auto"
    if args.action == "program":
        erase_mode = "none" if args.no_erase else "full" if args.full_erase else "auto"
    spec = CycleSpec(
        action=args.action,
        device=device,
        image=image,
        erase_mode=erase_mode,
        blank_check=getattr(args, "blank_check", False) is True,
        verify=not getattr(args, "no_verify", False),
        unprotect=getattr(args, "unprotect", False),
        protect=getattr(args, "protect", False),
        skip_matching=getattr(args, "skip_matching", False),
        adapters=fitting_adapters(database, device),
    )
    programmer = _open(args.programmer, device, database)
    try:
        station = Station(programmer, _LivePrinter(args.json), _candidates(database))
        chosen = _site_list(args.sites, station.site_numbers)
        outcome = station.run(spec, chosen)
    finally:
        programmer.close()
    if args.json:
        print(
            json.dumps(
                {
                    "action": args.action,
                    "device": device.id,
                    "programmer": args.programmer,
                    "passed": outcome.passed,
                    "failed": outcome.failed,
                    "sites": [r.to_json() for r in outcome.results],
                },
                indent=2,
            )
        )
    else:
        print(
            f"{args.action}: {outcome.passed} passed, {outcome.failed} failed"
            f" ({device.vendor} {device.part})"
        )
    return _exit_code(outcome)


def cmd_read(args: argparse.Namespace) -> int:
    database = load_database()
    device = _programmable(database, args.device)
    fmt = args.out_format or format_from_extension(args.output) or "bin"
    lo, hi = device.address_range
    read_range = parse_range(args.range, "--range") if args.range else (lo, hi)
    if read_range[0] < lo or read_range[1] > hi:
        raise UsageError(f"--range must lie within the part's [0x{lo:X}, 0x{hi:X})")
    spec = CycleSpec("read", device, read_range=read_range)
    programmer = _open(args.programmer, device, database)
    try:
        station = Station(programmer, _LivePrinter(args.json), _candidates(database))
        _site_list(str(args.site), station.site_numbers)
        outcome = station.run(spec, [args.site])
    finally:
        programmer.close()
    result = outcome.results[0]
    if result.passed and result.data is not None:
        save_image(MemoryImage.from_bytes(result.data, read_range[0]), args.output, fmt)
    if args.json:
        doc = result.to_json()
        doc["output"] = str(args.output) if result.passed else None
        print(json.dumps(doc, indent=2))
    elif result.passed:
        print(f"wrote {args.output} ({fmt}, {len(result.data or b'')} bytes)")
    return _exit_code(outcome)


def cmd_detect(args: argparse.Namespace) -> int:
    database = load_database()
    programmer = _open(args.programmer, None, database)
    reports = []
    try:
        for site in programmer.sites:
            if args.site is not None and site.index != args.site:
                continue
            reports.append(_detect_site(site, database))
    finally:
        programmer.close()
    if args.site is not None and not reports:
        raise UsageError(f"--site {args.site}: no such site")
    if args.json:
        print(json.dumps({"programmer": args.programmer, "sites": reports}, indent=2))
    else:
        for rep in reports:
            print(f"site {rep['site']}: {rep['summary']}")
    if any(r.get("link_lost") for r in reports):
        return 3
    return 0 if all(r["present"] for r in reports) else 1


def _detect_stm32(site: Any, database: Any, report: dict[str, Any]) -> dict[str, Any]:
    """Enter the ROM bootloader, read the product ID, name the part, let the board run."""
    algo = Stm32Uart(site.uart, {"size_bytes": 0})
    try:
        site.power(True)
        pid = algo.identify().hex
        found = database.identify("stm32_pid", pid)
        report.update(
            present=True,
            stm32_pid=f"0x{int(pid, 16):03X}",
            candidates=[d.id for d in found.candidates],
            ambiguous=found.ambiguous,
        )
        names = ", ".join(f"{d.vendor} {d.part} ({d.id})" for d in found.candidates)
        report["summary"] = f"PID 0x{int(pid, 16):03X}: {names or 'not in the device database'}"
        algo.finish(True)
    except ChipError as err:
        report["summary"] = f"no bootloader answer: {err}"
    except HalError as err:
        report["summary"] = f"programmer error: {err}"
        report["link_lost"] = True
    finally:
        site.power(False)
    return report


def _detect_site(site: Any, database: Any) -> dict[str, Any]:
    report: dict[str, Any] = {"site": site.index, "present": False}
    if not site.part_present():
        report["summary"] = "socket empty"
        return report
    if site.spi is None:
        if getattr(site, "uart", None) is not None:
            return _detect_stm32(site, database, report)
        report["summary"] = "no SPI bus on this site"
        return report
    try:
        site.power(True)
        algo = SpiNor(site.spi, {})
        ident = algo.identify()
        report["jedec"] = ident.hex
        if not ident.present:
            report["summary"] = f"no part or bad contact (ID reads {ident.hex})"
            return report
        report["present"] = True
        found = database.identify("jedec", ident.hex[:6])
        report["candidates"] = [d.id for d in found.candidates]
        report["ambiguous"] = found.ambiguous
        sfdp = algo.read_sfdp()
        if sfdp:
            report["sfdp"] = {k: v for k, v in sfdp.items() if k != "erase_types"} | {
                "erase_sizes": [size for _, size in sfdp["erase_types"]]
            }
        names = ", ".join(f"{d.vendor} {d.part} ({d.id})" for d in found.candidates)
        if found.ambiguous:
            summary = f"ID {ident.hex[:6]}: ambiguous, {len(found.candidates)} parts: {names}"
        elif found.found:
            summary = f"ID {ident.hex[:6]}: {names}"
        else:
            summary = f"ID {ident.hex[:6]}: not in the device database"
        if sfdp:
            summary += (
                f"; SFDP: {sfdp['size_bytes'] // 1024} KiB,"
                f" {sfdp['page_size_bytes']}-byte pages,"
                f" {sfdp['address_bytes']}-byte addressing"
            )
        report["summary"] = summary
    except HalError as err:
        report["summary"] = f"programmer error: {err}"
        report["link_lost"] = True
    finally:
        site.power(False)
    return report
