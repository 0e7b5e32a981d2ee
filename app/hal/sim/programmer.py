"""The simulated programmer: ``sim://?sites=N[&chip=DEVICE_ID][&timing=...][&fault=...]``.

Options:
- ``sites``: number of sites (1-64, default 1).
- ``chip``: device id of the part in every socket (default: the run's device).
- ``timing``: ``instant`` (default), ``typ``, ``max`` or ``scale:F`` (typical times x F).
- ``fault``: ``SITE:KIND[@ADDR]`` list, see faults.FAULT_KINDS.
- ``seed``: picks fault addresses and unique IDs reproducibly (default 1).
- ``spi_hz``: the programmer's maximum SPI clock (default 30 MHz); ``i2c_hz`` (400 kHz).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from app.hal.errors import ProgrammerUrlError
from app.hal.programmer import Capabilities, Indication, ParsedUrl, register_scheme
from app.hal.sim.buses import LinkState, SimI2cBus, SimSpiBus
from app.hal.sim.clock import SimClock, Timing
from app.hal.sim.faults import Fault, parse_faults
from app.hal.sim.i2c_eeprom_chip import I2cEepromChip
from app.hal.sim.spi_nor_chip import ChipFaults, SpiNorChip

_KNOWN_OPTIONS = {"sites", "chip", "timing", "fault", "seed", "spi_hz", "i2c_hz"}
MAX_SITES = 64


class SimSite:
    """A simulated site: one socket holding a chip model (or nothing)."""

    def __init__(
        self,
        index: int,
        device: Any | None,
        timing: Timing,
        fault: Fault | None,
        rng: random.Random,
        *,
        spi_hz: int,
        i2c_hz: int,
        wrong_jedec: str | None,
    ) -> None:
        self.index = index
        self.adapter_id = "sim-universal"
        self.fault = fault
        self.clock = SimClock(timing)
        self.indications: list[Indication] = []
        kind = fault.kind if fault else None
        size = int(device.size_bytes) if device is not None else 1
        default_addr = rng.randrange(0, min(size, 0x1000))
        address = fault.address if fault and fault.address is not None else default_addr
        chip_faults = ChipFaults(
            stuck_address=address if kind == "stuck-bit" else None,
            verify_address=address if kind == "verify" else None,
            busy_forever=kind == "busy-timeout",
            erase_fail_address=address if kind == "erase-fail" else None,
        )
        self.fault_address = address if kind in ("stuck-bit", "verify", "erase-fail") else None
        link = LinkState(drop_after=rng.randrange(5, 9) if kind == "link-drop" else None)
        self.present = kind != "empty"
        self.spi: SimSpiBus | None = None
        self.i2c: SimI2cBus | None = None
        self.chip: SpiNorChip | I2cEepromChip | None = None
        family = device.family if device is not None else "spi-nor"
        if family == "i2c-eeprom":
            chip = (
                I2cEepromChip(
                    device.raw, self.clock, faults=chip_faults, write_protected=kind == "protected"
                )
                if device is not None and self.present
                else None
            )
            self.chip = chip
            self.i2c = SimI2cBus(chip, self.clock, link, clock_hz=i2c_hz)
            self.i2c.contact = kind != "contact"
        else:
            spi_chip = None
            if device is not None and self.present:
                spi_chip = SpiNorChip(
                    device.raw,
                    self.clock,
                    jedec_override=wrong_jedec if kind == "wrong-id" else None,
                    faults=chip_faults,
                    protected=kind == "protected",
                    unique_id=rng.randbytes(16),
                )
            self.chip = spi_chip
            self.spi = SimSpiBus(
                spi_chip,
                self.clock,
                link,
                max_clock_hz=spi_hz,
                miso_level=0x00 if kind == "contact" else 0xFF,
            )
            self.spi.contact = kind != "contact"

    def power(self, on: bool, voltage_mv: int | None = None) -> None:
        bus = self.spi or self.i2c
        if bus is None:
            return
        if on and not bus.powered and self.chip is not None:
            self.chip.power_cycle()
        bus.powered = on

    def part_present(self) -> bool:
        return self.present

    def indicate(self, state: Indication) -> None:
        self.indications.append(state)

    def insert_part(self, present: bool = True) -> None:
        """Virtual handler: put a part in (or take it out of) the socket."""
        self.present = present


class SimProgrammer:
    name = "Socketeer simulator"

    def __init__(self, url: str, sites: list[SimSite], spi_hz: int) -> None:
        self.url = url
        self._sites = sites
        self.capabilities = Capabilities(
            buses=frozenset({"spi", "i2c"}),
            max_spi_clock_hz=spi_hz,
            power_control=True,
            socket_detect=True,
        )

    @property
    def sites(self) -> list[SimSite]:
        return list(self._sites)

    def close(self) -> None:
        for site in self._sites:
            site.power(False)


def _int_option(options: Mapping[str, str], key: str, default: int, lo: int, hi: int) -> int:
    text = options.get(key)
    if text is None:
        return default
    try:
        value = int(text, 0)
    except ValueError:
        raise ProgrammerUrlError(f"sim option {key}={text!r} is not a number") from None
    if not lo <= value <= hi:
        raise ProgrammerUrlError(f"sim option {key}={value} must be within {lo}..{hi}")
    return value


@register_scheme("sim")
def open_sim(parsed: ParsedUrl, context: Mapping[str, object]) -> SimProgrammer:
    unknown = set(parsed.options) - _KNOWN_OPTIONS
    if unknown:
        raise ProgrammerUrlError(
            f"unknown sim option(s) {', '.join(sorted(unknown))}"
            f" (known: {', '.join(sorted(_KNOWN_OPTIONS))})"
        )
    n_sites = _int_option(parsed.options, "sites", 1, 1, MAX_SITES)
    seed = _int_option(parsed.options, "seed", 1, 0, 2**32)
    spi_hz = _int_option(parsed.options, "spi_hz", 30_000_000, 1000, 200_000_000)
    i2c_hz = _int_option(parsed.options, "i2c_hz", 400_000, 1000, 3_400_000)
    timing = Timing.parse(parsed.options.get("timing", "instant"))
    faults = parse_faults(parsed.options.get("fault", ""), n_sites)
    database: Any = context.get("database")
    device: Any = context.get("device")
    chip_id = parsed.options.get("chip")
    if chip_id:
        if database is None:
            raise ProgrammerUrlError("sim chip= needs the device database")
        device = database.get(chip_id)
    wrong = (
        _other_jedec(database, device)
        if any(f.kind == "wrong-id" for f in faults.values())
        else None
    )
    rng = random.Random(seed)
    sites = [
        SimSite(
            i, device, timing, faults.get(i), rng, spi_hz=spi_hz, i2c_hz=i2c_hz, wrong_jedec=wrong
        )
        for i in range(1, n_sites + 1)
    ]
    return SimProgrammer(parsed.scheme + "://" + parsed.path, sites, spi_hz)


def _other_jedec(database: Any, device: Any) -> str:
    """A real ID of a different part, so the wrong-id fault looks like a real mix-up."""
    mine = device.jedec_id if device is not None else None
    if device is not None and device.family != "spi-nor":
        raise ProgrammerUrlError("the wrong-id fault needs a part with a JEDEC ID (SPI NOR)")
    if database is not None:
        for other in database.search("", family="spi-nor"):
            if other.jedec_id and other.jedec_id != mine:
                return other.jedec_id
    return "C22018" if mine != "C22018" else "EF4018"
