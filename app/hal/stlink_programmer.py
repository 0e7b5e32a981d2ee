"""stlink:// : ST-LINK/V2, V2-1 and STLINK-V3 probes (and clones) as SWD programmers, one
site per probe (the probe itself is app.hal.stlink).

URLs:

    stlink://                      the only ST-LINK connected
    stlink://SERIAL                the one with this serial number (as `socketeer hw list`
                                   prints it)
    stlink://1:7                   the one at USB bus 1, address 7 (decimal, as lsusb
                                   prints it): for clones that share a serial or have none
    stlink://*                     every ST-LINK connected, one site each, in bus:address order
    stlink://A ; stlink://B        two probes as sites 1 and 2 (a station URL)

Options (app.hal.swd_site): ``clock=4M`` (the probe rounds down to a clock it has),
``connect=normal|under-reset``, ``nrst=1|0``, ``connection=in-system|socket``,
``power=board|programmer``.

pyusb is reached through app.hal.stlink_usb; ``open_programmer(url, stlink_backend=...)``
swaps it, which is how the tests run this backend against a fake ST-LINK at the USB packet
level (tests/stlink_fake.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import cast

from app.hal.errors import HalError
from app.hal.ftdi_usb import udev_fix
from app.hal.programmer import ParsedUrl, check_options, register_scheme
from app.hal.stlink import MODE_NAMES, StlinkProbe
from app.hal.stlink_usb import PRODUCTS, StlinkBackend, StlinkDevice, pyusb_backend
from app.hal.swd_site import SWD_OPTIONS, SwdProgrammer, SwdSite, SwdSiteOptions, swd_site_options
from app.hal.usb_naming import check_path, locator, select, shared_serials


class StlinkSite(SwdSite):
    """One probe's target. The link is lost when the probe's USB link fails, and found
    again by serial number (else USB path) after a re-plug."""

    def __init__(self, index: int, probe: StlinkProbe, options: SwdSiteOptions) -> None:
        self.probe = probe
        super().__init__(index, probe, options)

    @property
    def link_lost(self) -> bool:
        return self.probe.lost

    @link_lost.setter
    def link_lost(self, lost: bool) -> None:
        self.probe.lost = lost

    def reconnect(self) -> bool:
        return not self.probe.lost or self.probe.reopen()


def select_probes(path: str, devices: list[StlinkDevice]) -> list[StlinkDevice]:
    """The probes ``stlink://{path}`` names, in bus:address order (a probe in its
    firmware-update loader is no debug probe)."""
    probes = [d for d in devices if not PRODUCTS[d.product].loader]
    return select("stlink", "ST-LINK", "ST-LINKs", path, probes, noun="probe")


def probe_locator(device: StlinkDevice, devices: Sequence[StlinkDevice]) -> str:
    """What names this probe in a URL: its serial when no other probe has it, else its
    USB path."""
    return locator(device, shared_serials(devices))


def open_probes(probes: Sequence[StlinkProbe], backend: StlinkBackend) -> None:
    """Open every probe, or none: one that fails closes the ones opened before it."""
    opened: list[StlinkProbe] = []
    try:
        for probe in probes:
            try:
                probe.open()
            except backend.link_errors as err:
                raise HalError(
                    f"cannot open {probe.name}: {err} (permissions: {udev_fix()}; another"
                    " program may hold the probe; `socketeer hw diagnose` checks the setup)"
                ) from None
            opened.append(probe)
    except BaseException:
        for probe in opened:
            probe.close()
        raise


@register_scheme("stlink")
def open_stlink(parsed: ParsedUrl, context: Mapping[str, object]) -> SwdProgrammer:
    check_options(parsed, SWD_OPTIONS)
    path = parsed.path.strip("/")
    check_path("stlink", path, "probe")
    options = swd_site_options(parsed)  # checked before touching USB
    given = context.get("stlink_backend")  # tests swap pyusb for a packet-level fake
    backend = cast(StlinkBackend, given) if given is not None else pyusb_backend()
    found = backend.find_devices()
    devices = select_probes(path, found)
    probes = [
        StlinkProbe(
            backend,
            dev,
            clock_hz=options.clock_hz,
            only_probe=not path,
            named_by_path=probe_locator(dev, found) != dev.serial,
        )
        for dev in devices
    ]
    open_probes(probes, backend)
    sites = [StlinkSite(n, probe, options) for n, probe in enumerate(probes, 1)]
    where = path or probe_locator(devices[0], found)
    return SwdProgrammer(
        url=f"stlink://{where}",
        name=", ".join(probe.name for probe in probes),
        sites=sites,
        clock_hz=options.clock_hz,
    )


# -- listing (socketeer hw list / diagnose) -----------------------------------------------


@dataclass(frozen=True)
class ProbeListing:
    """One ST-LINK as `hw list` shows it."""

    product: int
    model: str
    serial: str
    bus: int
    address: int
    accessible: bool
    loader: bool
    firmware: str | None = None
    mode: str | None = None  # the mode it was in when listed
    error: str | None = None  # why it could not be asked
    url: str | None = None

    @property
    def vid_pid(self) -> str:
        return f"0483:{self.product:04x}"


def list_probes(backend: StlinkBackend | None = None) -> list[ProbeListing]:
    """Every ST-LINK connected, each opened briefly to read its firmware version (which
    takes it out of DFU mode, as every ST-LINK tool does first). A probe another program
    holds cannot be opened: its listing says so, and its session is not disturbed."""
    backend = backend if backend is not None else pyusb_backend()
    devices = sorted(backend.find_devices(), key=lambda d: (d.bus, d.address))
    failures: tuple[type[BaseException], ...] = (*backend.link_errors, HalError)
    listed = []
    for dev in devices:
        model = PRODUCTS[dev.product]
        firmware = mode = error = url = None
        if not dev.accessible:
            error = dev.error or "not accessible"
        elif not model.loader:
            by_path = probe_locator(dev, devices) != dev.serial
            probe = StlinkProbe(backend, dev, clock_hz=0, named_by_path=by_path)
            try:
                probe.open(idle=False)
                assert probe.firmware is not None and probe.mode_at_open is not None
                firmware = probe.firmware.text
                mode = MODE_NAMES.get(probe.mode_at_open, f"mode {probe.mode_at_open}")
                url = f"stlink://{probe_locator(dev, devices)}"
            except failures as err:
                error = str(err)
            finally:
                with suppress(Exception):
                    probe.close()
        listed.append(
            ProbeListing(
                dev.product,
                model.name,
                dev.serial,
                dev.bus,
                dev.address,
                dev.accessible,
                model.loader,
                firmware,
                mode,
                error,
                url,
            )
        )
    return listed


__all__ = ["StlinkSite", "list_probes", "open_stlink"]
