"""DeviceDatabase: look up, search and identify devices of a validated database."""

from __future__ import annotations

import difflib
import pickle
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

from app.core.errors import DeviceDbError, InputError
from app.devicedb.facts import SpiNorFacts
from app.devicedb.families import ID_BUSES
from app.devicedb.models import Device, Identification, Package
from app.devicedb.search import NO_MATCH, Score, SearchKeys, normalize, parse_query, rank


class UnknownDeviceError(InputError, KeyError):
    """No device has the requested id. The message lists close matches."""

    def __init__(self, device_id: str, suggestions: Iterable[str] = ()) -> None:
        self.device_id = device_id
        self.suggestions = tuple(suggestions)
        message = f"unknown device id {device_id!r}"
        if self.suggestions:
            message += "; did you mean: " + ", ".join(self.suggestions)
        else:
            message += " (try 'socketeer devices search')"
        super().__init__(message)

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


_HEX_JUNK = re.compile(r"0[xX]|[\s:_\-,]")


def normalize_hex(text: str) -> str:
    """ "0xEF4018", "ef 40 18", "EF:40:18" -> "EF4018". Raises InputError if not hex."""
    digits = _HEX_JUNK.sub("", text).upper()
    if not digits or not all(c in "0123456789ABCDEF" for c in digits):
        raise InputError(f"{text!r} is not a hex ID (e.g. EF4018 or 0xEF4018)")
    return digits


def _sort_key(device: Device) -> tuple[str, str, str]:
    return device.vendor.casefold(), device.part.casefold(), device.id


class _Shelf:
    """The devices of a database, in order; after a load from the cache each one stays
    pickled until it is asked for. A command that programs one part unpickles one entry,
    not hundreds (most of a cached load's time was building every Device)."""

    def __init__(self, devices: tuple[Device, ...] = (), blobs: tuple[bytes, ...] = ()) -> None:
        self._blobs = blobs  # (): built from ``devices``, not from the cache
        self._loaded: list[Device | None] = list(devices) or [None] * len(blobs)
        self._all: tuple[Device, ...] | None = devices or None
        #: reads the database again when a cached entry cannot be unpickled (a damaged
        #: cache only costs time, as when it is damaged beyond the first load)
        self.rebuild: Callable[[], tuple[Device, ...]] | None = None

    def __len__(self) -> int:
        return len(self._loaded)

    def __getitem__(self, index: int) -> Device:
        device = self._loaded[index]
        if device is None:
            try:
                device = self._loaded[index] = pickle.loads(self._blobs[index])
            except Exception:
                if self.rebuild is None:
                    raise
                return self._rebuilt()[index]
        return device

    def _rebuilt(self) -> tuple[Device, ...]:
        assert self.rebuild is not None
        devices = self.rebuild()
        if len(devices) != len(self._loaded):  # the files changed since the key was made
            raise DeviceDbError(
                "the device database changed while it was being loaded; run the command again"
            )
        self._blobs, self._loaded, self._all = (), list(devices), devices
        return devices

    def all(self) -> tuple[Device, ...]:
        if self._all is None:
            self._all = tuple(self[i] for i in range(len(self)))
        return self._all

    def blobs(self) -> tuple[bytes, ...]:
        """Each device pickled on its own (what the cache keeps)."""
        return self._blobs or tuple(pickle.dumps(device, protocol=5) for device in self.all())


@dataclass(frozen=True)
class _Index:
    """What lookups and searches need without building a Device: positions in the
    shelf, the normalized search keys and the sizes."""

    by_id: dict[str, int]
    by_normalized_id: dict[str, int]
    keys: tuple[SearchKeys, ...]
    sizes: tuple[int, ...]
    by_jedec: dict[str, tuple[int, ...]]
    by_pid: dict[int, tuple[int, ...]]

    @classmethod
    def of(cls, ordered: tuple[Device, ...]) -> _Index:
        by_jedec: dict[str, list[int]] = {}
        by_pid: dict[int, list[int]] = {}
        for index, device in enumerate(ordered):
            for jedec in device.jedec_ids:
                by_jedec.setdefault(jedec, []).append(index)
            if device.stm32_pid is not None:
                by_pid.setdefault(device.stm32_pid, []).append(index)
        return cls(
            by_id={d.id: i for i, d in enumerate(ordered)},
            by_normalized_id={normalize(d.id): i for i, d in enumerate(ordered)},
            keys=tuple(SearchKeys.of(d) for d in ordered),
            sizes=tuple(d.size_bytes for d in ordered),
            by_jedec={k: tuple(v) for k, v in by_jedec.items()},
            by_pid={k: tuple(v) for k, v in by_pid.items()},
        )


class DeviceDatabase:
    """The merged, validated device set (installed entries plus the user overlay)."""

    def __init__(self, devices: Iterable[Device], packages: Mapping[str, Package]) -> None:
        ordered = tuple(sorted(devices, key=_sort_key))
        ordered = tuple({d.id: d for d in ordered}.values())  # one entry per id
        self._shelf = _Shelf(ordered)
        self._index = _Index.of(ordered)
        self.packages: dict[str, Package] = dict(packages)

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        """Pickled (the cache) with every device pickled apart: see _Shelf."""
        return _restore, (self._shelf.blobs(), self._index, self.packages)

    # -- collection protocol -------------------------------------------------

    def __len__(self) -> int:
        return len(self._shelf)

    def __iter__(self) -> Iterator[Device]:
        return iter(self._shelf.all())

    def __contains__(self, device_id: object) -> bool:
        return device_id in self._index.by_id

    @property
    def devices(self) -> tuple[Device, ...]:
        """All devices, sorted by vendor then part."""
        return self._shelf.all()

    def recover_with(self, rebuild: Callable[[], tuple[Device, ...]]) -> None:
        """How to read the database again should an entry of the cache it came from turn
        out to be damaged when it is first asked for."""
        self._shelf.rebuild = rebuild

    def vendors(self, family: str | None = None) -> list[str]:
        wanted = normalize(family) if family else None
        return sorted(
            {d.vendor for d in self.devices if wanted is None or normalize(d.family) == wanted},
            key=str.casefold,
        )

    # -- lookup --------------------------------------------------------------

    def get(self, device_id: str) -> Device:
        """The device with this id (case and punctuation are forgiven).

        Raises UnknownDeviceError (a KeyError and an InputError) listing close matches.
        """
        index = self._index.by_id.get(device_id)
        if index is None:
            index = self._index.by_normalized_id.get(normalize(device_id))
        if index is not None:
            return self._shelf[index]
        raise UnknownDeviceError(device_id, self.suggest(device_id))

    def suggest(self, text: str, limit: int = 5) -> list[str]:
        """Ids that ``text`` probably meant: the best search hits, else similar-looking ids."""
        hits = [d.id for d in self.search(text)[:limit]]
        if hits:
            return hits
        return difflib.get_close_matches(text.lower(), list(self._index.by_id), n=limit, cutoff=0.6)

    def search(
        self,
        query: str = "",
        family: str | None = None,
        vendor: str | None = None,
        package: str | None = None,
        min_size: int | None = None,
        max_size: int | None = None,
    ) -> list[Device]:
        """Devices matching ``query`` and the filters, best match first.

        Rank: exact id/part > part prefix > alias (exact, then prefix) > ordering
        code (the query starts with the part or an alias, e.g. "STM32F103C8T6") >
        substring of part/alias/id > vendor/family/package; ties by vendor, then
        part. Words like "16MiB", "128Mbit" or "128M" in the query filter by size.
        An empty query lists all.
        """
        parsed = parse_query(query)
        fam = normalize(family) if family else None
        ven = normalize(vendor) if vendor else None
        pkg = normalize(package) if package else None
        scored: list[tuple[Score, int]] = []
        for index, (size, keys) in enumerate(zip(self._index.sizes, self._index.keys, strict=True)):
            if (min_size is not None and size < min_size) or (
                max_size is not None and size > max_size
            ):
                continue
            if fam is not None and keys.family != fam:
                continue
            if ven is not None and not keys.matches_vendor(ven):
                continue
            if pkg is not None and not keys.matches_package(pkg):
                continue
            if any(size not in sizes for sizes in parsed.sizes):
                continue
            score = rank(keys, parsed)
            if score[0] != NO_MATCH:
                scored.append((score, index))  # index order is vendor/part order
        scored.sort()
        return [self._shelf[index] for _, index in scored]

    # -- identification ------------------------------------------------------

    def identify(self, bus: str, id_hex: str) -> Identification:
        """Which parts answer ``id_hex`` on ``bus`` ("jedec" or "stm32_pid").

        For "jedec" the first 3 bytes select the candidates; further bytes narrow
        them to the parts whose ``ids.extended`` matches (parts without an extended
        ID stay candidates unless some part matches it exactly).
        """
        if bus == "jedec":
            return self._identify_jedec(id_hex)
        if bus == "stm32_pid":
            return self._identify_pid(id_hex)
        if bus == "swd":
            return self._identify_swd(id_hex)
        raise InputError(f"unknown ID bus {bus!r} (known: {', '.join(ID_BUSES)})")

    def _identify_jedec(self, id_hex: str) -> Identification:
        digits = normalize_hex(id_hex)
        if len(digits) < 6 or len(digits) % 2:
            raise InputError(
                f"JEDEC ID {id_hex!r} must be whole bytes, at least 3 (6 hex digits, e.g. EF4018)"
            )
        jedec, extended = digits[:6], digits[6:]
        candidates = [self._shelf[i] for i in self._index.by_jedec.get(jedec, ())]
        if extended and candidates:
            exact = [
                d for d in candidates if d.jedec_extended and extended.startswith(d.jedec_extended)
            ]
            candidates = exact or [d for d in candidates if not d.jedec_extended]
        note = _other_answers_note(jedec, candidates)
        if jedec in ("FFFFFF", "000000"):
            note = (
                "all bits equal: no chip answered (empty socket, no power, or MISO not connected)"
            )
        return Identification("jedec", digits, tuple(candidates), note)

    def _identify_pid(self, id_hex: str) -> Identification:
        digits = normalize_hex(id_hex)
        pid = int(digits, 16)
        if pid > 0xFFF:
            raise InputError(f"STM32 product ID {id_hex!r} must be 12 bits (e.g. 0x410)")
        return Identification(
            "stm32_pid",
            f"0x{pid:03X}",
            tuple(self._shelf[i] for i in self._index.by_pid.get(pid, ())),
        )

    def _identify_swd(self, id_hex: str) -> Identification:
        """Parts whose SWD ID register (``REGISTER:VALUE``) holds that value."""
        register, value = _swd_id(id_hex)
        found = tuple(
            d
            for d in self.devices
            if d.swd is not None
            and d.swd.id_address == register
            and value & d.swd.id_mask in d.swd.id_values
        )
        return Identification("swd", f"{register:08X}:{value:X}", found)


def _restore(
    blobs: tuple[bytes, ...], index: _Index, packages: dict[str, Package]
) -> DeviceDatabase:
    """A database from the cache: devices stay pickled until asked for."""
    database = DeviceDatabase.__new__(DeviceDatabase)
    database._shelf = _Shelf(blobs=blobs)
    database._index = index
    database.packages = packages
    return database


def _swd_id(text: str) -> tuple[int, int]:
    """ "REGISTER:VALUE" in hex (e.g. E0042000:410) as two numbers."""
    register, _, value = text.partition(":")
    try:
        return int(register, 16), int(value, 16)
    except ValueError:
        raise InputError(
            f"SWD ID {text!r}: give the ID register and its value in hex, e.g. E0042000:410"
        ) from None


def _other_answers_note(jedec: str, candidates: list[Device]) -> str | None:
    """Which candidates answered an ID other than their datasheet's, and who says
    they do (so the operator sees both IDs and the reason)."""
    notes = []
    for device in candidates:
        if device.jedec_id == jedec or not isinstance(device.facts, SpiNorFacts):
            continue
        known = next(k for k in device.facts.also_answers if k.jedec.hex().upper() == jedec)
        notes.append(
            f"{device.part} answers {jedec} as well as its datasheet's {device.jedec_id}"
            f" (source: {known.source})"
        )
    return "; ".join(notes) or None
