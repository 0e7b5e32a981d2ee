"""Several programmer boards as one station: sites renumbered 1..N in URL order."""

from __future__ import annotations

from collections.abc import Sequence

from app.hal.bus import BootloaderLink, DebugAccess, I2cBus, MicrowireBus, SpiBus
from app.hal.programmer import Capabilities, Indication, Programmer, Site


class StationSite:
    """A board's site under its station-wide number; everything else is the board's."""

    def __init__(self, index: int, site: Site) -> None:
        self.index = index
        self.board_site = site

    @property
    def adapter_id(self) -> str | None:
        return self.board_site.adapter_id

    @property
    def spi(self) -> SpiBus | None:
        return self.board_site.spi

    @property
    def i2c(self) -> I2cBus | None:
        return self.board_site.i2c

    @property
    def uart(self) -> BootloaderLink | None:
        return self.board_site.uart

    @property
    def microwire(self) -> MicrowireBus | None:
        return self.board_site.microwire

    @property
    def swd(self) -> DebugAccess | None:
        return self.board_site.swd

    @property
    def in_system(self) -> bool:
        return self.board_site.in_system

    @property
    def board_powered(self) -> bool:
        return self.board_site.board_powered

    @property
    def link_lost(self) -> bool:
        return self.board_site.link_lost

    @property
    def insertions(self) -> int:
        return self.board_site.insertions

    def power(self, on: bool, voltage_mv: int | None = None) -> None:
        self.board_site.power(on, voltage_mv)

    def part_present(self) -> bool:
        return self.board_site.part_present()

    def indicate(self, state: Indication) -> None:
        self.board_site.indicate(state)

    def reconnect(self) -> bool:
        return self.board_site.reconnect()


class StationProgrammer:
    name = "Socketeer station"

    def __init__(self, url: str, boards: Sequence[Programmer]) -> None:
        self.url = url
        self.boards = list(boards)
        self._sites = [
            StationSite(number, site)
            for number, site in enumerate((s for b in boards for s in b.sites), start=1)
        ]
        caps = [b.capabilities for b in boards]
        self.capabilities = Capabilities(
            buses=frozenset().union(*(c.buses for c in caps)),
            max_spi_clock_hz=min(c.max_spi_clock_hz for c in caps),
            power_control=all(c.power_control for c in caps),
            socket_detect=all(c.socket_detect for c in caps),
            unstated_drive_mv=max(
                (c.unstated_drive_mv for c in caps if c.unstated_drive_mv), default=None
            ),
        )

    @property
    def sites(self) -> list[StationSite]:
        return list(self._sites)

    def close(self) -> None:
        for board in self.boards:
            board.close()
