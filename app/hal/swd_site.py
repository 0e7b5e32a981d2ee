"""A target on an SWD probe as a site: the site options every probe backend takes and
the site and programmer they open (CMSIS-DAP, ST-LINK, FTDI MPSSE, the simulator).

URL options, the same on every SWD backend:

- ``clock=4M``: SWCLK (Hz, with k/M suffixes); the probe may round it down;
- ``connect=normal|under-reset``: attach to a running core, or hold NRST low while
  attaching (a part whose firmware disables the SWD pins or sleeps at once);
- ``nrst=1|0``: whether NRST is wired to the probe (connect-under-reset needs it);
- ``connection=in-system`` (the default: SWD reaches parts on boards) and
  ``power=board|programmer`` (default board: most probes cannot power a target);
- ``loader=1|0``: program the flash through a loader the part's core runs from RAM
  (default), or unit by unit from the host through the debug port (slower; for parts
  whose RAM must not be touched).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from app.hal.bus import DebugAccess
from app.hal.errors import ProgrammerUrlError
from app.hal.programmer import (
    Capabilities,
    Indication,
    ParsedUrl,
    choice,
    connection_options,
)

SWD_OPTIONS = ("clock", "connect", "nrst", "connection", "power", "loader")
DEFAULT_CLOCK_HZ = 4_000_000


@dataclass(frozen=True)
class SwdSiteOptions:
    clock_hz: int
    under_reset: bool
    nrst: bool
    in_system: bool
    board_powered: bool
    loader: bool = True


def parse_clock(text: str, scheme: str) -> int:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([kKmM]?)", text.strip())
    if not match:
        raise ProgrammerUrlError(f"{scheme} option clock={text!r}: give Hz, e.g. 4M or 400k")
    scale = {"": 1, "k": 1_000, "m": 1_000_000}[match.group(2).lower()]
    hz = int(float(match.group(1)) * scale)
    if not 1_000 <= hz <= 100_000_000:
        raise ProgrammerUrlError(f"{scheme} option clock={text}: must be within 1k..100M")
    return hz


def swd_site_options(parsed: ParsedUrl) -> SwdSiteOptions:
    """The options above from a parsed URL (the backend checks for unknown ones)."""
    clock = parse_clock(parsed.options.get("clock", str(DEFAULT_CLOCK_HZ)), parsed.scheme)
    connect = choice(parsed, "connect", "normal", ("normal", "under-reset"))
    nrst = choice(parsed, "nrst", "1", ("1", "0")) == "1"
    if connect == "under-reset" and not nrst:
        raise ProgrammerUrlError(
            f"{parsed.scheme}: connect=under-reset needs NRST wired to the probe (nrst=1)"
        )
    in_system, board_powered = connection_options(parsed, in_system=True, board_powered=True)
    loader = choice(parsed, "loader", "1", ("1", "0")) == "1"
    return SwdSiteOptions(clock, connect == "under-reset", nrst, in_system, board_powered, loader)


class SwdBus:
    """A probe's DebugAccess with the site's wiring applied: connect-under-reset as
    the URL says, NRST only where it is wired. What the algorithm is handed."""

    def __init__(self, access: DebugAccess, options: SwdSiteOptions) -> None:
        self.access = access
        self.options = options

    @property
    def name(self) -> str:
        return self.access.name

    @property
    def has_reset(self) -> bool:
        return self.options.nrst

    def connect(self, *, under_reset: bool = False) -> int:
        return self.access.connect(under_reset=(under_reset or self.options.under_reset))

    def read_words(self, address: int, count: int) -> list[int]:
        return self.access.read_words(address, count)

    def write_words(self, address: int, words: Sequence[int]) -> None:
        self.access.write_words(address, words)

    def write_polled(
        self, units: Sequence[tuple[int, int]], size: int, status: int, busy: int, ready: int = 0
    ) -> list[int]:
        return self.access.write_polled(units, size, status, busy, ready)

    def write_read_back(self, units: Sequence[Sequence[tuple[int, int]]], size: int) -> list[int]:
        return self.access.write_read_back(units, size)

    def ap_read(self, ap: int, register: int) -> int:
        return self.access.ap_read(ap, register)

    def ap_write(self, ap: int, register: int, value: int) -> None:
        self.access.ap_write(ap, register, value)

    def set_reset(self, asserted: bool) -> None:
        if self.options.nrst:
            self.access.set_reset(asserted)

    def close(self) -> None:
        self.access.close()


class SwdSite:
    """One target on one probe. No socket: presence is found by connecting."""

    spi = None
    i2c = None
    uart = None
    microwire = None
    insertions = 0
    adapter_id: str | None = None

    def __init__(self, index: int, access: DebugAccess, options: SwdSiteOptions) -> None:
        self.index = index
        self.swd = SwdBus(access, options)
        self.in_system = options.in_system
        self.board_powered = options.board_powered
        self.link_lost = False
        self.powered = False
        self.indications: list[Indication] = []

    def power(self, on: bool, voltage_mv: int | None = None) -> None:
        """The probe does not switch target power; NRST is released at power-off so a
        cycle never leaves the board held in reset."""
        if not on:
            self.swd.set_reset(False)
        self.powered = on

    def part_present(self) -> bool:
        return True

    def indicate(self, state: Indication) -> None:
        self.indications.append(state)

    def reconnect(self) -> bool:
        return not self.link_lost


class SwdProgrammer:
    """One or more probes' targets as a programmer (one site per probe)."""

    def __init__(self, url: str, name: str, sites: Sequence[SwdSite], clock_hz: int) -> None:
        self.url = url
        self.name = name
        self._sites = list(sites)
        self.capabilities = Capabilities(buses=frozenset({"swd"}), max_spi_clock_hz=clock_hz)

    @property
    def sites(self) -> list[SwdSite]:
        return self._sites

    def close(self) -> None:
        for site in self._sites:
            site.swd.close()
