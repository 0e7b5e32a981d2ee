"""SPI NOR flash: JEDEC ID, SFDP, read, sector/block/chip erase, page program,
status-register protection, 3- and 4-byte addressing.

Writes go out in batches: WREN + PAGE PROGRAM + wait-ready for several pages per bus
call, so a real link spends one round trip on many pages.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from app.algorithms import register
from app.algorithms.base import (
    ChipAlgorithm,
    ChipError,
    ChipIdentity,
    EraseBlock,
    Geometry,
    Protection,
    Tick,
    hex_field,
)
from app.algorithms.sfdp import parse_sfdp
from app.hal.bus import SpiOp, WaitReady
from app.hal.errors import BusTimeout

WREN = SpiOp(b"\x06")
READ_CHUNK = 64 * 1024
PAGES_PER_BATCH = 16
BPR_BYTES = 6  # the smallest SST26 register (16 Mbit); larger parts have more bytes
_FOUR_BYTE_OPCODES = {0x0B: 0x0C, 0x03: 0x13, 0x02: 0x12, 0x20: 0x21, 0x52: 0x5C, 0xD8: 0xDC}


def _timeout_s(ms_max: float) -> float:
    """Datasheet maximum plus a margin for the link."""
    return ms_max * 1.2 / 1000.0 + 0.05


def geometry_from_params(params: Mapping[str, Any]) -> Geometry:
    blocks = []
    chip = None
    for entry in params.get("erase", []):
        block = EraseBlock(
            hex_field(entry["opcode"]),
            int(params["size_bytes"])
            if entry["size_bytes"] == "chip"
            else int(entry["size_bytes"]),
            float(entry["ms_typ"]),
            float(entry["ms_max"]),
        )
        if entry["size_bytes"] == "chip":
            chip = block
        else:
            blocks.append(block)
    return Geometry(
        size=int(params["size_bytes"]),
        page_size=int(params.get("page_size_bytes", 256)),
        erase_blocks=tuple(sorted(blocks, key=lambda b: b.size)),
        chip_erase=chip,
        erased_value=hex_field(params.get("erased_value", "0xFF")),
        program_ms_typ=float(params.get("page_program_ms_typ", 0.7)),
        program_ms_max=float(params.get("page_program_ms_max", 5.0)),
    )


@register
class SpiNor(ChipAlgorithm):
    name = "spi_nor"

    def __init__(self, bus: Any, params: Mapping[str, Any]) -> None:
        super().__init__(bus, params)
        self._geometry = geometry_from_params(params) if "size_bytes" in params else None
        status = params.get("status") or {}
        self.bp_mask = hex_field(status.get("bp_mask", "0x1C"))
        self.global_unlock = status.get("unlock") == "global-0x98"
        self.address_bytes = int(params.get("address_bytes", 3))
        self.four_byte_mode = params.get("four_byte_mode")
        self.use_4b_opcodes = self.address_bytes == 4 and self.four_byte_mode == "opcodes"

    @property
    def geometry(self) -> Geometry:
        if self._geometry is None:
            raise ChipError("the part's geometry is unknown (no DB entry and no SFDP)")
        return self._geometry

    # -- identification -------------------------------------------------------------

    def identify(self) -> ChipIdentity:
        extra = len(str(self.params.get("ids", {}).get("extended", ""))) // 2
        raw = self.bus.transfer([SpiOp(b"\x9f", 3 + extra)])[0]
        present = raw[:3] not in (b"\xff\xff\xff", b"\x00\x00\x00")
        return ChipIdentity("jedec", raw, present)

    def read_sfdp(self) -> dict[str, Any] | None:
        header = self.bus.transfer([SpiOp(b"\x5a\x00\x00\x00\x00", 16)])[0]
        if header[:4] != b"SFDP":
            return None
        length = header[11]
        pointer = int.from_bytes(header[12:15], "little")
        end = pointer + 4 * length
        if length < 9 or end > 0x1000:
            return None
        table = self.bus.transfer([SpiOp(b"\x5a\x00\x00\x00\x00", end)])[0]
        return parse_sfdp(table)

    def unique_id(self) -> bytes | None:
        uid = self.params.get("unique_id")
        if not uid:
            return None
        cmd = bytes([hex_field(uid["opcode"])]) + bytes(int(uid.get("dummy_bytes", 4)))
        return self.bus.transfer([SpiOp(cmd, int(uid["length_bytes"]))])[0]

    # -- addressing -----------------------------------------------------------------

    def prepare(self) -> None:
        max_hz = int(self.params.get("max_clock_hz", 0) or 0)
        if max_hz:
            self.bus.set_clock(max_hz)
        if self.address_bytes == 4:
            if self.four_byte_mode == "b7":
                self.bus.transfer([WREN, SpiOp(b"\xb7")])
            elif self.four_byte_mode == "bank-register":
                self.bus.transfer([SpiOp(b"\x17\x80")])

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
            out += self.bus.transfer([SpiOp(self._cmd(0x0B, pos) + b"\x00", n)])[0]
            pos += n
            tick(pos - start)
        return bytes(out)

    def _wait(self, ms_typ: float, ms_max: float) -> WaitReady:
        return WaitReady(0x05, 0x01, 0x00, _timeout_s(ms_max), ms_typ / 1000.0)

    def erase_blocks(self, blocks: Sequence[tuple[EraseBlock, int]], tick: Tick) -> None:
        done = 0
        for block, address in blocks:
            try:
                self.bus.transfer(
                    [
                        WREN,
                        SpiOp(self._cmd(block.opcode, address)),
                        self._wait(block.ms_typ, block.ms_max),
                    ]
                )
            except BusTimeout as err:
                raise ChipError(
                    f"erase of the {block.size // 1024} KiB block at 0x{address:X} timed out:"
                    f" {err} (datasheet maximum {block.ms_max:g} ms)",
                    address,
                ) from None
            done += block.size
            tick(done)

    def erase_chip(self) -> None:
        chip = self.geometry.chip_erase
        if chip is None:
            raise ChipError("this part has no chip-erase command")
        try:
            self.bus.transfer(
                [WREN, SpiOp(bytes([chip.opcode])), self._wait(chip.ms_typ, chip.ms_max)]
            )
        except BusTimeout as err:
            raise ChipError(
                f"chip erase timed out: {err} (datasheet maximum {chip.ms_max:g} ms)"
            ) from None

    def program(self, writes: Sequence[tuple[int, bytes]], tick: Tick) -> None:
        geo = self.geometry
        wait = self._wait(geo.program_ms_typ, geo.program_ms_max)
        done = 0
        for first in range(0, len(writes), PAGES_PER_BATCH):
            batch = writes[first : first + PAGES_PER_BATCH]
            ops: list[SpiOp | WaitReady] = []
            for address, data in batch:
                ops += [WREN, SpiOp(self._cmd(0x02, address) + data), wait]
            try:
                self.bus.transfer(ops)
            except BusTimeout as err:
                raise ChipError(
                    f"page program in 0x{batch[0][0]:X}..0x{batch[-1][0] + len(batch[-1][1]):X}"
                    f" timed out: {err} (datasheet maximum {geo.program_ms_max:g} ms)",
                    batch[0][0],
                ) from None
            done += sum(len(d) for _, d in batch)
            tick(done)

    # -- protection -----------------------------------------------------------------

    def _status(self) -> int:
        return self.bus.transfer([SpiOp(b"\x05", 1)])[0][0]

    def _bpr(self) -> bytes:
        """SST26 Block-Protection Register (0x72); its first bytes cover the array."""
        return self.bus.transfer([SpiOp(b"\x72", BPR_BYTES)])[0]

    def protection(self) -> Protection:
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
        self.bus.transfer([WREN, SpiOp(bytes([0x01, value])), self._wait(5, 15)])

    def unprotect(self) -> None:
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
        status = self._status()
        self._write_status((status | self.bp_mask) & 0xFC)
        if self._status() & self.bp_mask != self.bp_mask:
            raise ChipError("block-protect bits did not stay set after writing the status register")
