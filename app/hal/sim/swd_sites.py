"""Simulated SWD sites: a part of the run's device (one with SWD facts in the database)
modelled at the debug-port level (app.hal.sim.mcu_target) behind the same DebugPort
and PacketLink a real packet-level probe uses, so the Cortex-M algorithm runs exactly
as it does on hardware. The site's fault (``fault=SITE:KIND``) becomes the model's:

- ``empty``/``contact``: nothing answers on SWD (no board, or SWDIO not connected);
- ``wrong-id``: the part's ID register names another part;
- ``protected``: readout protection is on (RDP level 1, APPROTECT, PALL);
- ``stuck-bit``/``verify``: a bit at the address never programs (verify finds it);
- ``erase-fail``: erasing leaves the word at the address unerased;
- ``busy-timeout``: the flash controller stays busy after its first operation;
- ``link-drop``: the probe's USB link dies part-way through the cycle (LinkError);
- ``flaky``: every AP access answers WAIT a few times first (a slow or noisy bus);
- ``swd-off``: the firmware turns the SWD pins off while it runs (connect=under-reset).
"""

from __future__ import annotations

import random

from app.devicedb.models import Device
from app.hal.debug_port import DebugPort
from app.hal.errors import LinkError
from app.hal.sim.clock import SimClock, Timing
from app.hal.sim.faults import Fault
from app.hal.sim.mcu_target import McuFaults, McuSpec, SimMcu, make_mcu
from app.hal.swd import PacketLink
from app.hal.swd_site import SwdSite, SwdSiteOptions

FLAKY_WAITS = 3


def mcu_spec(device: Device) -> McuSpec:
    swd = device.swd
    assert swd is not None
    facts = device.facts
    return McuSpec(
        kind=swd.series,
        flash_base=device.memory_base,
        sectors=tuple(sector.size for sector in facts.flash.sectors),  # type: ignore[union-attr]
        ram_base=facts.ram_base,  # type: ignore[union-attr]
        ram_size=facts.ram_bytes,  # type: ignore[union-attr]
        dev_id=swd.id_values[0],
        core=swd.core,
        banks=swd.banks,
    )


def mcu_faults(fault: Fault | None, device: Device, rng: random.Random) -> McuFaults:
    if fault is None:
        return McuFaults()
    kind = fault.kind
    base = device.memory_base
    address = base + (fault.address if fault.address is not None else rng.randrange(0, 0x1000))
    return McuFaults(
        no_target=kind in ("empty", "contact"),
        wrong_dev_id=kind == "wrong-id",
        protected=kind == "protected",
        stuck_address=address if kind in ("stuck-bit", "verify") else None,
        erase_fail_address=address if kind == "erase-fail" else None,
        busy_forever=kind == "busy-timeout",
        wait_storm=FLAKY_WAITS if kind == "flaky" else 0,
        swd_off_when_running=kind == "swd-off",
    )


class _DroppingWire:
    """The probe's link to the host, dying after ``packets`` packets (a USB cable
    pulled): every packet after that raises LinkError, as a real probe's driver does."""

    def __init__(self, mcu: SimMcu, packets: int) -> None:
        self.mcu = mcu
        self.left = packets

    def line_reset(self) -> None:
        self._tick()
        self.mcu.line_reset()

    def sequence(self, bits: int, count: int) -> None:
        self._tick()
        self.mcu.sequence(bits, count)

    def packet(self, request: int, data: int | None) -> tuple[int, int | None]:
        self._tick()
        return self.mcu.packet(request, data)

    def set_reset(self, asserted: bool) -> None:
        self.mcu.set_reset(asserted)

    def _tick(self) -> None:
        self.left -= 1
        if self.left < 0:
            raise LinkError("simulated SWD probe: USB link lost")


class SimSwdSite(SwdSite):
    """An SWD site of the simulator: a fresh part on insert_part(), the same part
    (its flash kept) from cycle to cycle otherwise, as a board on a fixture."""

    def __init__(
        self,
        index: int,
        device: Device,
        timing: Timing,
        fault: Fault | None,
        rng: random.Random,
        options: SwdSiteOptions,
    ) -> None:
        self.device = device
        self.fault = fault
        self.clock = SimClock(timing)
        self._timing = timing
        self._rng = rng
        self._options = options
        self.mcu = self._new_mcu()
        self.link = PacketLink(self._wire(), name=f"sim SWD site {index}")
        super().__init__(index, DebugPort(self.link), options)

    def _new_mcu(self) -> SimMcu:
        return make_mcu(
            mcu_spec(self.device),
            self.clock,
            self._timing,
            mcu_faults(self.fault, self.device, self._rng),
            swd_hz=self._options.clock_hz,
            uid=self._rng.randbytes(12),
        )

    def insert_part(self, present: bool = True) -> None:
        """A fresh, blank part on the fixture."""
        if present:
            self.mcu = self._new_mcu()
            self.link.wire = self._wire()

    def _wire(self) -> SimMcu | _DroppingWire:
        if self.fault is not None and self.fault.kind == "link-drop":
            return _DroppingWire(self.mcu, self._rng.randrange(2000, 4000))
        return self.mcu
