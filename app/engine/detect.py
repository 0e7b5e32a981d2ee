"""Detect: which part sits on a site, named from the device database (no device chosen).

SPI sites read the JEDEC ID (and SFDP, when the part has it); UART sites enter the
STM32 ROM bootloader and read the product ID; SWD sites attach to the debug port and
read each ID register the database names (DBGMCU_IDCODE, FICR) until one holds a known
part's value. Every candidate the database holds for the ID is listed, since clones and
rebrands share IDs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app.algorithms.base import ChipError
from app.algorithms.sfdp import SfdpError, SfdpInfo, read_sfdp
from app.algorithms.spi_nor import identify_jedec
from app.algorithms.stm32_bootloader import Stm32Bootloader
from app.hal.errors import HalError

if TYPE_CHECKING:
    from app.devicedb.database import DeviceDatabase
    from app.devicedb.models import Identification
    from app.hal.bus import BootloaderLink, DebugAccess, SpiBus
    from app.hal.programmer import Site


@dataclass
class DetectReport:
    """What one site answered; ``summary`` says it in words. ``jedec`` (SPI) or
    ``stm32_pid`` (UART) is the ID read, ``candidates`` the database's parts for it."""

    site: int
    present: bool = False
    summary: str = ""
    link_lost: bool = False
    jedec: str | None = None
    stm32_pid: str | None = None
    swd_id: str | None = None  # "REGISTER:VALUE", as devices by-id --bus swd takes it
    candidates: tuple[str, ...] | None = None  # None: no ID to look up
    ambiguous: bool = False
    sfdp: SfdpInfo | None = None

    def to_json(self) -> dict[str, Any]:
        """The report as ``socketeer detect --json`` prints it (a JSON object)."""
        doc: dict[str, Any] = {"site": self.site, "present": self.present}
        if self.jedec is not None:
            doc["jedec"] = self.jedec
        if self.stm32_pid is not None:
            doc["stm32_pid"] = self.stm32_pid
        if self.swd_id is not None:
            doc["swd_id"] = self.swd_id
        if self.candidates is not None:
            doc["candidates"] = list(self.candidates)
            doc["ambiguous"] = self.ambiguous
        if self.sfdp is not None:
            doc["sfdp"] = self.sfdp.to_json()
        doc["summary"] = self.summary
        if self.link_lost:
            doc["link_lost"] = True
        return doc


def detect_site(site: Site, database: DeviceDatabase) -> DetectReport:
    report = DetectReport(site.index)
    if not site.part_present():
        report.summary = "socket empty"
        return report
    if site.spi is None and site.uart is None and site.swd is None:
        report.summary = "no SPI, UART or SWD on this site"
        return report
    try:
        site.power(True)
        if site.spi is not None:
            _detect_spi(site.spi, database, report)
        elif site.uart is not None:
            _detect_stm32(site.uart, database, report)
        elif site.swd is not None:
            _detect_swd(site.swd, database, report)
    except HalError as err:
        report.summary = f"programmer error: {err}"
        report.link_lost = True
    finally:
        site.power(False)
    return report


def _detect_spi(spi: SpiBus, database: DeviceDatabase, report: DetectReport) -> None:
    ident = identify_jedec(spi)
    report.jedec = ident.hex
    if not ident.present:
        report.summary = f"no part or bad contact (ID reads {ident.hex})"
        return
    found = database.identify("jedec", ident.hex[:6])
    names = _found(report, found)
    try:
        sfdp = report.sfdp = read_sfdp(spi)
        unusable = None
    except SfdpError as err:
        sfdp, unusable = None, str(err)
    if found.ambiguous:
        summary = f"ID {ident.hex[:6]}: ambiguous, {len(found.candidates)} parts: {names}"
    elif found.found:
        summary = f"ID {ident.hex[:6]}: {names}"
    else:
        summary = f"ID {ident.hex[:6]}: not in the device database"
    if found.note:
        summary += f" ({found.note})"
    if sfdp:
        summary += (
            f"; SFDP: {sfdp.size_bytes // 1024} KiB,"
            f" {sfdp.page_size_bytes}-byte pages,"
            f" {sfdp.address_bytes}-byte addressing"
        )
        if not found.found or found.ambiguous:
            summary += "; 'socketeer devices from-sfdp' builds a provisional profile from it"
    elif unusable:
        summary += f"; SFDP unusable: {unusable}"
    report.summary = summary


def _detect_stm32(link: BootloaderLink, database: DeviceDatabase, report: DetectReport) -> None:
    """Enter the ROM bootloader, read the product ID, name the part, let the board run."""
    loader = Stm32Bootloader(link)
    try:
        pid = loader.connect().hex().upper()
        report.stm32_pid = f"0x{int(pid, 16):03X}"
        names = _found(report, database.identify("stm32_pid", pid))
        report.summary = f"PID {report.stm32_pid}: {names or 'not in the device database'}"
        loader.leave(run_application=True)
    except ChipError as err:
        report.summary = f"no bootloader answer: {err}"


def _detect_swd(swd: DebugAccess, database: DeviceDatabase, report: DetectReport) -> None:
    """Attach to the debug port and read the ID registers the database names, STM32's
    DBGMCU first (always mapped on those parts); a register that faults is not there.
    Nothing is halted or written: the board keeps running."""
    try:
        idcode = swd.connect()
    except HalError as err:
        report.summary = f"no SWD target answered: {err}"
        return
    registers: dict[int, int] = {}
    for device in database:
        if device.swd is not None:
            registers.setdefault(device.swd.id_address, device.swd.id_mask)
    for address in sorted(registers, key=lambda a: (a < 0x4000_0000, a)):
        try:
            value = swd.read_words(address, 1)[0] & registers[address]
        except HalError:
            continue
        found = database.identify("swd", f"{address:08X}:{value:X}")
        if found.found:
            report.swd_id = found.id_hex
            names = _found(report, found)
            report.summary = f"SW-DP 0x{idcode:08X}, ID register {found.id_hex}: {names}"
            return
    report.present = True
    report.summary = (
        f"SW-DP 0x{idcode:08X} answered, but no ID register holds a part the database"
        " knows (another family, or readout protection hides it)"
    )


def _found(report: DetectReport, found: Identification) -> str:
    """Record that a part answered and which database parts it may be; their names."""
    report.present = True
    report.candidates = tuple(d.id for d in found.candidates)
    report.ambiguous = found.ambiguous
    return ", ".join(f"{d.vendor} {d.part} ({d.id})" for d in found.candidates)
