"""Search keys and ranking: what an operator types -> the parts they mean.

Matching ignores case and punctuation ("W25Q-128", "w25q 128jv" -> "w25q128jv").
Keys are computed once per device when the database is built, so a query is one
pass of cheap string tests over the devices.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from app.devicedb.models import Device

_NON_ALNUM = re.compile(r"[^a-z0-9]+")

# Rank tiers, best first.
EXACT = 0  # id or part (or the id without its vendor prefix)
PART_PREFIX = 1
ALIAS_EXACT = 2
ALIAS_PREFIX = 3
ORDERING_CODE = 4  # the query starts with the part or an alias: "W25Q128JVSIQ TR", "STM32F103C8T6"
SUBSTRING = 5  # in part, alias or id
OTHER_FIELD = 6  # vendor, family or package
NO_MATCH = 99

#: (tier, tie-break within the tier); lower is better.
Score = tuple[int, int]
_MIN_ORDERING_BASE = 4  # shorter names are too likely to start unrelated queries

_SIZE_TERM = re.compile(
    r"(?P<num>\d+(?:\.\d+)?)(?P<mult>[kKmMgG])(?P<unit>[iI]?[bB]|(?i:bits?|bytes?))?"
    r"|(?P<num2>\d+)(?i:b|bytes?)",
)
_MULT = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def normalize(text: str) -> str:
    """Lowercase and drop everything but a-z and 0-9."""
    return _NON_ALNUM.sub("", text.lower())


def parse_size_term(term: str) -> frozenset[int] | None:
    """The byte sizes a term like "16MiB", "128Mbit", "128M", "256K" may mean, else None.

    "B", "iB", "byte" mean bytes; "bit", and "b" after an uppercase K/M/G ("128Mb"),
    mean bits; a bare K/M/G (the "128M" of flash and "256K" of EEPROM names) or an
    all-lowercase "128mb" may mean either, so both sizes match. "512B" is bytes.
    """
    match = _SIZE_TERM.fullmatch(term.strip())
    if not match:
        return None
    if match.group("num2") is not None:
        return frozenset({int(match.group("num2"))})
    mult = match.group("mult")
    value = float(match.group("num")) * _MULT[mult.lower()]
    unit = match.group("unit") or ""
    if unit.lower().startswith("byte") or unit.endswith("B"):
        sizes = {value}
    elif unit.lower().startswith("bit") or (unit and mult.isupper()):
        sizes = {value / 8}  # "128Mbit", "128Mb", "1Mib"
    else:
        sizes = {value, value / 8}  # "128M", "256K", and lowercase "128mb"
    return frozenset(int(s) for s in sizes if s == int(s) and s >= 1)


@dataclass(frozen=True, slots=True)
class SearchKeys:
    """Normalized strings of one device, computed at load time."""

    id: str
    id_part: str  # the id after "<vendor-slug>."
    part: str
    aliases: tuple[str, ...]
    vendor: str
    vendor_slug: str
    family: str
    packages: tuple[str, ...]

    @classmethod
    def of(cls, device: Device) -> SearchKeys:
        slug, _, rest = device.id.partition(".")
        return cls(
            id=normalize(device.id),
            id_part=normalize(rest),
            part=normalize(device.part),
            aliases=tuple(normalize(a) for a in (*device.aliases, *device.flashrom_names)),
            vendor=normalize(device.vendor),
            vendor_slug=normalize(slug),
            family=normalize(device.family),
            packages=tuple(normalize(p) for p in device.packages),
        )

    def rank(self, term: str) -> Score:
        """The tier at which normalized ``term`` matches (NO_MATCH if none), and a
        tie-break: for an ordering code, the longer the name it extends, the better."""
        if term in (self.part, self.id, self.id_part):
            return EXACT, 0
        if self.part.startswith(term) or self.id_part.startswith(term):
            return PART_PREFIX, 0
        if term in self.aliases:
            return ALIAS_EXACT, 0
        if any(a.startswith(term) for a in self.aliases):
            return ALIAS_PREFIX, 0
        base = max(
            (len(n) for n in (self.part, self.id_part, *self.aliases) if term.startswith(n)),
            default=0,
        )
        if base >= _MIN_ORDERING_BASE:
            return ORDERING_CODE, -base
        if term in self.part or term in self.id or any(term in a for a in self.aliases):
            return SUBSTRING, 0
        if (
            term in self.vendor
            or term == self.vendor_slug
            or term in self.family
            or any(p.startswith(term) for p in self.packages)
        ):
            return OTHER_FIELD, 0
        return NO_MATCH, 0

    def matches_vendor(self, wanted: str) -> bool:
        return wanted in (self.vendor, self.vendor_slug) or self.vendor.startswith(wanted)

    def matches_package(self, wanted: str) -> bool:
        return any(p.startswith(wanted) for p in self.packages)


@dataclass(frozen=True, slots=True)
class ParsedQuery:
    """A query split into normalized text terms and size constraints."""

    text: str  # all text terms joined, normalized
    terms: tuple[str, ...]  # each text term, normalized
    sizes: tuple[frozenset[int], ...]  # each size term: the sizes it may mean


@lru_cache(maxsize=256)
def parse_query(query: str) -> ParsedQuery:
    terms: list[str] = []
    sizes: list[frozenset[int]] = []
    words = query.split()
    index = 0
    while index < len(words):
        word = words[index]
        pair = words[index + 1] if index + 1 < len(words) else ""
        if word.isdigit() and pair and (size := parse_size_term(word + pair)):
            sizes.append(size)  # "16 MiB"
            index += 2
            continue
        index += 1
        if size := parse_size_term(word):
            sizes.append(size)
        elif normalized := normalize(word):
            terms.append(normalized)
    return ParsedQuery("".join(terms), tuple(terms), tuple(sizes))


def rank(keys: SearchKeys, query: ParsedQuery) -> Score:
    """How well a device matches: the joined query's score, or, when every word
    matches on its own ("winbond 128"), the worst word's score, whichever is better."""
    if not query.text:
        return EXACT, 0
    best = keys.rank(query.text)
    if best[0] == EXACT or len(query.terms) < 2:
        return best
    worst = max(keys.rank(t) for t in query.terms)
    return min(best, worst)
