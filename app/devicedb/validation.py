"""Validate device files and package tables: schema, semantic and cross-file checks.

Everything is collected, never stopped at the first problem. Each message is one
line: ``<file>: <JSON path>: <what is wrong>``.

The database is read in *layers*: the installed folder, then the user overlay. An
overlay entry with the id of an installed entry replaces it (that is what overlays
are for); two entries with one id inside the same layer are an error naming both.
"""

from __future__ import annotations

import contextlib
import difflib
import os
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.devicedb.checks import entry_problems
from app.devicedb.entry_reader import FactsError
from app.devicedb.families import DIR_FAMILIES, FAMILY_ALGORITHMS, KNOWN_ALGORITHMS, Family
from app.devicedb.files import (
    discover,
    display_path,
    installed_db_path,
    overlay_db_path,
    read_json,
)
from app.devicedb.models import Device, Package
from app.devicedb.schema import (
    DEVICE_SCHEMA,
    PACKAGES_SCHEMA,
    JsonPath,
    format_path,
    schema_errors,
)


@dataclass(frozen=True)
class Layer:
    """Files or folders read together; ``overlay`` layers may replace earlier entries."""

    name: str
    roots: tuple[Path, ...]
    overlay: bool = False
    required: bool = True


@dataclass
class LayerSummary:
    name: str
    roots: list[str]
    files: int = 0
    devices: int = 0
    overrides: int = 0
    packages: int = 0
    missing: bool = False  # e.g. no overlay folder: normal, not an error


@dataclass
class ValidationReport:
    """The outcome of validating one or more layers."""

    errors: list[str] = field(default_factory=list)
    devices: dict[str, Device] = field(default_factory=dict)
    packages: dict[str, Package] = field(default_factory=dict)
    layers: list[LayerSummary] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def family_counts(self) -> dict[str, tuple[int, int]]:
        """family -> (devices, vendors), over the merged devices."""
        devices = Counter(d.family for d in self.devices.values())
        vendors = {
            f: len({d.vendor for d in self.devices.values() if d.family == f}) for f in devices
        }
        return {f: (devices[f], vendors[f]) for f in sorted(devices)}


@dataclass
class _Entry:
    """Where one device entry sits, for cross-file messages."""

    raw: Mapping[str, Any]
    shown: str
    index: int
    #: the file's absolute path: what the database keeps (the cache serves any folder)
    file: str = ""
    #: no schema or semantic problem: typed facts can be built from it
    clean: bool = True

    def at(self, *path: str | int) -> str:
        return f"{self.shown}: {format_path(('devices', self.index, *path))}"


def _sort_key(path: JsonPath) -> tuple[tuple[int, int | str], ...]:
    return tuple((0, p) if isinstance(p, int) else (1, p) for p in path)


def _emit(errors: list[str], shown: str, problems: Iterable[tuple[JsonPath, str]]) -> None:
    for path, message in sorted(problems, key=lambda p: _sort_key(p[0])):
        errors.append(f"{shown}: {format_path(path)}: {message}")


def _check_packages_file(path: Path, errors: list[str]) -> dict[str, Package]:
    shown = display_path(path)
    doc, problem = read_json(path, shown)
    if problem:
        errors.append(problem)
        return {}
    problems = list(schema_errors(PACKAGES_SCHEMA, doc))
    packages: dict[str, Package] = {}
    first_index: dict[str, int] = {}
    rows = doc.get("packages") if isinstance(doc, dict) else None
    for index, row in enumerate(rows if isinstance(rows, list) else []):
        if not isinstance(row, dict) or not isinstance(row.get("name"), str):
            continue
        name = row["name"]
        if name in first_index:
            problems.append(
                (
                    ("packages", index, "name"),
                    f"duplicate package {name!r} (first at $.packages[{first_index[name]}])",
                )
            )
            continue
        first_index[name] = index
        with contextlib.suppress(KeyError, TypeError, IndexError):  # the schema said why
            packages[name] = Package.from_raw(row, os.path.abspath(path))
    _emit(errors, shown, problems)
    return packages


def _check_device_file(path: Path, errors: list[str]) -> list[_Entry]:
    shown = display_path(path)
    doc, problem = read_json(path, shown)
    if problem:
        errors.append(problem)
        return []
    problems = list(schema_errors(DEVICE_SCHEMA, doc))
    if not isinstance(doc, dict):
        _emit(errors, shown, problems)
        return []
    file_family, file_vendor = doc.get("family"), doc.get("vendor")
    folder_family = DIR_FAMILIES.get(path.parent.name)
    if folder_family and isinstance(file_family, str) and file_family != folder_family:
        problems.append(
            (
                ("family",),
                f"{file_family!r} does not belong in folder {path.parent.name}/ "
                f"(its files are {folder_family!r})",
            )
        )
    entries: list[_Entry] = []
    devices = doc.get("devices")
    for index, raw in enumerate(devices if isinstance(devices, list) else []):
        if not isinstance(raw, dict):
            continue
        base: JsonPath = ("devices", index)
        problems.extend(((*base, *p), m) for p, m in entry_problems(raw))
        family, vendor, dev_id = raw.get("family"), raw.get("vendor"), raw.get("id")
        if isinstance(family, str) and isinstance(file_family, str) and family != file_family:
            problems.append(
                ((*base, "family"), f"{family!r} differs from the file's family {file_family!r}")
            )
        if isinstance(vendor, str) and isinstance(file_vendor, str) and vendor != file_vendor:
            problems.append(
                ((*base, "vendor"), f"{vendor!r} differs from the file's vendor {file_vendor!r}")
            )
        # Installed-style files (<family-dir>/<vendor-slug>.json) fix the id prefix.
        if folder_family and isinstance(dev_id, str) and not dev_id.startswith(f"{path.stem}."):
            problems.append(
                (
                    (*base, "id"),
                    f"{dev_id!r} must start with {path.stem + '.'!r} "
                    f"(the vendor slug of {path.name})",
                )
            )
        algorithm = raw.get("algorithm")
        family = raw.get("family")
        if isinstance(algorithm, str) and algorithm not in KNOWN_ALGORITHMS:
            known = ", ".join(sorted(KNOWN_ALGORITHMS))
            problems.append(
                ((*base, "algorithm"), f"unknown algorithm {algorithm!r} (known: {known})")
            )
        elif (
            isinstance(algorithm, str)
            and family in FAMILY_ALGORITHMS
            and FAMILY_ALGORITHMS[Family(family)] != algorithm
        ):
            problems.append(
                (
                    (*base, "algorithm"),
                    f"{family} parts are programmed by {FAMILY_ALGORITHMS[Family(family)]!r},"
                    f" not {algorithm!r}",
                )
            )
        if isinstance(dev_id, str):
            entries.append(_Entry(raw, shown, index, os.path.abspath(path)))
    for entry in entries:
        entry.clean = not any(path[:2] == ("devices", entry.index) for path, _ in problems)
    _emit(errors, shown, problems)
    return entries


def _check_package_refs(
    entries: list[_Entry], packages: Mapping[str, Package], errors: list[str]
) -> None:
    names = sorted(packages)
    for entry in entries:
        refs = entry.raw.get("packages")
        for index, name in enumerate(refs if isinstance(refs, list) else []):
            if isinstance(name, str) and name not in packages:
                hint = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
                tip = f"; did you mean {hint[0]!r}?" if hint else ""
                errors.append(
                    f"{entry.at('packages', index)}: unknown package {name!r} "
                    f"(not in packages.json{tip})"
                )


def _make_device(
    entry: _Entry, overlay: bool, overrides: str | None, errors: list[str]
) -> Device | None:
    """The entry's Device; None when it has problems (already reported) or its facts
    cannot be built (reported here, with the value's JSON path)."""
    if not entry.clean:
        return None
    try:
        return Device.from_raw(entry.raw, entry.file, overlay=overlay, overrides=overrides)
    except FactsError as err:
        errors.append(f"{entry.at(*err.path)}: {err}")
        return None


def check_layers(
    layers: Iterable[Layer], fallback_packages: Iterable[Layer] = ()
) -> ValidationReport:
    """Validate ``layers`` in order, merging their devices and packages.

    ``fallback_packages`` are read for their packages.json only when ``layers``
    bring none (so a single device file can be checked against the installed table).
    """
    report = ValidationReport()
    merged: dict[str, _Entry] = {}
    all_entries: list[_Entry] = []
    for layer in layers:
        summary = LayerSummary(layer.name, [display_path(r) for r in layer.roots])
        report.layers.append(summary)
        found = discover(list(layer.roots))
        summary.missing = bool(found.missing)
        for missing in found.missing:
            if layer.required:
                report.errors.append(f"{display_path(missing)}: no such file or folder")
        for path in found.package_files:
            packages = _check_packages_file(path, report.errors)
            summary.packages += len(packages)
            for name, package in packages.items():
                if name in report.packages and not layer.overlay:
                    report.errors.append(
                        f"{package.source_file}: duplicate package {name!r} "
                        f"(also in {report.packages[name].source_file})"
                    )
                report.packages[name] = package
        in_layer: dict[str, _Entry] = {}
        for path in found.device_files:
            summary.files += 1
            for entry in _check_device_file(path, report.errors):
                dev_id = entry.raw["id"]
                first = in_layer.get(dev_id)
                if first is not None:
                    report.errors.append(
                        f"{entry.at('id')}: duplicate id {dev_id!r} "
                        f"(also in {first.shown} {format_path(('devices', first.index))})"
                    )
                    continue
                in_layer[dev_id] = entry
                all_entries.append(entry)
                overrides = merged[dev_id].file if dev_id in merged else None
                summary.devices += 1
                summary.overrides += overrides is not None
                merged[dev_id] = entry
                device = _make_device(entry, layer.overlay, overrides, report.errors)
                if device is not None:
                    report.devices[dev_id] = device
    if not report.packages:
        for layer in fallback_packages:
            for path in discover(list(layer.roots)).package_files:
                report.packages.update(_check_packages_file(path, report.errors))
    _check_package_refs(all_entries, report.packages, report.errors)
    _check_flashrom_names(report.devices.values(), report.errors)
    return report


def _check_flashrom_names(devices: Iterable[Device], errors: list[str]) -> None:
    """One flashrom chip-table name stands for one part: the same name on two
    entries would send a user coming from flashrom to either."""
    owner: dict[str, Device] = {}
    for device in devices:
        for name in device.flashrom_names:
            first = owner.setdefault(name.upper(), device)
            if first is not device:
                errors.append(
                    f"{device.source_file}: {device.id}: flashrom_names: {name!r} is "
                    f"already the flashrom name of {first.id} ({first.source_file})"
                )


def default_layers(
    installed: Path | None = None, overlay: Path | None = None, use_overlay: bool = True
) -> list[Layer]:
    """The installed DB folder and (optionally) the user overlay folder."""
    layers = [Layer("installed", (installed or installed_db_path(),))]
    if use_overlay:
        layers.append(
            Layer("overlay", (overlay or overlay_db_path(),), overlay=True, required=False)
        )
    return layers


def check_installed(
    installed: Path | None = None, overlay: Path | None = None, use_overlay: bool = True
) -> ValidationReport:
    """Validate the installed database plus the user overlay."""
    return check_layers(default_layers(installed, overlay, use_overlay))


def check_paths(paths: Iterable[Path | str]) -> ValidationReport:
    """Validate the given files and folders as one layer (duplicates among them are errors).

    Package names are checked against packages.json files among ``paths``, or, when
    there are none, against the installed and overlay package tables.
    """
    roots = tuple(Path(p) for p in paths)
    return check_layers([Layer("paths", roots)], fallback_packages=default_layers())


def validate_paths(paths: Iterable[Path | str]) -> list[str]:
    """Every problem of the given device files / DB folders, one message per line."""
    return check_paths(paths).errors
