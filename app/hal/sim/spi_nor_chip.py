"""Bus-level model of a SPI NOR flash, driven by its device DB entry.

Answers the opcodes a programmer uses: 9F (JEDEC ID), 5A (SFDP), 4B (unique ID),
05/35/15 (status), 06/04 (WEL), 01/31 (write status), 03/0B/13/0C (read), 02/12 (page
program: page wrap, 1->0 only), sector/block/chip erase from the DB table (and their
4-byte forms 21/5C/DC), B7/E9 (4-byte mode), 17/16 (bank register), 66/99 (reset).
Program and erase set BUSY for the DB's typical or maximum time on the site's clock.

Simplification: when any block-protect bit is set, the whole array is protected (real
parts protect a portion chosen by the BP/TB/SEC combination).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from app.devicedb.facts import FourByteMode, SpiNorFacts, Timing
from app.hal.sim.clock import SimClock
from app.hal.sim.sfdp import build_sfdp
from app.hal.sim.sparse_memory import SparseMemory

if TYPE_CHECKING:
    from app.devicedb.models import Device

BUSY, WEL = 0x01, 0x02
_FOUR_BYTE_ERASE = {0x20: 0x21, 0x52: 0x5C, 0xD8: 0xDC}


@dataclass
class ChipFaults:
    """Faults the chip itself exhibits (bus-level faults live in the bus)."""

    stuck_address: int | None = None
    stuck_mask: int = 0  # the bit that refuses to program, chosen on first use
    verify_address: int | None = None
    busy_forever: bool = False
    erase_fail_address: int | None = None


class SpiNorChip:
    def __init__(
        self,
        device: Device,
        clock: SimClock,
        *,
        jedec_override: bytes | None = None,
        faults: ChipFaults | None = None,
        protected: bool = False,
        unique_id: bytes = b"",
        sfdp: str | None = None,
    ) -> None:
        """``sfdp``: None for the DB's word, "ok" / "none" to force it, or a damage kind
        of app.hal.sim.sfdp (a part in the field whose table is cut short or lies)."""
        facts = device.facts_as(SpiNorFacts)
        self.clock = clock
        self.size = device.size_bytes
        self.page_size = facts.page_size
        self.erased = device.erased_value
        self.memory = SparseMemory(self.size, self.erased)
        self.id_bytes = (jedec_override or facts.jedec_id) + facts.extended_id
        #: parts without RDID answer RES (ABh) or REMS (90h) instead; RES on RDID parts
        #: gives the legacy device ID byte
        self.id_command = facts.id_command
        self.id_answer = jedec_override or facts.id_answer
        self.legacy_rdid = facts.legacy_rdid
        self.write_mode = facts.write_mode
        #: boot-sector parts: an erase command's blocks differ across the part
        self.layouts = {layout.opcode: layout.blocks() for layout in facts.erase_layout}
        self.status_write_enable = facts.protection.status_write_enable
        self.locked_at_power_up = facts.protection.locked_at_power_up
        self.erase_ops: dict[int, tuple[int, Timing]] = {
            op.opcode: (op.size, op.timing) for op in facts.block_erases if op.size is not None
        }
        chip = facts.chip_erase
        #: None: the part ignores 60h/C7h (M45PE; stacked dies erase die by die)
        self.chip_erase = chip.timing if chip is not None else None
        #: stacked dies (Micron): after a program or erase, the die takes no further
        #: program or erase until the flag status register (70h) has reported it ready
        self.stacked = facts.dies > 1
        self.pp = facts.page_program
        self.address_bytes_max = facts.address_bytes
        self.four_byte_mode = facts.four_byte_mode
        self.bp_mask = facts.protection.bp_mask
        self.global_unlock = facts.protection.global_unlock
        self.status_write = facts.protection.status_write
        has_sfdp = facts.sfdp if sfdp is None else sfdp != "none"
        self.sfdp = self._sfdp_table(facts, sfdp) if has_sfdp else b""
        uid = facts.unique_id
        self.uid_dummy = uid.dummy_bytes if uid else 0
        self.unique_id = unique_id[: uid.length] if uid else b""
        self.faults = faults or ChipFaults()
        self.protected_at_power = protected
        self.power_cycle()

    def _sfdp_table(self, facts: SpiNorFacts, sfdp: str | None) -> bytes:
        erases = [
            (op.opcode, op.size, op.timing.ms_typ, op.timing.ms_max)
            for op in facts.block_erases
            if op.size is not None and op.size < self.size // facts.dies  # not a die erase
        ]
        mode = facts.four_byte_mode
        entry = (
            {
                FourByteMode.B7: 0x02,  # WREN, then B7h
                FourByteMode.OPCODES: 0x20,
                FourByteMode.BANK_REGISTER: 0x08,
                FourByteMode.ALWAYS: 0x40,
            }.get(mode, 0)
            if mode is not None
            else 0
        )
        return build_sfdp(
            self.size,
            self.page_size,
            erases,
            self.address_bytes_max,
            page_program_ms=(self.pp.ms_typ, self.pp.ms_max),
            chip_erase_ms=(self.chip_erase.ms_typ, self.chip_erase.ms_max)
            if self.chip_erase
            else (0.0, 0.0),
            four_byte_entry=entry,
            damage=sfdp if sfdp not in (None, "ok") else None,
        )

    # -- power and state ------------------------------------------------------------

    def power_cycle(self) -> None:
        locked = self.protected_at_power or self.locked_at_power_up
        self.sr1 = self.bp_mask if locked else 0
        self.ewsr = False  # EWSR (50h) given: the next WRSR is accepted
        self.aai_address: int | None = None  # in an AAI word sequence: the next address
        self.bpr_locked = self.global_unlock  # SST26: every block write-protected at power-up
        self.sr2 = 0
        self.sr3 = 0
        self.bank = 0
        self.four_byte = self.four_byte_mode is FourByteMode.ALWAYS
        self.busy_until = 0.0
        self.flag_status_owed = False

    def _busy(self) -> bool:
        return self.clock.now() < self.busy_until

    def status1(self) -> int:
        return self.sr1 | (BUSY if self._busy() else 0)

    def ready_at(self) -> float:
        return self.busy_until

    def _start_busy(self, timing: Timing) -> None:
        self.flag_status_owed = self.stacked
        if self.faults.busy_forever:
            self.busy_until = float("inf")
            return
        self.busy_until = self.clock.now() + self.clock.timing.duration(
            timing.ms_typ, timing.ms_max
        )

    # -- the bus entry point --------------------------------------------------------

    def transaction(self, write: bytes, read_len: int) -> bytes:
        """One chip-select frame: the bytes clocked out on MISO after ``write``."""
        if not write:
            return bytes(read_len)
        op = write[0]
        args = write[1:]
        if self._busy() and op not in (0x05, 0x35, 0x15, 0x70, 0x66, 0x99):
            return b"\xff" * read_len
        if self.aai_address is not None and op not in (0xAD, 0x04, 0x05):
            return b"\xff" * read_len  # in AAI only AD, WRDI and RDSR are taken
        # the part's own erase table first: AT26DF041's 50h is a 2 KiB erase, not EWSR
        if op in self.erase_ops or op in _four_byte_erase_opcodes(self):
            return self._erase(op, args, read_len)
        handler = _HANDLERS.get(op)
        if handler is None:
            return b"\xff" * read_len
        return handler(self, args, read_len)

    # -- addressing -----------------------------------------------------------------

    def _address(self, args: bytes, force4: bool = False) -> tuple[int, bytes] | None:
        n = 4 if (force4 or self.four_byte) else 3
        if len(args) < n:
            return None
        addr = int.from_bytes(args[:n], "big")
        if n == 3 and self.four_byte_mode is FourByteMode.BANK_REGISTER:
            addr |= (self.bank & 0x7F) << 24
        return addr % self.size, args[n:]

    # -- commands -------------------------------------------------------------------

    def _rdid(self, args: bytes, n: int) -> bytes:
        if self.id_command != "rdid":
            return b"\xff" * n  # a part without RDID leaves MISO high
        return (self.id_bytes + bytes(max(0, n - len(self.id_bytes))))[:n]

    def _res(self, args: bytes, n: int) -> bytes:
        """RES (ABh): after 3 dummy bytes, the electronic signature, repeated."""
        if len(args) < 3:
            return bytes(n)  # release from deep power-down only
        if self.id_command == "res":
            answer = self.id_answer
        elif self.legacy_rdid is not None:
            answer = bytes([self.legacy_rdid])
        else:
            return b"\xff" * n
        return (answer * (n // len(answer) + 1))[:n]

    def _rems(self, args: bytes, n: int) -> bytes:
        """REMS (90h): after address 000000h, manufacturer and device ID, repeated."""
        if self.id_command != "rems" or len(args) < 3:
            return b"\xff" * n
        return (self.id_answer * (n // 2 + 1))[:n]

    def _rdsr3_or_atmel_rdid(self, args: bytes, n: int) -> bytes:
        """15h: status register 3 on most parts; on Atmel AT25F parts Read Product ID
        (manufacturer and device code)."""
        if self.id_command != "atmel_rdid":
            return self._rdsr3(args, n)
        return (self.id_answer + b"\xff" * n)[:n]

    def _ewsr(self, args: bytes, n: int) -> bytes:
        self.ewsr = True
        return bytes(n)

    def _rdsr1(self, args: bytes, n: int) -> bytes:
        return bytes([self.status1()]) * n

    def _rdsr2(self, args: bytes, n: int) -> bytes:
        return bytes([self.sr2]) * n

    def _rdsr3(self, args: bytes, n: int) -> bytes:
        return bytes([self.sr3]) * n

    def _wren(self, args: bytes, n: int) -> bytes:
        self.sr1 |= WEL
        return bytes(n)

    def _wrdi(self, args: bytes, n: int) -> bytes:
        self.sr1 &= ~WEL
        self.aai_address = None
        return bytes(n)

    def _wrsr(self, args: bytes, n: int) -> bytes:
        enabled = self.ewsr if self.status_write_enable == 0x50 else bool(self.sr1 & WEL)
        self.ewsr = False
        if enabled and args:
            self.sr1 = (args[0] & ~(BUSY | WEL)) & 0xFF
            if len(args) > 1:
                self.sr2 = args[1]
            self._start_busy(self.status_write)
        self.sr1 &= ~WEL
        return bytes(n)

    def _wrsr2(self, args: bytes, n: int) -> bytes:
        if self.sr1 & WEL and args:
            self.sr2 = args[0]
            self._start_busy(self.status_write)
        self.sr1 &= ~WEL
        return bytes(n)

    def _read_at(self, addr: int, n: int) -> bytes:
        if addr + n <= self.size:
            out = bytearray(self.memory[addr : addr + n])
        else:  # reads wrap at the end of the array
            out = bytearray()
            pos = addr
            while len(out) < n:
                take = min(n - len(out), self.size - pos)
                out += self.memory[pos : pos + take]
                pos = (pos + take) % self.size
        fa = self.faults.verify_address
        if fa is not None and (fa - addr) % self.size < n and self.memory[fa] != self.erased:
            out[(fa - addr) % self.size] ^= 0x10  # a weak cell once programmed
        return bytes(out)

    def _read(self, args: bytes, n: int, *, force4: bool = False, dummy: int = 0) -> bytes:
        parsed = self._address(args, force4)
        if parsed is None:
            return b"\xff" * n
        addr, rest = parsed
        if len(rest) < dummy:
            return b"\xff" * n
        self.clock.advance(0)
        data = self._read_at(addr, n)
        return data

    def _read3(self, args: bytes, n: int) -> bytes:
        return self._read(args, n)

    def _fast_read(self, args: bytes, n: int) -> bytes:
        return self._read(args, n, dummy=1)

    def _read4b(self, args: bytes, n: int) -> bytes:
        return self._read(args, n, force4=True)

    def _fast_read4b(self, args: bytes, n: int) -> bytes:
        return self._read(args, n, force4=True, dummy=1)

    def _write_allowed(self) -> bool:
        allowed = (
            bool(self.sr1 & WEL)
            and not (self.sr1 & self.bp_mask)
            and not self.bpr_locked
            and not self.flag_status_owed
        )
        self.sr1 &= ~WEL
        return allowed

    def _program(self, args: bytes, n: int, *, force4: bool = False) -> bytes:
        parsed = self._address(args, force4)
        if parsed is None or not self._write_allowed():
            return bytes(n)
        addr, data = parsed
        if self.write_mode != "page":  # byte program: 02h takes one byte
            self._and_into(addr, data[:1])
            self._start_busy(self.pp)
            return bytes(n)
        page = addr - addr % self.page_size
        offset = addr - page
        if len(data) > self.page_size:
            data = data[-self.page_size :]  # only the last page_size bytes are kept
        first = data[: self.page_size - offset]
        self._and_into(page + offset, first)
        if len(data) > len(first):  # the rest wraps to the start of the page
            self._and_into(page, data[len(first) :])
        self._start_busy(self.pp)
        return bytes(n)

    def _and_into(self, addr: int, data: bytes) -> None:
        """Program ``data`` at ``addr``: a NOR cell only goes from 1 to 0."""
        n = len(data)
        old = self.memory[addr : addr + n]
        new = int.from_bytes(old, "big") & int.from_bytes(data, "big")
        self.memory[addr : addr + n] = new.to_bytes(n, "big")
        stuck = self.faults.stuck_address
        if stuck is not None and addr <= stuck < addr + n:
            i = stuck - addr
            self.memory[stuck] = self._stuck(old[i], self.memory[stuck])

    def _stuck(self, old: int, new: int) -> int:
        cleared = old & ~new
        if not self.faults.stuck_mask and cleared:
            self.faults.stuck_mask = cleared & -cleared  # lowest bit asked to clear
        return new | (old & self.faults.stuck_mask)

    def _pp3(self, args: bytes, n: int) -> bytes:
        return self._program(args, n)

    def _pp4b(self, args: bytes, n: int) -> bytes:
        return self._program(args, n, force4=True)

    def _erase(self, op: int, args: bytes, n: int) -> bytes:
        four = {v: k for k, v in _FOUR_BYTE_ERASE.items()}
        force4 = op in four and op not in self.erase_ops
        base_op = four.get(op, op) if force4 else op
        size, timing = self.erase_ops[base_op]
        parsed = self._address(args, force4)
        if parsed is None or not self._write_allowed():
            return bytes(n)
        addr = parsed[0] - parsed[0] % size
        if base_op in self.layouts:  # the block of the layout that holds the address
            addr, size = next((a, n) for a, n in self.layouts[base_op] if a <= parsed[0] < a + n)
        self._erase_range(addr, size)
        self._start_busy(timing)
        return bytes(n)

    def _erase_range(self, addr: int, size: int) -> None:
        self.memory.erase(addr, addr + size)
        fa = self.faults.erase_fail_address
        if fa is not None and addr <= fa < addr + size:
            self.memory[fa] = 0x00

    def _chip_erase(self, args: bytes, n: int) -> bytes:
        if self.chip_erase is not None and self._write_allowed():
            self._erase_range(0, self.size)
            self._start_busy(self.chip_erase)
        return bytes(n)

    def _read_flag_status(self, args: bytes, n: int) -> bytes:
        """70h: bit 7 = program/erase controller ready (the inverse of WIP)."""
        if self._busy():
            return b"\x00" * n
        self.flag_status_owed = False
        return b"\x80" * n

    def _sfdp_read(self, args: bytes, n: int) -> bytes:
        if len(args) < 4 or not self.sfdp:
            return b"\xff" * n
        addr = int.from_bytes(args[:3], "big")
        table = self.sfdp + b"\xff" * max(0, addr + n - len(self.sfdp))
        return table[addr : addr + n]

    def _unique_id(self, args: bytes, n: int) -> bytes:
        if not self.unique_id or len(args) < self.uid_dummy:
            return b"\xff" * n
        return (self.unique_id + b"\xff" * n)[:n]

    def _enter4(self, args: bytes, n: int) -> bytes:
        if self.address_bytes_max == 4:
            self.four_byte = True
        return bytes(n)

    def _exit4(self, args: bytes, n: int) -> bytes:
        if self.four_byte_mode is not FourByteMode.ALWAYS:
            self.four_byte = False
        return bytes(n)

    def _write_bank(self, args: bytes, n: int) -> bytes:
        if args and self.four_byte_mode is FourByteMode.BANK_REGISTER:
            self.bank = args[0]
            self.four_byte = bool(args[0] & 0x80)
        return bytes(n)

    def _read_bank(self, args: bytes, n: int) -> bytes:
        return bytes([self.bank]) * n

    def _reset(self, args: bytes, n: int) -> bytes:
        if not self.faults.busy_forever:
            self.busy_until = 0.0
        self.sr1 &= ~WEL
        return bytes(n)

    def _read_bpr(self, args: bytes, n: int) -> bytes:
        if not self.global_unlock:
            return b"\xff" * n
        return (b"\xff" if self.bpr_locked else b"\x00") * n

    def _global_unlock(self, args: bytes, n: int) -> bytes:
        if self.global_unlock and self.sr1 & WEL:
            self.bpr_locked = False
        self.sr1 &= ~WEL
        return bytes(n)

    def _aai_word(self, args: bytes, n: int) -> bytes:
        """SST AAI word program (ADh): the first with an even address and two bytes
        (after WREN), then two bytes each; WEL stays set until WRDI ends it."""
        if self.write_mode != "aai-word":
            return b"\xff" * n
        if self.aai_address is None:
            parsed = self._address(args)
            if parsed is None or len(parsed[1]) != 2 or parsed[0] % 2:
                return bytes(n)
            if not (self.sr1 & WEL) or self.sr1 & self.bp_mask:
                self.sr1 &= ~WEL
                return bytes(n)
            self.aai_address, data = parsed
        elif len(args) == 2:
            data = args
        else:
            return bytes(n)
        self._and_into(self.aai_address % self.size, data)
        self.aai_address += 2
        self._start_busy(self.pp)
        return bytes(n)

    def _noop(self, args: bytes, n: int) -> bytes:
        return bytes(n)


def _four_byte_erase_opcodes(chip: SpiNorChip) -> set[int]:
    if chip.address_bytes_max != 4:
        return set()
    return {_FOUR_BYTE_ERASE[op] for op in chip.erase_ops if op in _FOUR_BYTE_ERASE}


_HANDLERS = {
    0x9F: SpiNorChip._rdid,
    0x05: SpiNorChip._rdsr1,
    0x35: SpiNorChip._rdsr2,
    0x15: SpiNorChip._rdsr3_or_atmel_rdid,
    0x06: SpiNorChip._wren,
    0x04: SpiNorChip._wrdi,
    0x01: SpiNorChip._wrsr,
    0x31: SpiNorChip._wrsr2,
    0x03: SpiNorChip._read3,
    0x0B: SpiNorChip._fast_read,
    0x13: SpiNorChip._read4b,
    0x0C: SpiNorChip._fast_read4b,
    0x02: SpiNorChip._pp3,
    0x12: SpiNorChip._pp4b,
    0x60: SpiNorChip._chip_erase,
    0xC7: SpiNorChip._chip_erase,
    0x62: SpiNorChip._chip_erase,
    0x5A: SpiNorChip._sfdp_read,
    0x4B: SpiNorChip._unique_id,
    0xB7: SpiNorChip._enter4,
    0xE9: SpiNorChip._exit4,
    0x17: SpiNorChip._write_bank,
    0x16: SpiNorChip._read_bank,
    0x66: SpiNorChip._noop,
    0x99: SpiNorChip._reset,
    0xAB: SpiNorChip._res,
    0x90: SpiNorChip._rems,
    0x50: SpiNorChip._ewsr,
    0xAD: SpiNorChip._aai_word,
    0x72: SpiNorChip._read_bpr,
    0x70: SpiNorChip._read_flag_status,
    0x98: SpiNorChip._global_unlock,
}
