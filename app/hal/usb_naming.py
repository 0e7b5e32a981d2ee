"""How a programmer URL names one of several USB devices of a kind (ST-LINK probes, CH341A
and CH347 boards): by serial number where that names one device, by its USB path
``BUS:ADDRESS``, or ``*`` for all of them.

A serial number may name no one device: ST-LINK clones and every CH347T share theirs. A
serial two connected devices carry is refused in a URL (with the bus:address URLs to use
instead) and is never how such a device is listed or named.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol, TypeVar

from app.hal.errors import HalError, ProgrammerUrlError
from app.hal.ftdi_usb import udev_fix

LOCATION = re.compile(r"(\d{1,3}):(\d{1,3})")


class Serialed(Protocol):
    @property
    def serial(self) -> str | None: ...  # None: not readable (hw list's listings)


class UsbNamed(Serialed, Protocol):
    """A device on the USB bus, as enumerated (before it is opened)."""

    @property
    def serial(self) -> str: ...  # "": it has none

    @property
    def bus(self) -> int: ...

    @property
    def address(self) -> int: ...

    @property
    def accessible(self) -> bool: ...

    @property
    def error(self) -> str | None: ...


D = TypeVar("D", bound=UsbNamed)


def location(device: UsbNamed) -> str:
    """``bus:address`` in decimal, as lsusb prints them (changes on a re-plug)."""
    return f"{device.bus}:{device.address}"


def check_path(scheme: str, path: str, noun: str) -> None:
    """A URL path names a ``noun`` by serial number, by BUS:ADDRESS, or * for all."""
    if path and path != "*" and not LOCATION.fullmatch(path) and not path.isalnum():
        raise ProgrammerUrlError(
            f"{scheme}://{path}: name a {noun} by serial number (see `socketeer hw list`), by"
            f" USB BUS:ADDRESS (e.g. {scheme}://1:7), or * for every {noun}"
        )


def shared_serials(devices: Sequence[Serialed]) -> frozenset[str]:
    """The serial numbers more than one of ``devices`` carries."""
    serials = [d.serial for d in devices if d.serial]
    return frozenset(s for s in serials if serials.count(s) > 1)


def locator(device: UsbNamed, shared: frozenset[str]) -> str:
    """What names ``device`` in a URL: its serial number unless it has none or another
    device carries it too (``shared``), else its bus:address."""
    return device.serial if device.serial and device.serial not in shared else location(device)


def select(
    scheme: str, kind: str, plural: str, path: str, devices: Sequence[D], *, noun: str
) -> list[D]:
    """The devices ``{scheme}://{path}`` names, in bus:address order. ``kind`` names one
    ("ST-LINK", "CH347"), ``plural`` several ("ST-LINKs", "CH347 boards")."""
    devices = sorted(devices, key=lambda d: (d.bus, d.address))
    shared = shared_serials(devices)
    if path == "*":
        chosen = devices
    elif not path:
        if len(devices) > 1:
            where = " or ".join(f"{scheme}://{locator(d, shared)}" for d in devices)
            raise ProgrammerUrlError(
                f"{len(devices)} {plural} are connected: name one ({where}) or use"
                f" {scheme}://* for all of them"
            )
        chosen = devices
    elif match := LOCATION.fullmatch(path):
        where = f"{int(match[1])}:{int(match[2])}"  # "001:007" as lsusb prints it too
        chosen = [d for d in devices if location(d) == where]
    else:
        chosen = [d for d in devices if d.serial == path]
        if len(chosen) > 1:
            where = " or ".join(f"{scheme}://{location(d)}" for d in chosen)
            raise ProgrammerUrlError(
                f"{len(chosen)} {plural} carry the serial number {path} (it names no one"
                f" {noun}; clones often share one): name one by bus:address ({where})"
            )
    if not chosen:
        seen = ", ".join(locator(d, shared) for d in devices) or "none"
        raise HalError(f"no {kind} matches {scheme}://{path} (connected {plural}: {seen})")
    for dev in chosen:
        if not dev.accessible:
            raise HalError(
                f"{kind} at {location(dev)} is not accessible ({dev.error}): install"
                f" Socketeer's udev rules ({udev_fix()}) and re-plug it"
            )
    return chosen


def same_device(old: D, devices: Sequence[D], serial: str, *, only_one: bool) -> D | None:
    """``old`` again among ``devices`` after a re-plug: by ``serial``, the serial number
    that named it when it was opened ("" when it had none or shared it), while exactly
    one device carries it; else at the same bus:address with the same serial; else, when
    its URL named no device (``only_one``), the only one connected. A device that merely
    carries a shared serial is never taken: it may be another site's."""
    if serial:
        named = [d for d in devices if d.serial == serial]
        if len(named) == 1:
            return named[0]
    where = location(old)
    at = [d for d in devices if location(d) == where and d.serial == old.serial]
    if at:
        return at[0]
    if only_one and len(devices) == 1:
        return devices[0]
    return None
