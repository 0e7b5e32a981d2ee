"""Pin maps: which spare MPSSE pins of an FTDI interface switch power, read the socket
detect switch and drive LEDs / a reset line.

A map is ``role=PIN`` pairs, comma separated, or the name of a built-in map:
``pins=standard`` or ``pins=power=D4,detect=!D5,pass=D6,fail=D7``. Pins are ADBUS
``D0``-``D7`` (also ``AD4``, ``ADBUS4``) and, on chips with a wide port (FT232H,
FT2232H), ACBUS ``C0``-``C7``. A pin is active-high unless prefixed ``!``. The bus
pins (SPI: D0-D3; I2C: D0-D2) cannot be used.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from app.hal.errors import ProgrammerUrlError

#: role -> is an input
ROLES: dict[str, bool] = {
    "power": False,  # target power switch (on = active)
    "detect": True,  # socket detect switch (part present = active)
    "pass": False,  # green LED
    "fail": False,  # red LED
    "busy": False,  # yellow LED
    "reset": False,  # target reset line (asserted = active)
}

NAMED_MAPS: dict[str, str] = {
    "none": "",
    # The Socketeer single-socket adapter: power switch, detect switch, two LEDs.
    "standard": "power=D4,detect=D5,pass=D6,fail=D7",
    # LEDs only (board powered from the FTDI module's 3.3 V, no detect switch).
    "leds": "pass=D6,fail=D7",
}

#: SCK MOSI MISO CS / SCL SDA-out SDA-in / SWCLK SWDIO-out SWDIO-in (and pyftdi's /CS)
BUS_PINS = {"spi": 0x000F, "i2c": 0x0007, "swd": 0x000F}
BUS_PIN_NAMES = {
    "spi": "D0-D3 (SCK, MOSI, MISO, /CS)",
    "i2c": "D0-D2 (SCL, SDA)",
    "swd": "D0-D3 (SWCLK, SWDIO out, SWDIO in, pyftdi's /CS)",
}

_PIN = re.compile(r"(!?)(?:(?:ADBUS|AD|D)([0-7])|(?:ACBUS|AC|C)([0-7]))", re.IGNORECASE)


@dataclass(frozen=True)
class Pin:
    bit: int  # 0-7 ADBUS, 8-15 ACBUS
    active_low: bool = False

    @property
    def mask(self) -> int:
        return 1 << self.bit

    @property
    def name(self) -> str:
        prefix = "!" if self.active_low else ""
        return f"{prefix}{'D' if self.bit < 8 else 'C'}{self.bit % 8}"

    def drive(self, active: bool) -> int:
        """This pin's bit in the output register for the given logical state."""
        return self.mask if active != self.active_low else 0

    def is_active(self, port_value: int) -> bool:
        return bool(port_value & self.mask) != self.active_low


@dataclass(frozen=True)
class PinMap:
    pins: Mapping[str, Pin] = field(default_factory=dict)

    def get(self, role: str) -> Pin | None:
        return self.pins.get(role)

    @property
    def outputs(self) -> int:
        return _mask(p for r, p in self.pins.items() if not ROLES[r])

    @property
    def inputs(self) -> int:
        return _mask(p for r, p in self.pins.items() if ROLES[r])

    @property
    def used(self) -> int:
        return self.outputs | self.inputs

    def output_value(self, states: Mapping[str, bool]) -> int:
        """The output register for the roles' logical states (missing = inactive)."""
        value = 0
        for role, pin in self.pins.items():
            if not ROLES[role]:
                value |= pin.drive(states.get(role, False))
        return value

    def describe(self) -> str:
        return ",".join(f"{role}={pin.name}" for role, pin in self.pins.items()) or "none"


def _mask(pins: Iterable[Pin]) -> int:
    value = 0
    for pin in pins:
        value |= pin.mask
    return value


def parse_pin(text: str, where: str, *, bus: str, wide: bool, chip: str) -> Pin:
    """One pin (``D4``, ``ADBUS4``, ``C0``...; no ``!``): e.g. the SWD site's nrst=."""
    match = _PIN.fullmatch(text.strip())
    if match is None or match.group(1):
        raise ProgrammerUrlError(
            f"{where}: {text.strip()!r} is not a pin (D0-D7 for ADBUS, C0-C7 for ACBUS)"
        )
    _, ad, ac = match.groups()
    pin = Pin(int(ad) if ad is not None else 8 + int(ac))
    check_pin(pin, where, bus=bus, wide=wide, chip=chip)
    return pin


def check_pin(pin: Pin, where: str, *, bus: str, wide: bool, chip: str) -> None:
    """Refuse a bus pin, and an ACBUS pin on a chip without them."""
    if pin.mask & BUS_PINS[bus]:
        raise ProgrammerUrlError(f"{where}: the {bus.upper()} bus uses {BUS_PIN_NAMES[bus]}")
    if pin.bit >= 8 and not wide:
        raise ProgrammerUrlError(
            f"{where}: {chip or 'this chip'} has no ACBUS pins on an MPSSE interface (use D4-D7)"
        )


def parse_pin_map(text: str, *, bus: str = "spi", wide: bool = True, chip: str = "") -> PinMap:
    """Parse a ``pins=`` option; raises ProgrammerUrlError naming the bad part."""
    text = text.strip()
    if text in NAMED_MAPS:
        text = NAMED_MAPS[text]
    elif "=" not in text:
        known = ", ".join(sorted(NAMED_MAPS))
        raise ProgrammerUrlError(
            f"pins={text!r}: no such pin map (named maps: {known};"
            " or give role=PIN pairs, e.g. pins=power=D4,detect=D5,pass=D6,fail=D7)"
        )
    pins: dict[str, Pin] = {}
    taken: dict[int, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        role, sep, pin_text = item.partition("=")
        role = role.strip().lower()
        if not sep or role not in ROLES:
            raise ProgrammerUrlError(f"pins=: {item!r} is not role=PIN (roles: {', '.join(ROLES)})")
        if role in pins:
            raise ProgrammerUrlError(f"pins=: role {role!r} given twice")
        match = _PIN.fullmatch(pin_text.strip())
        if match is None:
            raise ProgrammerUrlError(
                f"pins=: {pin_text.strip()!r} for {role} is not a pin"
                " (D0-D7 for ADBUS, C0-C7 for ACBUS, '!' prefix for active-low)"
            )
        low, ad, ac = match.groups()
        pin = Pin(int(ad) if ad is not None else 8 + int(ac), bool(low))
        where = f"pins=: {role}={pin_text.strip()}"
        check_pin(pin, where, bus=bus, wide=wide, chip=chip)
        if pin.bit in taken:
            raise ProgrammerUrlError(f"{where}: pin already used for {taken[pin.bit]}")
        taken[pin.bit] = role
        pins[role] = pin
    return PinMap(pins)
