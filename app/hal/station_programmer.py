"""Several programmer boards as one station: sites renumbered 1..N in URL order."""

from __future__ import annotations

from typing import Any

from app.hal.programmer import Capabilities


class StationSite:
    """A board's site under its station-wide number; everything else is the board's."""

    def __init__(self, index: int, site: Any) -> None:
        self.index = index
        self.board_site = site

    def __getattr__(self, name: str) -> Any:
        return getattr(self.board_site, name)


class StationProgrammer:
    name = "Socketeer station"

    def __init__(self, url: str, boards: list[Any]) -> None:
        self.url = url
        self.boards = boards
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
        )

    @property
    def sites(self) -> list[StationSite]:
        return list(self._sites)

    def close(self) -> None:
        for board in self.boards:
            board.close()
