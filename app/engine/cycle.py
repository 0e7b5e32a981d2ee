"""One cycle specification for every front end.

A job file, the CLI's options and the window's job pane all describe the same thing:
which device, which image, and which operations around programming. They all become a
:class:`CycleOptions` and then a :class:`CycleSpec` through :func:`build_cycle_spec`,
so the CLI, ``socketeer run`` and the window cannot disagree on what a cycle does
(the adapter check included).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from app.core.errors import InputError
from app.engine.site_runner import CycleSpec

if TYPE_CHECKING:
    from app.core.image import MemoryImage
    from app.devicedb.database import DeviceDatabase
    from app.devicedb.models import Device

#: the actions a cycle can run; "program" is the production action, the rest service
SERVICE_ACTIONS = ("identify", "read", "verify", "erase", "blank-check")
ERASE_MODES = ("auto", "full", "none")

#: the actions that write to the part
WRITING_ACTIONS = ("program", "erase")


class NotApproved(InputError):
    """A provisional profile (built from SFDP) that no engineer has approved."""


def check_may_write(device: Device, doing: str) -> None:
    """NotApproved when ``device`` is a provisional profile nobody approved: reading
    with it is fine, writing is not."""
    mark = device.provisional
    if mark is not None and not mark.approved:
        raise NotApproved(
            f"{device.id} is a provisional profile built from the part's SFDP table on"
            f" {mark.created}, not approved by an engineer; {doing} is refused until an"
            f" engineer checks it and runs 'socketeer devices approve {device.id} --by NAME'"
        )


#: ``names(id_hex, bus)``: the database's parts answering an ID, as "Vendor Part"
NameLookup = Callable[[str, str], list[str]]


@dataclass(frozen=True)
class CycleOptions:
    """The switchable operations of a program cycle (job files call them operations)."""

    erase_mode: str = "auto"  # auto (what the image needs) / full (whole chip) / none
    blank_check: bool = False
    verify: bool = True
    unprotect: bool = False
    protect: bool = False
    skip_matching: bool = False
    #: back up in-system parts before writing (a job may turn it off)
    backup: bool = True

    def __post_init__(self) -> None:
        if self.erase_mode not in ERASE_MODES:
            raise ValueError(f"erase mode {self.erase_mode!r} is not one of {ERASE_MODES}")

    @classmethod
    def from_operations(cls, operations: Mapping[str, bool], erase_mode: str) -> CycleOptions:
        """From a job's ``operations`` table and ``erase_mode`` (erase off means none)."""
        return cls(
            erase_mode=erase_mode if operations.get("erase", True) else "none",
            blank_check=bool(operations.get("blank_check", False)),
            verify=bool(operations.get("verify", True)),
            unprotect=bool(operations.get("unprotect", False)),
            protect=bool(operations.get("protect", False)),
            skip_matching=bool(operations.get("skip_matching", False)),
            backup=bool(operations.get("backup", True)),
        )

    def operations(self) -> dict[str, bool]:
        """The job file's ``operations`` table (every key, so nothing is dropped)."""
        return {
            "erase": self.erase_mode != "none",
            "blank_check": self.blank_check,
            "verify": self.verify,
            "protect": self.protect,
            "unprotect": self.unprotect,
            "skip_matching": self.skip_matching,
            "backup": self.backup,
        }


def fitting_adapters(database: DeviceDatabase, device: Device) -> frozenset[str]:
    """The socket adapters of the device's packages (from packages.json)."""
    packages = database.packages
    return frozenset(
        adapter
        for name in device.packages
        if name in packages and (adapter := packages[name].adapter)
    )


def part_names(database: DeviceDatabase) -> NameLookup:
    """The lookup the site runner uses to name the part it found instead."""

    def names(id_hex: str, bus: str) -> list[str]:
        return [f"{d.vendor} {d.part}" for d in database.identify(bus, id_hex).candidates]

    return names


def build_cycle_spec(
    action: str,
    device: Device,
    database: DeviceDatabase,
    *,
    image: MemoryImage | None = None,
    options: CycleOptions | None = None,
    read_range: tuple[int, int] | None = None,
    verified_read: bool | None = None,
) -> CycleSpec:
    """The cycle for ``action`` on ``device``: the one place a CycleSpec is made.

    Options apply to program cycles only (verify and erase take ``unprotect`` too);
    every cycle checks the site's adapter against the device's packages.
    """
    if action not in ("program", *SERVICE_ACTIONS):
        raise ValueError(f"unknown action {action!r}")
    if action in ("program", "verify") and image is None:
        raise ValueError(f"a {action} cycle needs an image")
    if action in WRITING_ACTIONS:
        check_may_write(device, f"a {action} cycle")
    opts = options or CycleOptions()
    program = action == "program"
    return CycleSpec(
        action=action,
        device=device,
        image=image if action in ("program", "verify") else None,
        erase_mode=opts.erase_mode if program else "auto",
        blank_check=opts.blank_check if program else False,
        verify=opts.verify if program else True,
        unprotect=opts.unprotect if action in ("program", "erase") else False,
        protect=opts.protect if program else False,
        skip_matching=opts.skip_matching if program else False,
        read_range=read_range if action == "read" else None,
        verified_read=verified_read if action == "read" else None,
        backup=opts.backup if action in WRITING_ACTIONS else False,
        adapters=fitting_adapters(database, device),
    )
