"""Typed, read-only views of device and package entries.

A Device is built once, when the database loads: its common facts are attributes and
its family's facts a frozen dataclass (app.devicedb.facts), read from the JSON entry by
app.devicedb.entry_reader. Nothing downstream reads the JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

from app.devicedb.entry_reader import EntryReader, family_facts
from app.devicedb.facts import (
    CortexMFacts,
    DataFlashFacts,
    FamilyFacts,
    SpiNorFacts,
    Stm32Facts,
    SwdFacts,
    VoltageRange,
)
from app.devicedb.families import Family
from app.devicedb.files import display_path

F = TypeVar("F", bound=FamilyFacts)


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
class Provisional:
    """A profile Socketeer built from a part's own SFDP table (app.devicedb.sfdp_profile),
    not from a datasheet: writing with it needs an engineer's approval first."""

    sfdp_sha256: str  # of the SFDP bytes the profile was built from
    created: str  # ISO 8601
    approved_by: str | None
    approved_at: str | None

    @property
    def approved(self) -> bool:
        return bool(self.approved_by)

    @classmethod
    def from_raw(cls, raw: Any) -> Provisional | None:
        """The ``provisional`` object of an entry (already schema-checked), or None."""
        if not isinstance(raw, Mapping):
            return None
        return cls(
            sfdp_sha256=str(raw.get("sfdp_sha256", "")),
            created=str(raw.get("created", "")),
            approved_by=raw.get("approved_by") or None,
            approved_at=raw.get("approved_at") or None,
        )


@dataclass(frozen=True, slots=True)
class Device:
    """One device entry of the database, as typed facts.

    The common facts are attributes; ``facts`` holds the family's (SpiNorFacts,
    I2cEepromFacts or Stm32Facts; :meth:`facts_as` narrows it). ``raw`` is the JSON entry,
    kept only to print it (``to_json``). ``source_file`` is the file the entry was read
    from (display form, e.g. ``device_db/spi_nor/winbond.json``); when a user overlay
    entry replaced an installed one, ``overrides`` names the installed file it replaced.
    """

    id: str
    vendor: str
    part: str
    aliases: tuple[str, ...]
    family: Family
    algorithm: str
    size_bytes: int
    voltage_mv: VoltageRange
    erased_value: int
    max_clock_hz: int | None  # None: the part sets the clock itself (STM32 bootloader)
    packages: tuple[str, ...]
    source: str  # the datasheet the entry's facts came from
    tested: Mapping[str, str] = field(compare=False)  # step -> untested/simulator/hardware
    notes: str | None
    facts: FamilyFacts
    raw: Mapping[str, Any] = field(compare=False, repr=False)
    source_file: str = ""
    overlay: bool = False
    overrides: str | None = None
    provisional: Provisional | None = None
    #: the names flashrom's chip table gives this part ("W25Q256JV_Q",
    #: "S25FL128S......0"), so a user coming from flashrom finds it by that name
    flashrom_names: tuple[str, ...] = ()

    @classmethod
    def from_raw(
        cls,
        raw: Mapping[str, Any],
        source_file: str,
        *,
        overlay: bool = False,
        overrides: str | None = None,
    ) -> Device:
        """The device of a JSON entry. Raises FactsError naming the JSON path of a
        value that is missing or malformed."""
        entry = EntryReader(raw)
        family = entry.family()
        tested = entry.child("tested").obj if entry.has("tested") else {}
        return cls(
            id=entry.text("id"),
            vendor=entry.text("vendor"),
            part=entry.text("part"),
            aliases=entry.strings("aliases"),
            family=family,
            algorithm=entry.text("algorithm"),
            size_bytes=entry.integer("size_bytes", 1),
            voltage_mv=entry.voltage(),
            erased_value=entry.hex_int("erased_value"),
            max_clock_hz=entry.integer("max_clock_hz", 1) if entry.has("max_clock_hz") else None,
            packages=entry.strings("packages"),
            source=entry.text("source"),
            tested=MappingProxyType(dict(tested)),
            notes=entry.optional_text("notes"),
            facts=family_facts(entry, family),
            raw=raw,
            source_file=source_file,
            overlay=overlay,
            overrides=overrides,
            provisional=Provisional.from_raw(raw.get("provisional")),
            flashrom_names=entry.strings("flashrom_names"),
        )

    def facts_as(self, kind: type[F]) -> F:
        """The family facts as ``kind``; TypeError when the part is of another family
        (an algorithm given a part it cannot program)."""
        if not isinstance(self.facts, kind):
            raise TypeError(f"{self.id} is of family {self.family}, not {kind.family}")
        return self.facts

    def __reduce__(self) -> tuple[object, tuple[dict[str, object]]]:
        """Pickle (the database cache) with ``tested`` as a plain dict: a read-only
        mapping proxy cannot be pickled."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values["tested"] = dict(self.tested)
        return _unpickle_device, (values,)

    @property
    def memory_base(self) -> int:
        """Where the memory sits in an image's address space (STM32 flash: flash_base)."""
        if isinstance(self.facts, Stm32Facts | CortexMFacts):
            return self.facts.flash_base
        return 0

    @property
    def address_range(self) -> tuple[int, int]:
        """[start, end) of the part as images address it: for a DataFlash, the larger
        of its two page modes (the part itself says which it is set to)."""
        size = self.size_bytes
        if isinstance(self.facts, DataFlashFacts):
            size = self.facts.pages * self.facts.page_size
        return self.memory_base, self.memory_base + size

    @property
    def jedec_id(self) -> str | None:
        """6 uppercase hex digits (SPI NOR, DataFlash), else None."""
        if isinstance(self.facts, SpiNorFacts | DataFlashFacts):
            return self.facts.jedec_id.hex().upper()
        return None

    @property
    def jedec_ids(self) -> tuple[str, ...]:
        """Every RDID answer (6 uppercase hex digits) the part is known to give, the
        datasheet's first (SPI NOR identified by RDID, DataFlash), else ()."""
        if isinstance(self.facts, SpiNorFacts):
            return tuple(i.hex().upper() for i in self.facts.jedec_ids)
        if isinstance(self.facts, DataFlashFacts):
            return (self.facts.jedec_id.hex().upper(),)
        return ()

    @property
    def jedec_extended(self) -> str | None:
        """Uppercase hex of the ID bytes after the first 3 (SPI NOR), else None."""
        if isinstance(self.facts, SpiNorFacts) and self.facts.extended_id:
            return self.facts.extended_id.hex().upper()
        return None

    @property
    def swd(self) -> SwdFacts | None:
        """How the part is programmed through its debug port, where it can be."""
        return self.facts.swd if isinstance(self.facts, Stm32Facts | CortexMFacts) else None

    @property
    def stm32_pid(self) -> int | None:
        return self.facts.pid if isinstance(self.facts, Stm32Facts) else None

    def to_json(self) -> dict[str, Any]:
        """The entry as in its file, plus where it came from."""
        data = dict(self.raw)
        data["source_file"] = display_path(Path(self.source_file))
        if self.overrides is not None:
            data["overrides_file"] = display_path(Path(self.overrides))
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


def _unpickle_device(values: dict[str, Any]) -> Device:
    return Device(**{**values, "tested": MappingProxyType(values["tested"])})
