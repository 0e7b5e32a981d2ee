"""SPI NOR flash: JEDEC ID, read, sector/block/chip erase, page program,
status-register protection, 3- and 4-byte addressing (SFDP: app.algorithms.sfdp).

Writes go out in batches: WREN + PAGE PROGRAM + wait-ready for several pages per bus
call, so a real link spends one round trip on many pages.

Winbond SpiStack parts (W25M, ``die_select``) are several dies behind one chip select:
Software Die Select (C2h + die number) makes one active, and every other command reaches
that die only. Addresses here stay global; each command goes to its die with the
die's own address, preceded by C2h whenever the active die changes; a read is split at
the die boundary; 4-byte mode, protection and the chip erase are done die by die.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from app.algorithms import register
from app.algorithms.base import (
    ChipAlgorithm,
    ChipError,
    ChipIdentity,
    EraseBlock,
    EraseRegion,
    Geometry,
    Protection,
    Tick,
)
from app.algorithms.spi_nor_regions import layout_regions
from app.algorithms.spi_nor_writes import (
    aai_pieces,
    aai_word_ops,
    batches,
    byte_program_ops,
    runs,
)
from app.devicedb.facts import FourByteMode, SpiNorFacts, Timing
from app.hal.bus import SpiBus, SpiOp, SpiStep, WaitReady
from app.hal.errors import BusTimeout

if TYPE_CHECKING:
    from app.devicedb.models import Device

WREN = SpiOp(b"\x06")
DIE_SELECT = 0xC2
#: the ID commands of parts without RDID: RES (ABh, 3 dummy bytes), REMS (90h, 000000h)
_ID_COMMANDS = {
    "res": b"\xab\x00\x00\x00",
    "rems": b"\x90\x00\x00\x00",
    "atmel_rdid": b"\x15",  # Atmel AT25F Read Product ID: manufacturer, device
}
#: busy waits per bus transfer when every byte or word is its own program
SMALL_WRITES_PER_BATCH = 64
READ_CHUNK = 64 * 1024
PAGES_PER_BATCH = 16
BPR_BYTES = 6  # the smallest SST26 register (16 Mbit); larger parts have more bytes
_FOUR_BYTE_OPCODES = {0x0B: 0x0C, 0x03: 0x13, 0x02: 0x12, 0x20: 0x21, 0x52: 0x5C, 0xD8: 0xDC}


def busy_timeout_s(ms_max: float) -> float:
    """Datasheet maximum plus a margin for the link."""
    return ms_max * 1.2 / 1000.0 + 0.05


def _erase_kind(size: int) -> str:
    """What a block erase's busy time is learned under: its size ("erase 4K")."""
    return f"erase {size // 1024}K" if size % 1024 == 0 else f"erase {size}"


def identify_jedec(bus: SpiBus, extended_bytes: int = 0) -> ChipIdentity:
    """The 9Fh JEDEC ID (3 bytes, plus ``extended_bytes``); works on any SPI NOR part,
    known to the database or not."""
    raw = bus.transfer([SpiOp(b"\x9f", 3 + extended_bytes)])[0]
    present = raw[:3] not in (b"\xff\xff\xff", b"\x00\x00\x00")
    return ChipIdentity("jedec", raw, present)


def spi_nor_geometry(device: Device) -> Geometry:
    """The erase regions: one over the whole part with the DB's sector/block erases, or
    for a part with boot/parameter sectors (erase_layout) one per stretch where every
    erase command has one block size (app.algorithms.spi_nor_regions)."""
    facts = device.facts_as(SpiNorFacts)
    blocks = tuple(
        EraseBlock(op.opcode, op.size, op.timing)
        for op in facts.block_erases
        if op.size is not None
    )
    chip = facts.chip_erase
    if facts.erase_layout:
        regions = layout_regions(device.size_bytes, facts)
    else:
        regions = (EraseRegion(0, device.size_bytes, blocks),) if blocks else ()
    return Geometry(
        size=device.size_bytes,
        page_size=facts.page_size,
        regions=regions,
        chip_erase=None
        if chip is None
        else EraseBlock(chip.opcode, device.size_bytes, chip.timing),
        erased_value=device.erased_value,
        program=facts.page_program,
    )


@register
class SpiNor(ChipAlgorithm):
    name = "spi_nor"
    bus: SpiBus

    def __init__(self, bus: SpiBus, device: Device) -> None:
        super().__init__(bus, device)
        self.facts = device.facts_as(SpiNorFacts)
        self._geometry = spi_nor_geometry(device)
        self.bp_mask = self.facts.protection.bp_mask
        self.global_unlock = self.facts.protection.global_unlock
        self.address_bytes = self.facts.address_bytes
        self.four_byte_mode = self.facts.four_byte_mode
        self.use_4b_opcodes = (
            self.address_bytes == 4 and self.four_byte_mode is FourByteMode.OPCODES
        )
        self.die_select = self.facts.die_select
        self.die_size = device.size_bytes // self.facts.dies
        self._active_die: int | None = None  # as last selected (die-select parts)

    @property
    def geometry(self) -> Geometry:
        return self._geometry

    # -- identification -------------------------------------------------------------

    def identify(self) -> ChipIdentity:
        facts = self.facts
        if self.die_select:  # die 0 answers for the stack
            self.bus.transfer(self._select_die(0))
        if facts.id_command == "rdid":
            return identify_jedec(self.bus, len(facts.extended_id))
        command = _ID_COMMANDS[facts.id_command]
        raw = self.bus.transfer([SpiOp(command, len(facts.id_answer))])[0]
        present = raw.strip(b"\xff") != b"" and raw.strip(b"\x00") != b""
        return ChipIdentity(facts.id_command, raw, present)

    def unique_id(self) -> bytes | None:
        uid = self.facts.unique_id
        if uid is None:
            return None
        cmd = bytes([uid.opcode]) + bytes(uid.dummy_bytes)
        select = self._select_die(0) if self.die_select else []
        return self.bus.transfer([*select, SpiOp(cmd, uid.length)])[-1]

    # -- dies (Winbond SpiStack) ----------------------------------------------------

    def _select_die(self, die: int) -> list[SpiStep]:
        """C2h + ``die`` when another die is active (nothing otherwise)."""
        if die == self._active_die:
            return []
        self._active_die = die
        return [SpiOp(bytes([DIE_SELECT, die]))]

    def _route(self, address: int) -> tuple[list[SpiStep], int]:
        """The die select a command at global ``address`` needs, and its address there."""
        if not self.die_select:
            return [], address
        die, local = divmod(address, self.die_size)
        return self._select_die(die), local

    def _each_die(self) -> range:
        return range(self.facts.dies if self.die_select else 1)

    # -- addressing -----------------------------------------------------------------

    def prepare(self) -> None:
        if self.device.max_clock_hz:
            self.bus.set_clock(self.device.max_clock_hz)
        if self.address_bytes != 4:
            return
        self._active_die = None
        for die in self._each_die():  # each die of a stack keeps its own address mode
            select = self._select_die(die) if self.die_select else []
            if self.four_byte_mode is FourByteMode.B7:
                self.bus.transfer([*select, WREN, SpiOp(b"\xb7")])
            elif self.four_byte_mode is FourByteMode.BANK_REGISTER:
                self.bus.transfer([*select, SpiOp(b"\x17\x80")])

    def _cmd(self, opcode: int, address: int) -> bytes:
        if self.address_bytes == 4:
            if self.use_4b_opcodes:
                opcode = _FOUR_BYTE_OPCODES.get(opcode, opcode)
            return bytes([opcode]) + address.to_bytes(4, "big")
        return bytes([opcode]) + address.to_bytes(3, "big")

    # -- operations -----------------------------------------------------------------

    def read(self, start: int, length: int, tick: Tick) -> bytes:
        out = bytearray()
        pos = start
        end = start + length
        while pos < end:
            n = min(READ_CHUNK, end - pos)
            if self.die_select:  # a read does not run on into the next die
                n = min(n, self.die_size - pos % self.die_size)
            select, local = self._route(pos)
            out += self.bus.transfer([*select, SpiOp(self._cmd(0x0B, local) + b"\x00", n)])[-1]
            pos += n
            tick(pos - start)
        return bytes(out)

    def _wait(self, timing: Timing, kind: str) -> WaitReady:
        timeout, typical = busy_timeout_s(timing.ms_max), timing.ms_typ / 1000.0
        if self.facts.dies > 1 and not self.die_select:
            # Stacked Micron dies: the die that took the command reports ready in the
            # flag status register (bit 7 = 1), which must be read before the next one.
            return WaitReady(0x70, 0x80, 0x80, timeout, typical, kind)
        return WaitReady(0x05, 0x01, 0x00, timeout, typical, kind)

    def erase_blocks(self, blocks: Sequence[tuple[EraseBlock, int]], tick: Tick) -> None:
        done = 0
        for block, address in blocks:
            select, local = self._route(address)
            try:
                self.bus.transfer(
                    [
                        *select,
                        WREN,
                        SpiOp(self._cmd(block.opcode, local)),
                        self._wait(block.timing, _erase_kind(block.size)),
                    ]
                )
            except BusTimeout as err:
                raise ChipError(
                    f"erase of the {block.size // 1024} KiB block at 0x{address:X} timed out:"
                    f" {err} (datasheet maximum {block.timing.ms_max:g} ms)",
                    address,
                ) from None
            done += block.size
            tick(done)

    def erase_chip(self) -> None:
        chip = self.geometry.chip_erase
        if chip is None:
            raise ChipError("this part has no chip-erase command")
        for die in self._each_die():  # a stack's chip erase erases the active die
            select = self._select_die(die) if self.die_select else []
            try:
                self.bus.transfer(
                    [
                        *select,
                        WREN,
                        SpiOp(bytes([chip.opcode])),
                        self._wait(chip.timing, "chip erase"),
                    ]
                )
            except BusTimeout as err:
                which = f" of die {die}" if self.die_select else ""
                raise ChipError(
                    f"chip erase{which} timed out: {err} (datasheet maximum"
                    f" {chip.timing.ms_max:g} ms)"
                ) from None

    def program(self, writes: Sequence[tuple[int, bytes]], tick: Tick) -> None:
        if self.facts.write_mode != "page":
            self._program_small(writes, tick)
            return
        geo = self.geometry
        wait = self._wait(geo.program, "page program")
        done = 0
        for first in range(0, len(writes), PAGES_PER_BATCH):
            batch = writes[first : first + PAGES_PER_BATCH]
            ops: list[SpiStep] = []
            for address, data in batch:
                select, local = self._route(address)
                ops += [*select, WREN, SpiOp(self._cmd(0x02, local) + data), wait]
            try:
                self.bus.transfer(ops)
            except BusTimeout as err:
                raise ChipError(
                    f"page program in 0x{batch[0][0]:X}..0x{batch[-1][0] + len(batch[-1][1]):X}"
                    f" timed out: {err} (datasheet maximum {geo.program.ms_max:g} ms)",
                    batch[0][0],
                ) from None
            done += sum(len(d) for _, d in batch)
            tick(done)

    def _program_small(self, writes: Sequence[tuple[int, bytes]], tick: Tick) -> None:
        """Byte program or SST AAI word program (app.algorithms.spi_nor_writes), in bus
        transfers of about SMALL_WRITES_PER_BATCH busy waits each."""
        timing = self.geometry.program
        unit = "word" if self.facts.write_mode == "aai-word" else "byte"
        wait = self._wait(timing, f"{unit} program")
        erased = self.geometry.erased_value
        done = 0
        for address, data in runs(writes):
            if unit == "word":
                ops = [
                    op
                    for at, piece in aai_pieces(address, data, erased)
                    for op in aai_word_ops(at, piece, self._cmd, wait, wait)
                ]
            else:
                ops = byte_program_ops(address, data, self._cmd, wait, erased)
            for batch in batches(ops, SMALL_WRITES_PER_BATCH):
                try:
                    self.bus.transfer(batch)
                except BusTimeout as err:
                    raise ChipError(
                        f"{unit} program in 0x{address:X}..0x{address + len(data):X} timed"
                        f" out: {err} (datasheet maximum {timing.ms_max:g} ms)",
                        address,
                    ) from None
            done += len(data)
            tick(done)

    # -- protection -----------------------------------------------------------------

    def _status(self) -> int:
        return self.bus.transfer([SpiOp(b"\x05", 1)])[0][0]

    def _bpr(self) -> bytes:
        """SST26 Block-Protection Register (0x72); its first bytes cover the array."""
        return self.bus.transfer([SpiOp(b"\x72", BPR_BYTES)])[0]

    def _on_die(self, die: int) -> None:
        if self.die_select:
            select = self._select_die(die)
            if select:
                self.bus.transfer(select)

    def protection(self) -> Protection:
        """The protection of every die (a stack's dies keep their own status)."""
        state = Protection(False, "no block-protect bits set")
        for die in self._each_die():
            self._on_die(die)
            state = self._protection_here()
            if state.protected:
                if self.die_select:
                    return Protection(True, f"die {die}: {state.description}")
                return state
        return state

    def _protection_here(self) -> Protection:
        if self.global_unlock:
            bpr = self._bpr()
            if any(bpr):
                return Protection(
                    True,
                    f"block-protection register {bpr.hex().upper()} (SST26"
                    " parts power up write-protected)",
                )
            return Protection(False, "block-protection register clear")
        bits = self._status() & self.bp_mask
        if bits:
            return Protection(
                True, f"block-protect bits set (status 0x{bits:02X}, mask 0x{self.bp_mask:02X})"
            )
        return Protection(False, "no block-protect bits set")

    def _write_status(self, value: int) -> None:
        self.bus.transfer(
            [
                SpiOp(bytes([self.facts.protection.status_write_enable])),  # WREN or EWSR
                SpiOp(bytes([0x01, value])),
                self._wait(self.facts.protection.status_write, "status write"),
            ]
        )

    def unprotect(self) -> None:
        for die in self._each_die():
            self._on_die(die)
            self._unprotect_here()

    def _unprotect_here(self) -> None:
        if self.global_unlock:
            self.bus.transfer([WREN, SpiOp(b"\x98")])  # Global Block Protection Unlock
            if any(self._bpr()):
                raise ChipError("global block-protection unlock (0x98) did not clear the register")
            return
        status = self._status()
        if status & self.bp_mask:
            self._write_status(status & ~self.bp_mask & 0xFC)
            left = self._status() & self.bp_mask
            if left:
                raise ChipError(
                    f"block protection could not be cleared (status 0x{left:02X} after write);"
                    " is WP# held low with SRP set?"
                )

    def protect(self) -> None:
        if self.global_unlock:
            raise ChipError("setting SST26 block protection is not supported yet (0x42 WBPR)")
        if not self.bp_mask:
            raise ChipError("this part has no block-protect bits: only its WP# pin protects it")
        for die in self._each_die():
            self._on_die(die)
            self._protect_here()

    def _protect_here(self) -> None:
        status = self._status()
        self._write_status((status | self.bp_mask) & 0xFC)
        if self._status() & self.bp_mask != self.bp_mask:
            raise ChipError("block-protect bits did not stay set after writing the status register")
