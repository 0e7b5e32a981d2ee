"""The ``cmsis-dap://`` programmer: a CMSIS-DAP probe (v1 HID or v2 bulk) as one SWD site.

URLs:

    cmsis-dap://                           the only CMSIS-DAP probe connected
    cmsis-dap://SERIAL?clock=4M            the probe with this USB serial number
    cmsis-dap://A ; cmsis-dap://B          two probes as sites 1 and 2 (a station URL)

Options (app.hal.swd_site): ``clock`` (default 4M), ``connect=normal|under-reset``,
``nrst=1|0``, ``connection``, ``power``.

A lost probe (unplugged mid-cycle) raises LinkError and marks the site; ``reconnect()``
finds the probe again by its serial number and sets it up as before.

pyusb is reached through a ``DapBackend`` (app.hal.cmsis_dap_usb);
``open_programmer(url, cmsis_dap_backend=...)`` swaps it (tests/cmsis_dap_fake.py).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from app.hal.cmsis_dap import CmsisDapLink, DapHandle
from app.hal.cmsis_dap_usb import DapBackend, DapProbe, pyusb_backend
from app.hal.debug_port import DebugPort
from app.hal.errors import HalError, LinkError, ProgrammerUrlError
from app.hal.programmer import ParsedUrl, check_options, register_scheme
from app.hal.swd_site import SWD_OPTIONS, SwdProgrammer, SwdSite, SwdSiteOptions, swd_site_options

log = logging.getLogger(__name__)


def choose_probe(serial: str, probes: list[DapProbe]) -> DapProbe:
    """The probe a URL names: by serial, or the only one when none is named."""
    if serial:
        for probe in probes:
            if probe.serial == serial:
                return probe
        seen = ", ".join(p.serial or p.label for p in probes) or "none"
        raise HalError(f"no CMSIS-DAP probe with serial {serial} (connected: {seen})")
    if not probes:
        raise HalError(
            "no CMSIS-DAP probe found: plug one in (`socketeer hw list` shows what is seen,"
            " `socketeer hw diagnose` permission problems)"
        )
    if len(probes) > 1:
        listed = "; ".join(f"{p.label} -> cmsis-dap://{p.serial}" for p in probes)
        raise ProgrammerUrlError(
            f"{len(probes)} CMSIS-DAP probes connected: name one by serial number ({listed})"
        )
    return probes[0]


def _usable(probe: DapProbe) -> DapProbe:
    if not probe.accessible:
        raise HalError(
            f"CMSIS-DAP probe {probe.label} ({probe.vid_pid}) is not accessible"
            f" ({probe.error}): see `socketeer hw diagnose`"
        )
    return probe


class CmsisDapSite(SwdSite):
    """A probe's target; the link is marked lost on a USB failure and reopened by serial."""

    def __init__(self, link: CmsisDapLink, options: SwdSiteOptions) -> None:
        self.link = link
        super().__init__(1, DebugPort(link), options)

    @property
    def link_lost(self) -> bool:
        return self.link.lost

    @link_lost.setter
    def link_lost(self, value: bool) -> None:
        self.link.lost = value

    def reconnect(self) -> bool:
        if not self.link.lost:
            return True
        try:
            self.link.reopen()
        except HalError as err:
            log.warning("site %s: reconnect to %s failed: %s", self.index, self.link.name, err)
            self.link.lost = True
            return False
        return True


def open_link(
    backend: DapBackend, probe: DapProbe, clock_hz: int, serial: str = ""
) -> CmsisDapLink:
    """Open ``probe`` as a link; reopening finds it again by serial number (by its bus
    position when it has none)."""

    def find_again() -> DapHandle:
        probes = backend.find_probes()
        if probe.serial:
            again = [p for p in probes if p.serial == probe.serial]
        else:
            again = [p for p in probes if (p.bus, p.address) == (probe.bus, probe.address)]
        if not again:
            raise LinkError(f"CMSIS-DAP probe {probe.label} is not connected")
        return backend.open(_usable(again[0]))

    try:
        handle = backend.open(_usable(probe))
    except backend.link_errors as err:
        raise LinkError(f"cannot open CMSIS-DAP probe {probe.label}: {err}") from None
    return CmsisDapLink(
        handle,
        name=probe.label,
        clock_hz=clock_hz,
        link_errors=backend.link_errors,
        reopen=find_again,
    )


@register_scheme("cmsis-dap")
def open_cmsis_dap(parsed: ParsedUrl, context: Mapping[str, object]) -> SwdProgrammer:
    check_options(parsed, SWD_OPTIONS)
    options = swd_site_options(parsed)  # checked before touching USB
    serial = parsed.path.strip("/")
    given = context.get("cmsis_dap_backend")  # tests swap pyusb for a packet-level fake
    backend = given if isinstance(given, DapBackend) else pyusb_backend()
    probe = choose_probe(serial, backend.find_probes())
    link = open_link(backend, probe, options.clock_hz)
    site = CmsisDapSite(link, options)
    return SwdProgrammer(
        url=f"cmsis-dap://{probe.serial}",
        name=f"CMSIS-DAP v{probe.version} {probe.label}",
        sites=[site],
        clock_hz=options.clock_hz,
    )


__all__ = ["CmsisDapSite", "choose_probe", "open_cmsis_dap", "open_link"]
