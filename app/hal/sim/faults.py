"""Fault injection for simulated sites: ``fault=SITE:KIND[@ADDR][,SITE:KIND...]``."""

from __future__ import annotations

from dataclasses import dataclass

from app.core.errors import UsageError
from app.core.numbers import parse_number
from app.hal.errors import ProgrammerUrlError

FAULT_KINDS = {
    "empty": "no part in the socket",
    "contact": "bad contact: every byte read is 0x00",
    "wrong-id": "the part answers with another part's ID",
    "stuck-bit": "one bit at the fault address will not program from 1 to 0",
    "verify": "the byte at the fault address, once programmed, reads back with one bit flipped",
    "busy-timeout": "the part stays busy after its first erase or program",
    "link-drop": "the bus to the site fails part-way through the cycle",
    "protected": "block-protect bits are set when the part is powered",
    "erase-fail": "erasing the block at the fault address leaves that byte at 0x00",
    "flaky": "flaky contact (a clip): about every other long read has one bit flipped",
    "swd-off": "(SWD parts) the firmware turns the SWD pins off: only connect=under-reset gets in",
}


@dataclass(frozen=True)
class Fault:
    site: int
    kind: str
    address: int | None = None


def parse_faults(text: str, sites: int) -> dict[int, Fault]:
    """Parse the URL's fault list; each site may carry one fault."""
    faults: dict[int, Fault] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        site_text, sep, rest = item.partition(":")
        kind, _, addr_text = rest.partition("@")
        if not sep or not (site_text.isascii() and site_text.isdigit()) or len(site_text) > 4:
            raise ProgrammerUrlError(f"fault {item!r}: expected SITE:KIND, e.g. 3:verify")
        site = int(site_text)
        if not 1 <= site <= sites:
            raise ProgrammerUrlError(f"fault {item!r}: site {site} is not in 1..{sites}")
        if kind not in FAULT_KINDS:
            known = ", ".join(FAULT_KINDS)
            raise ProgrammerUrlError(f"fault {item!r}: unknown kind {kind!r} (known: {known})")
        try:
            address = parse_number(addr_text, "address") if addr_text else None
        except UsageError as err:
            raise ProgrammerUrlError(f"fault {item!r}: {err}") from None
        if site in faults:
            raise ProgrammerUrlError(f"fault {item!r}: site {site} already has a fault")
        faults[site] = Fault(site, kind, address)
    return faults
