"""A site in a few words, as the site grid shows it under the site's number: which bus,
socket or in-system, who powers the part, and for SWD how the probe connects."""

from __future__ import annotations

from app.hal.programmer import Site


def describe_site(site: Site) -> str:
    swd = site.swd
    if swd is not None:
        bus = "SWD"
    elif site.spi is not None:
        bus = "SPI"
    elif site.i2c is not None:
        bus = "I2C"
    elif site.uart is not None:
        bus = "UART"
    else:
        bus = "Microwire" if site.microwire is not None else "no bus"
    words = [bus, "in-system" if site.in_system else "socket"]
    if site.in_system:
        words.append("board power" if site.board_powered else "programmer power")
    options = getattr(swd, "options", None)  # an SwdBus: the site's wiring
    if options is not None:
        words.append("connect under reset" if options.under_reset else "normal connect")
    return " · ".join(words)
