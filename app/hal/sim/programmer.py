"""The simulated programmer: ``sim://?sites=N[&chip=DEVICE_ID][&timing=...][&fault=...]``.

Options:
- ``sites``: number of sites (1-64, default 1).
- ``chip``: device id of the part in every socket (default: the run's device).
- ``timing``: ``instant`` (default), ``typ``, ``max`` or ``scale:F`` (typical times x F).
- ``fault``: ``SITE:KIND[@ADDR]`` list, see faults.FAULT_KINDS.
- ``seed``: picks fault addresses and unique IDs reproducibly (default 1).
- ``spi_hz``: the programmer's maximum SPI clock (default 30 MHz); ``i2c_hz`` (400 kHz).
- ``adapter``: the socket adapter the sites report (default ``sim-universal``, fits all).
- ``handler``: seconds; a virtual handler swaps in a fresh part after each pass/fail.
- ``connection``: ``socket`` (default) or ``in-system`` (parts on a board, on a clip);
  ``power``: ``programmer`` (default) or ``board``.
- ``jedec``: the ID (hex) the SPI NOR parts answer instead of their own: a part the
  database does not know, or knows under another name.
- ``org``: ``8`` or ``16``: the ORG pin strapping of 93xx Microwire parts, whatever the
  run's device entry says (a part strapped for the other organisation).
- ``sfdp``: ``ok`` or ``none`` (the part has an SFDP table or not, whatever the DB says),
  ``truncated`` or ``lying`` (a damaged table, see app.hal.sim.sfdp).
- A part with SWD facts (STM32, nRF5x) sits on an SWD site (app.hal.sim.swd_sites), which
  takes the SWD probe options ``clock``, ``connect=normal|under-reset``, ``nrst`` and ``loader``
  (app.hal.swd_site) and defaults to ``connection=in-system``, ``power=board``.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence

from app.devicedb.database import DeviceDatabase
from app.devicedb.facts import SpiNorFacts
from app.devicedb.families import Family
from app.devicedb.models import Device
from app.hal.bus import DebugAccess
from app.hal.errors import ProgrammerUrlError
from app.hal.programmer import (
    Capabilities,
    Indication,
    ParsedUrl,
    Site,
    check_options,
    connection_options,
    int_option,
    register_scheme,
)
from app.hal.sim.buses import LinkState, SimI2cBus, SimMicrowireBus, SimSpiBus, SpiChip
from app.hal.sim.clock import SimClock, Timing
from app.hal.sim.dataflash_chip import DataFlashChip
from app.hal.sim.die_stack import DieStack
from app.hal.sim.faults import Fault, parse_faults
from app.hal.sim.i2c_eeprom_chip import I2cEepromChip
from app.hal.sim.microwire_chip import MicrowireChip
from app.hal.sim.sfdp import DAMAGE_KINDS as SFDP_DAMAGE
from app.hal.sim.spi_eeprom_chip import SpiEepromChip
from app.hal.sim.spi_nor_chip import ChipFaults, SpiNorChip

_KNOWN_OPTIONS = {
    "sites",
    "pages",
    "org",
    "chip",
    "timing",
    "fault",
    "seed",
    "spi_hz",
    "i2c_hz",
    "adapter",
    "handler",
    "jedec",
    "sfdp",
    "connection",
    "power",
    "clock",
    "connect",
    "nrst",
    "loader",
}
MAX_SITES = 64
#: the chip models a socket can hold
SimChip = SpiChip | I2cEepromChip | MicrowireChip


class SimSite:
    """A simulated site: one socket holding a chip model (or nothing).

    With a virtual handler (``handler_s``), the site behaves like a socket served by a
    pick-and-place handler: when the site signals pass or fail, the part is taken out
    after ``handler_s`` seconds and a fresh blank part is inserted ``handler_s`` later.
    ``insertions`` counts the parts put in (by the handler or :meth:`insert_part`); the
    part in the socket when the programmer opens is not counted.
    """

    uart = None  # no STM32 model here: tests/stm32_emulator.py is one on a pty

    def __init__(
        self,
        index: int,
        device: Device | None,
        timing: Timing,
        fault: Fault | None,
        rng: random.Random,
        *,
        spi_hz: int,
        i2c_hz: int,
        wrong_jedec: bytes | None,
        adapter: str = "sim-universal",
        handler_s: float | None = None,
        answer_id: bytes | None = None,
        sfdp: str | None = None,
        in_system: bool = False,
        board_powered: bool = False,
        binary_pages: bool = False,
        org: int | None = None,
    ) -> None:
        self.binary_pages = binary_pages  # a DataFlash set to power-of-two pages
        self.org = org  # the ORG strapping of a Microwire part (None: as the entry says)
        self.in_system = in_system  # on a board (clip, header) rather than in a socket
        self.board_powered = board_powered
        self.index = index
        self.adapter_id = adapter
        self.fault = fault
        self.clock = SimClock(timing)
        self.indications: list[Indication] = []
        self.handler_s = handler_s
        self.insertions = 0
        self._device = device
        self._rng = rng
        self._wrong_jedec = wrong_jedec
        self._answer_id = answer_id
        self._sfdp = sfdp
        self._lock = threading.Lock()
        kind = fault.kind if fault else None
        self._kind = kind
        size = device.size_bytes if device is not None else 1
        default_addr = rng.randrange(0, min(size, 0x1000))
        address = fault.address if fault and fault.address is not None else default_addr
        self.fault_address = address if kind in ("stuck-bit", "verify", "erase-fail") else None
        self._link = LinkState(drop_after=rng.randrange(5, 9) if kind == "link-drop" else None)
        self.present = kind != "empty"
        self.spi: SimSpiBus | None = None
        self.i2c: SimI2cBus | None = None
        self.microwire: SimMicrowireBus | None = None
        self.swd: DebugAccess | None = None
        self.chip: SimChip | None = None
        family = device.family if device is not None else Family.SPI_NOR
        if family is Family.I2C_EEPROM:
            self.i2c = SimI2cBus(None, self.clock, self._link, clock_hz=i2c_hz)
            self.i2c.contact = kind != "contact"
        elif family is Family.MICROWIRE:
            self.microwire = SimMicrowireBus(
                None,
                self.clock,
                self._link,
                max_clock_hz=spi_hz,
                do_level=0 if kind == "contact" else 1,
                flaky=random.Random(rng.random()) if kind == "flaky" else None,
            )
            self.microwire.contact = kind != "contact"
        else:
            self.spi = SimSpiBus(
                None,
                self.clock,
                self._link,
                max_clock_hz=spi_hz,
                miso_level=0x00 if kind == "contact" else 0xFF,
                flaky=random.Random(rng.random()) if kind == "flaky" else None,
            )
            self.spi.contact = kind != "contact"
        if self.present:
            self._seat(self._new_chip())

    @property
    def link_lost(self) -> bool:
        """The simulated link died (link-drop fault)."""
        return self._link.dead

    def reconnect(self) -> bool:
        """A dropped simulated link stays dropped (the fault models a board that is
        gone): False until the programmer is opened again."""
        return not self._link.dead

    def _seat(self, chip: SimChip | None) -> None:
        """Put ``chip`` (None: nothing) in the socket, on the site's bus."""
        self.chip = chip
        if self.i2c is not None:
            self.i2c.chip = chip if isinstance(chip, I2cEepromChip) else None
        if self.microwire is not None:
            self.microwire.chip = chip if isinstance(chip, MicrowireChip) else None
        if self.spi is not None:
            self.spi.chip = (
                chip
                if isinstance(chip, SpiNorChip | SpiEepromChip | DataFlashChip | DieStack)
                else None
            )

    def _new_chip(self) -> SimChip | None:
        """A fresh blank part of the site's device, carrying the site's fault."""
        device, kind = self._device, self._kind
        if device is None or device.family is Family.STM32_UART:
            return None  # no STM32 model here: tests/stm32_emulator.py is one on a pty
        address = self.fault_address
        faults = ChipFaults(
            stuck_address=address if kind == "stuck-bit" else None,
            verify_address=address if kind == "verify" else None,
            busy_forever=kind == "busy-timeout",
            erase_fail_address=address if kind == "erase-fail" else None,
        )
        if device.family is Family.I2C_EEPROM:
            return I2cEepromChip(
                device, self.clock, faults=faults, write_protected=kind == "protected"
            )
        if device.family is Family.MICROWIRE:
            return MicrowireChip(device, self.clock, faults=faults, word_bits=self.org)
        if device.family is Family.SPI_EEPROM:
            return SpiEepromChip(device, self.clock, faults=faults, protected=kind == "protected")
        if device.family is Family.DATAFLASH:
            return DataFlashChip(
                device,
                self.clock,
                faults=faults,
                protected=kind == "protected",
                binary=self.binary_pages,
                jedec_override=self._wrong_jedec if kind == "wrong-id" else self._answer_id,
            )
        if device.facts_as(SpiNorFacts).die_select:
            return DieStack(
                device,
                self.clock,
                jedec_override=self._wrong_jedec if kind == "wrong-id" else self._answer_id,
                faults=faults,
                protected=kind == "protected",
                unique_id=self._rng.randbytes(16),
            )
        return SpiNorChip(
            device,
            self.clock,
            jedec_override=self._wrong_jedec if kind == "wrong-id" else self._answer_id,
            faults=faults,
            protected=kind == "protected",
            unique_id=self._rng.randbytes(16),
            sfdp=self._sfdp,
        )

    def power(self, on: bool, voltage_mv: int | None = None) -> None:
        bus = self.spi or self.i2c or self.microwire
        if bus is None:
            return
        if on and not bus.powered and self.chip is not None:
            self.chip.power_cycle()
            if isinstance(bus, SimSpiBus | SimMicrowireBus):
                bus.poller.reset()  # maybe another part: its busy times are learned anew
        bus.powered = on

    def part_present(self) -> bool:
        return self.present

    def indicate(self, state: Indication) -> None:
        self.indications.append(state)
        if self.handler_s is not None and state in ("pass", "fail"):
            _later(self.handler_s, self._swap_part)

    def _swap_part(self) -> None:
        """The handler takes the part out and, ``handler_s`` later, puts a fresh one in
        (one thread, so the two steps can never happen in the wrong order)."""
        self.insert_part(False)
        time.sleep(self.handler_s or 0.0)
        self.insert_part(True)

    def insert_part(self, present: bool = True) -> None:
        """Put a fresh blank part in the socket (or take the part out)."""
        if self._kind == "empty":
            return  # this socket's contacts never see a part
        with self._lock:
            if present and not self.present:
                self.insertions += 1
                self._seat(self._new_chip())
            elif not present:
                self._seat(None)
            self.present = present


def _later(delay: float, action: Callable[[], None]) -> None:
    timer = threading.Timer(delay, action)
    timer.daemon = True
    timer.start()


class SimProgrammer:
    name = "Socketeer simulator"

    def __init__(self, url: str, sites: Sequence[Site], spi_hz: int) -> None:
        self.url = url
        self._sites = list(sites)
        self.capabilities = Capabilities(
            buses=frozenset({"spi", "i2c", "microwire", "swd"}),
            max_spi_clock_hz=spi_hz,
            power_control=True,
            socket_detect=True,
        )

    @property
    def sites(self) -> list[Site]:
        return list(self._sites)

    def close(self) -> None:
        for site in self._sites:
            site.power(False)


def _float_option(options: Mapping[str, str], key: str) -> float | None:
    text = options.get(key)
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ProgrammerUrlError(f"sim option {key}={text!r} is not a number of seconds") from None
    if not 0 <= value <= 60:
        raise ProgrammerUrlError(f"sim option {key}={value} must be within 0..60 seconds")
    return value


@register_scheme("sim")
def open_sim(parsed: ParsedUrl, context: Mapping[str, object]) -> SimProgrammer:
    check_options(parsed, _KNOWN_OPTIONS)
    n_sites = int_option(parsed, "sites", 1, 1, MAX_SITES, base=0)
    seed = int_option(parsed, "seed", 1, 0, 2**32, base=0)
    spi_hz = int_option(parsed, "spi_hz", 30_000_000, 1000, 200_000_000, base=0)
    i2c_hz = int_option(parsed, "i2c_hz", 400_000, 1000, 3_400_000, base=0)
    timing = Timing.parse(parsed.options.get("timing", "instant"))
    faults = parse_faults(parsed.options.get("fault", ""), n_sites)
    found = context.get("database")
    database = found if isinstance(found, DeviceDatabase) else None
    given = context.get("device")
    device = given if isinstance(given, Device) else None
    chip_id = parsed.options.get("chip")
    if chip_id:
        if database is None:
            raise ProgrammerUrlError("sim chip= needs the device database")
        device = database.get(chip_id)
    if device is not None:
        for fault in faults.values():
            if fault.address is not None and fault.address >= device.size_bytes:
                raise ProgrammerUrlError(
                    f"fault '{fault.site}:{fault.kind}@0x{fault.address:X}': the address lies"
                    f" beyond the {device.part} ({device.size_bytes} bytes)"
                )
    if device is not None and device.family is Family.MICROWIRE:
        for fault in faults.values():
            if fault.kind == "protected":
                raise ProgrammerUrlError(
                    f"fault '{fault.site}:protected': {device.part} has no write protection"
                    " to set (Microwire parts only gate writes with EWEN/EWDS)"
                )
    swd_part = device is not None and device.swd is not None
    wrong = (
        _other_jedec(database, device)
        if any(f.kind == "wrong-id" for f in faults.values()) and not swd_part
        else None
    )
    handler_s = _float_option(parsed.options, "handler")
    answer_id = _jedec_option(parsed.options)
    in_system, board_powered = connection_options(parsed, in_system=False, board_powered=False)
    sfdp = parsed.options.get("sfdp")
    if sfdp is not None and sfdp not in ("ok", "none", *SFDP_DAMAGE):
        raise ProgrammerUrlError(
            f"sim option sfdp={sfdp!r}: use ok, none, {', '.join(SFDP_DAMAGE)}"
        )
    adapter = parsed.options.get("adapter", "sim-universal")
    pages = parsed.options.get("pages", "dataflash")
    if pages not in ("dataflash", "binary"):
        raise ProgrammerUrlError(
            f"sim option pages={pages!r}: use dataflash (264/528/1056-byte pages, as"
            " DataFlash parts ship) or binary (set to power-of-two pages)"
        )
    org_text = parsed.options.get("org")
    if org_text is not None and org_text not in ("8", "16"):
        raise ProgrammerUrlError(f"sim option org={org_text!r}: use 8 (ORG low) or 16 (ORG high)")
    rng = random.Random(seed)
    if device is not None and device.swd is not None:
        from app.hal.sim.swd_sites import SimSwdSite
        from app.hal.swd_site import swd_site_options

        options = swd_site_options(parsed)
        swd_sites = [
            SimSwdSite(i, device, timing, faults.get(i), rng, options)
            for i in range(1, n_sites + 1)
        ]
        return SimProgrammer(parsed.scheme + "://" + parsed.path, swd_sites, options.clock_hz)
    sites = [
        SimSite(
            i,
            device,
            timing,
            faults.get(i),
            rng,
            spi_hz=spi_hz,
            i2c_hz=i2c_hz,
            wrong_jedec=wrong,
            adapter=adapter,
            handler_s=handler_s,
            answer_id=answer_id,
            sfdp=sfdp,
            in_system=in_system,
            board_powered=board_powered,
            binary_pages=pages == "binary",
            org=int(org_text) if org_text else None,
        )
        for i in range(1, n_sites + 1)
    ]
    return SimProgrammer(parsed.scheme + "://" + parsed.path, sites, spi_hz)


def _jedec_option(options: Mapping[str, str]) -> bytes | None:
    text = options.get("jedec")
    if text is None:
        return None
    try:
        value = bytes.fromhex(text)
    except ValueError:
        value = b""
    if len(value) != 3:
        raise ProgrammerUrlError(f"sim option jedec={text!r}: give 3 bytes in hex, as EF4018")
    return value


def _other_jedec(database: DeviceDatabase | None, device: Device | None) -> bytes:
    """A real ID of a different part, so the wrong-id fault looks like a real mix-up."""
    if device is not None and device.family not in (Family.SPI_NOR, Family.DATAFLASH):
        raise ProgrammerUrlError(
            f"the wrong-id fault needs a part with a JEDEC ID (SPI NOR, DataFlash);"
            f" {device.part} has no ID command"
        )
    mine = bytes.fromhex(device.jedec_id or "") if device is not None else None
    if database is not None:
        for other in database.search("", family=Family.SPI_NOR):
            theirs = other.facts_as(SpiNorFacts).jedec_id
            if theirs != mine:
                return theirs
    return b"\xc2\x20\x18" if mine != b"\xc2\x20\x18" else b"\xef\x40\x18"
