"""Typed chip facts: what the device database says about a part, as frozen values.

They are built once, when the database loads (app.devicedb.entry_reader reads the JSON,
with every hex parse and every default there); algorithms, planner, simulator and UI
read these and never the JSON. Offsets are from the memory's start (``Stm32Facts``'
``flash_base`` says where that is in an image's address space); sizes are in bytes.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar, NamedTuple

from app.devicedb.families import Family


class VoltageRange(NamedTuple):
    """Supply range in millivolts (a tuple, so ``low, high = device.voltage_mv`` works)."""

    min_mv: int
    max_mv: int


@dataclass(frozen=True, slots=True)
class Timing:
    """A datasheet time: typical and maximum, in milliseconds."""

    ms_typ: float
    ms_max: float


@dataclass(frozen=True, slots=True)
class EraseOp:
    """One SPI NOR erase command; ``size`` None is the chip erase."""

    opcode: int
    size: int | None
    timing: Timing

    @property
    def is_chip(self) -> bool:
        return self.size is None


@dataclass(frozen=True, slots=True)
class Sector:
    """One erase unit (page or sector) of a memory layout."""

    start: int
    size: int

    @property
    def end(self) -> int:
        return self.start + self.size


@dataclass(frozen=True, slots=True)
class SectorRun:
    """``count`` consecutive units of ``size`` bytes."""

    count: int
    size: int


@dataclass(frozen=True)
class MemoryLayout:
    """Erase units from offset 0 up, numbered in order (the numbers the STM32 erase
    commands take): uniform pages, or F2/F4/F7 sectors such as 4x16K + 1x64K + 7x128K.

    The unit table is derived from ``runs`` when first used and is not pickled: a 2 MiB
    part of 2 KiB pages has a thousand units, and the database cache holds sixty parts.
    """

    runs: tuple[SectorRun, ...]

    def __reduce__(self) -> tuple[type[MemoryLayout], tuple[tuple[SectorRun, ...]]]:
        return MemoryLayout, (self.runs,)

    @functools.cached_property
    def sectors(self) -> tuple[Sector, ...]:
        sectors: list[Sector] = []
        offset = 0
        for run in self.runs:
            for _ in range(run.count):
                sectors.append(Sector(offset, run.size))
                offset += run.size
        return tuple(sectors)

    @functools.cached_property
    def _starts(self) -> tuple[int, ...]:
        return tuple(s.start for s in self.sectors)

    @classmethod
    def uniform(cls, size: int, unit: int) -> MemoryLayout:
        return cls((SectorRun(size // unit, unit),))

    @property
    def size(self) -> int:
        return sum(run.count * run.size for run in self.runs)

    def numbers_in(self, lo: int, hi: int) -> range:
        """Numbers of the units overlapping [lo, hi)."""
        if hi <= lo:
            return range(0)
        first = bisect.bisect_right(self._starts, lo) - 1
        last = bisect.bisect_left(self._starts, hi)
        return range(max(first, 0), last)

    def spans(self, numbers: Iterable[int]) -> list[tuple[int, int]]:
        """[start, end) ranges of the ascending unit ``numbers``, neighbours joined."""
        spans: list[tuple[int, int]] = []
        for number in numbers:
            sector = self.sectors[number]
            if spans and spans[-1][1] == sector.start:
                spans[-1] = (spans[-1][0], sector.end)
            else:
                spans.append((sector.start, sector.end))
        return spans


# -- SPI NOR ---------------------------------------------------------------------------


class FourByteMode(StrEnum):
    """How a part above 16 MiB reaches the addresses above 16 MiB."""

    B7 = "b7"  # enter 4-byte mode with B7h
    OPCODES = "opcodes"  # dedicated 4-byte opcodes (13h/0Ch/12h/21h/DCh)
    BANK_REGISTER = "bank-register"  # Spansion bank address register (BRWR 17h, EXTADD)
    ALWAYS = "always"  # 4-byte addresses from power-up


@dataclass(frozen=True, slots=True)
class StatusBit:
    """A bit of a status register: ``"sr2.1"`` is register 2, bit 1."""

    register: int
    bit: int


@dataclass(frozen=True, slots=True)
class SpiNorProtection:
    """Where a SPI NOR part keeps its write protection."""

    bp_mask: int  # status register 1 block-protect bits (incl. TB/SEC/BP3)
    quad_enable: StatusBit | None
    status_protect: StatusBit | None  # SRP
    #: SST26: a Block-Protection Register (read 0x72) cleared by Global Block Protection
    #: Unlock (0x98); the parts power up protected.
    global_unlock: bool
    status_write: Timing  # a status register write (tW)
    #: the command that enables a status-register write: WREN 06h, or EWSR 50h (SST25)
    status_write_enable: int = 0x06
    #: the block-protect bits are set at every power-up (SST25VF/LF/WF): writing needs
    #: "unprotect"
    locked_at_power_up: bool = False


@dataclass(frozen=True, slots=True)
class UniqueIdRead:
    """The command that reads a part's factory unique ID."""

    opcode: int
    dummy_bytes: int
    length: int


@dataclass(frozen=True, slots=True)
class EraseLayout:
    """An erase command whose block size changes across the part (boot or parameter
    sectors): ``runs`` are (block size, count) from address 0 upwards, as a datasheet's
    sector table gives them, e.g. 2 x 4 KiB, 8 KiB, 16 KiB, 32 KiB, 63 x 64 KiB."""

    opcode: int
    runs: tuple[tuple[int, int], ...]

    def blocks(self) -> list[tuple[int, int]]:
        """(start, size) of every block, in address order."""
        out, at = [], 0
        for size, count in self.runs:
            for _ in range(count):
                out.append((at, size))
                at += size
        return out


@dataclass(frozen=True, slots=True)
class KnownId:
    """Another JEDEC ID a part is known to answer, and who says so (Zbit's ZB25VQ16:
    datasheet 5E6015, parts in the field 0E4015 as flashrom's chip table has it)."""

    jedec: bytes
    source: str


@dataclass(frozen=True, slots=True)
class SpiNorFacts:
    family: ClassVar[Family] = Family.SPI_NOR

    jedec_id: bytes  # 3 bytes: manufacturer, memory type, capacity
    extended_id: bytes  # ID bytes after the first 3 that tell variants apart; often b""
    legacy_rdid: int | None  # device ID byte of the old ABh command
    page_size: int
    erase_ops: tuple[EraseOp, ...]  # as the datasheet lists them, the chip erase included
    page_program: Timing
    address_bytes: int  # 3, or 4 above 16 MiB
    four_byte_mode: FourByteMode | None  # None for parts of 16 MiB or less
    protection: SpiNorProtection
    sfdp: bool
    unique_id: UniqueIdRead | None
    #: the command that identifies the part: "rdid" (9Fh, jedec_id), or for parts without
    #: it "res" (ABh + 3 dummy bytes), "rems" (90h + address 000000h); ``id_answer``
    #: is what that command returns
    id_command: str = "rdid"
    id_answer: bytes = b""
    #: how data is written: "page" (02h, up to a page), "byte" (02h with one byte) or
    #: "aai-word" (SST's auto-address-increment word program ADh); page_program is
    #: the time of one page, one byte or one word accordingly
    write_mode: str = "page"
    #: erase commands whose block size changes across the part (boot sectors)
    erase_layout: tuple[EraseLayout, ...] = ()
    #: other RDID answers the part is known to give, each with its source
    also_answers: tuple[KnownId, ...] = ()
    #: stacked dies of equal size (Micron): erased die by die, busy read from the flag
    #: status register (70h), which each die must report after its program or erase
    dies: int = 1
    #: Winbond SpiStack (W25M): the dies are reached one at a time after Software Die
    #: Select (C2h + die number); each keeps its own status, 4-byte mode and chip erase
    die_select: bool = False

    @property
    def jedec_ids(self) -> tuple[bytes, ...]:
        """Every 3-byte RDID answer this part is known to give, the datasheet's first."""
        return (self.jedec_id, *(k.jedec for k in self.also_answers)) if self.jedec_id else ()

    @property
    def block_erases(self) -> tuple[EraseOp, ...]:
        """The sector/block erases, smallest first."""
        return tuple(sorted((op for op in self.erase_ops if not op.is_chip), key=_op_size))

    @property
    def chip_erase(self) -> EraseOp | None:
        return next((op for op in self.erase_ops if op.is_chip), None)


def _op_size(op: EraseOp) -> int:
    return op.size or 0


# -- I2C EEPROM ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class I2cEepromFacts:
    family: ClassVar[Family] = Family.I2C_EEPROM

    page_size: int
    address_bytes: int  # memory address bytes after the device address: 1 or 2
    block_bits: int  # device-address bits A0..A2 that carry memory address bits
    write_cycle: Timing  # self-timed write cycle; typical = maximum when not given


# -- SPI EEPROM (25xxx) -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SpiEepromFacts:
    """A 25xxx SPI EEPROM (AT25, 25AA/25LC, M95, CAT25, BR25): READ 03h / WRITE 02h with
    1, 2 or 3 address bytes, WREN/RDSR/WRSR, no erase command and no ID command."""

    family: ClassVar[Family] = Family.SPI_EEPROM

    page_size: int
    address_bytes: int  # 1, 2 or 3
    #: the 4 Kbit parts with one address byte carry address bit 8 in opcode bit 3
    #: (READ 0Bh / WRITE 0Ah for the upper 256 bytes)
    address_bit_in_opcode: bool
    write_cycle: Timing  # self-timed write cycle (tWC); typical = maximum when not given
    bp_mask: int  # status register block-protect bits: BP0/BP1 = 0x0C
    wpen: bool  # status bit 7 is WPEN (write-protect enable, with the WP pin)


# -- DataFlash (AT45) ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DataFlashFacts:
    """An Atmel/Adesto AT45 DataFlash: pages of 264/528/1056 bytes (or, set once in the
    part, 256/512/1024), written through an SRAM buffer (84h) and a buffer-to-page
    program (88h), erased by page (81h), block of 8 pages (50h) or chip, status D7h."""

    family: ClassVar[Family] = Family.DATAFLASH

    jedec_id: bytes  # 9Fh: manufacturer 1Fh, device ID bytes 1 and 2
    pages: int
    page_size: int  # the DataFlash page: 264, 528 or 1056
    binary_page_size: int | None  # the power-of-two page the part can be set to, or None
    #: status register bits 5-2 (the density code), None where the datasheet gives none
    density_code: int | None
    page_program: Timing  # buffer to main memory page program without erase (88h)
    page_erase: Timing  # 81h
    block_erase: Timing  # 50h, 8 pages
    chip_erase: Timing  # C7h 94h 80h 9Ah

    def page_bytes(self, binary: bool) -> int:
        """The page size in the mode the part is set to."""
        return self.binary_page_size if binary and self.binary_page_size else self.page_size


# -- Microwire EEPROM (93xx) ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MicrowireFacts:
    """A 93xx three-wire (Microwire) EEPROM as one organisation: words of 8 or 16 bits,
    set by the part (93xx46A x8, 93xx46B x16) or by its ORG pin (the catalogue then has
    one entry per strapping). Instructions: start bit 1, 2-bit opcode, ``address_bits``
    (don't-care bits included), data; READ 10, WRITE 01, ERASE 11, and under opcode 00
    EWEN 11, EWDS 00, ERAL 10, WRAL 01 in the two address bits that follow."""

    family: ClassVar[Family] = Family.MICROWIRE

    word_bits: int  # 8 or 16
    address_bits: int  # the address field of every instruction in this organisation
    org_pin: bool  # the organisation comes from the ORG pin (socket adapter or board)
    write_cycle: Timing  # WRITE / ERASE (self-timed, auto-erase included)
    erase_all: Timing  # ERAL

    @property
    def word_bytes(self) -> int:
        return self.word_bits // 8


# -- STM32 through the ROM UART bootloader -------------------------------------------


@dataclass(frozen=True, slots=True)
class BootloaderFacts:
    """What the DB expects of the AN3155 bootloader (its own Get answer wins)."""

    version: int
    extended_erase: bool  # Extended Erase (0x44), else Erase (0x43)
    commands: frozenset[int]
    ram_reserved_bytes: int
    usarts: tuple[str, ...]


# -- Cortex-M microcontrollers through their debug port (SWD) --------------------------

#: series -> the flash controller that programs it (one driver per controller kind):
#: ST's F0/F1/F3 share one (half-word programming, pages), F2/F4 another (sectors,
#: PSIZE), G0/G4/L4 a third (double-word programming, pages); Nordic's NVMC differs
#: between nRF51 and nRF52 in its protection.
SWD_SERIES: dict[str, str] = {
    "stm32f0": "stm32f1",
    "stm32f1": "stm32f1",
    "stm32f3": "stm32f1",
    "stm32f2": "stm32f4",
    "stm32f4": "stm32f4",
    "stm32g0": "stm32l4",
    "stm32g4": "stm32l4",
    "stm32l4": "stm32l4",
    "nrf51": "nrf51",
    "nrf52": "nrf52",
}
SWD_CORES = ("cortex-m0", "cortex-m0+", "cortex-m3", "cortex-m4")


@dataclass(frozen=True, slots=True)
class SwdFacts:
    """What programming a part through SWD needs beyond its memory layout."""

    series: str  # a key of SWD_SERIES: names the reference manual the part follows
    core: str
    id_address: int  # DBGMCU_IDCODE (STM32) or FICR (nRF) register identifying the part
    id_mask: int
    id_values: tuple[int, ...]  # any of these (masked) is this part
    #: flash banks the pages are split over (G4/L4 dual-bank parts: BKER picks one)
    banks: int = 1

    @property
    def controller(self) -> str:
        return SWD_SERIES[self.series]


@dataclass(frozen=True, slots=True)
class Stm32Facts:
    family: ClassVar[Family] = Family.STM32_UART

    pid: int  # 12-bit product ID (AN3155 Get ID)
    flash_base: int
    flash: MemoryLayout
    ram_base: int
    ram_bytes: int
    bootloader: BootloaderFacts
    #: the same part through its debug port, where Socketeer can program it so
    swd: SwdFacts | None = None


@dataclass(frozen=True, slots=True)
class CortexMFacts:
    """A microcontroller programmed only through its debug port (Nordic nRF5x)."""

    family: ClassVar[Family] = Family.CORTEX_M

    flash_base: int
    flash: MemoryLayout
    ram_base: int
    ram_bytes: int
    swd: SwdFacts


FamilyFacts = (
    SpiNorFacts
    | I2cEepromFacts
    | Stm32Facts
    | SpiEepromFacts
    | DataFlashFacts
    | MicrowireFacts
    | CortexMFacts
)
