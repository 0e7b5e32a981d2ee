"""The device database: load, validate, search and identify devices.

Typical use::

    from app.devicedb import load_database
    db = load_database()                      # installed device_db/ + user overlay
    chip = db.get("winbond.w25q128jv")
    hits = db.search("w25q128", family="spi-nor")
    found = db.identify("jedec", "EF4018")    # found.candidates, found.ambiguous

The JSON format is described in device_db/README.md and enforced by
device_db/schema/*.schema.json plus the semantic checks in checks.py. Each entry loads
into a frozen Device whose family facts (app.devicedb.facts) are typed: ``chip.family``
is a Family, ``chip.facts_as(SpiNorFacts).page_size`` an int.
"""

from __future__ import annotations

from app.devicedb.database import DeviceDatabase, UnknownDeviceError, normalize_hex
from app.devicedb.entry_reader import FactsError
from app.devicedb.families import FAMILIES, FAMILY_DIRS, ID_BUSES, KNOWN_ALGORITHMS, Family
from app.devicedb.files import installed_db_path, overlay_db_path
from app.devicedb.loader import DeviceDbInvalidError, database_from_report, load_database
from app.devicedb.models import Device, Identification, Package
from app.devicedb.search import normalize, parse_size_term
from app.devicedb.validation import (
    ValidationReport,
    check_installed,
    check_paths,
    validate_paths,
)

__all__ = [
    "FAMILIES",
    "FAMILY_DIRS",
    "ID_BUSES",
    "KNOWN_ALGORITHMS",
    "Device",
    "DeviceDatabase",
    "DeviceDbInvalidError",
    "FactsError",
    "Family",
    "Identification",
    "Package",
    "UnknownDeviceError",
    "ValidationReport",
    "check_installed",
    "check_paths",
    "database_from_report",
    "installed_db_path",
    "load_database",
    "normalize",
    "normalize_hex",
    "overlay_db_path",
    "parse_size_term",
    "validate_paths",
]
