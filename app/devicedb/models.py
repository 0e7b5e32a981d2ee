"""Typed, read-only views of device and package entries.

A Device keeps the common facts as typed attributes and the whole JSON entry in
``raw`` (family parameters: erase table, page size, bootloader, ...), so the schema
can grow without this class changing. Algorithms read their parameters from ``raw``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Package:
    """A row of packages.json."""

    name: str
    pins: int
    pitch_mm: float
    body_mm: tuple[float, float]
    adapter: str | None
    notes: str | None
    source_file: str

    @classmethod
    def from_raw(cls, raw: Mapping[str, Any], source_file: str) -> Package:
        body = raw["body_mm"]
        return cls(
            name=raw["name"],
            pins=raw["pins"],
            pitch_mm=raw["pitch_mm"],
            body_mm=(body[0], body[1]),
            adapter=raw.get("adapter"),
            notes=raw.get("notes"),
            source_file=source_file,
        )

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "pins": self.pins,
            "pitch_mm": self.pitch_mm,
            "body_mm": list(self.body_mm),
            "adapter": self.adapter,
        }
        if self.notes is not None:
            data["notes"] = self.notes
        return data


@dataclass(frozen=True, slots=True)
class Device:
    """One device entry of the database.

    ``source_file`` is the file the entry was read from (display form, e.g.
    ``device_db/spi_nor/winbond.json``); when a user overlay entry replaced an
    installed one, ``overrides`` names the installed file it replaced.
    """

    id: str
    vendor: str
    part: str
    aliases: tuple[str, ...]
    family: str
    algorithm: str
    size_bytes: int
    packages: tuple[str, ...]
    raw: Mapping[str, Any] = field(compare=False, repr=False)
    source_file: str = ""
    overlay: bool = False
    overrides: str | None = None

    @classmethod
    def from_raw(
        cls,
        raw: Mapping[str, Any],
        source_file: str,
        *,
        overlay: bool = False,
        overrides: str | None = None,
    ) -> Device:
        return cls(
            id=raw["id"],
            vendor=raw["vendor"],
            part=raw["part"],
            aliases=tuple(raw.get("aliases", ())),
            family=raw["family"],
            algorithm=raw["algorithm"],
            size_bytes=raw["size_bytes"],
            packages=tuple(raw.get("packages", ())),
            raw=raw,
            source_file=source_file,
            overlay=overlay,
            overrides=overrides,
        )

    def param(self, key: str, default: Any = None) -> Any:
        """A family parameter from the entry, e.g. ``param("page_size_bytes")``."""
        return self.raw.get(key, default)

    @property
    def voltage_mv(self) -> tuple[int, int]:
        low, high = self.raw["voltage_mv"]
        return low, high

    @property
    def source(self) -> str:
        """The datasheet the entry's facts came from."""
        return self.raw.get("source", "")

    @property
    def tested(self) -> Mapping[str, str]:
        return self.raw.get("tested", {})

    @property
    def address_range(self) -> tuple[int, int]:
        """[start, end) of the part as images address it (STM32 flash sits at flash_base)."""
        base = int(str(self.raw.get("flash_base", "0")), 0)
        return base, base + self.size_bytes

    @property
    def jedec_id(self) -> str | None:
        """6 uppercase hex digits (SPI NOR), else None."""
        return self.raw.get("ids", {}).get("jedec")

    @property
    def jedec_extended(self) -> str | None:
        return self.raw.get("ids", {}).get("extended")

    @property
    def stm32_pid(self) -> int | None:
        pid = self.raw.get("ids", {}).get("stm32_pid")
        return None if pid is None else int(pid, 16)

    @property
    def erased_value(self) -> int:
        return int(self.raw.get("erased_value", "0xFF"), 16)

    def to_json(self) -> dict[str, Any]:
        """The entry as in its file, plus where it came from."""
        data = dict(self.raw)
        data["source_file"] = self.source_file
        if self.overrides is not None:
            data["overrides_file"] = self.overrides
        return data


@dataclass(frozen=True, slots=True)
class Identification:
    """What an ID read from a chip says about which part is in the socket.

    ``candidates`` lists every part with that ID (clones and rebrands often
    share a JEDEC ID, so more than one is normal and the operator must choose).
    """

    bus: str
    id_hex: str
    candidates: tuple[Device, ...]
    note: str | None = None

    @property
    def found(self) -> bool:
        return bool(self.candidates)

    @property
    def ambiguous(self) -> bool:
        return len(self.candidates) > 1

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "bus": self.bus,
            "id": self.id_hex,
            "found": self.found,
            "ambiguous": self.ambiguous,
            "candidates": [d.to_json() for d in self.candidates],
        }
        if self.note:
            data["note"] = self.note
        return data
