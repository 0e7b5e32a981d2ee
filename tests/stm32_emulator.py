"""An STM32 ROM bootloader (ST AN3155, USART) on a real pseudo-terminal, for tests.

The target side of a pty pair answers the bootloader protocol in a thread; the host
side (``emulator.port``, e.g. /dev/pts/3) is what Socketeer -- or stm32flash -- opens.
The part is a :class:`Part`: plain numbers (product ID, flash pages, RAM, bootloader
version) taken from ST's documents (AN2606, AN3155, the reference manuals), not from the
code under test -- this module imports nothing of Socketeer's.

Timing: ``timing="instant"`` (default) answers at once; ``timing="typical"`` holds each
ACK for the flash time the part's datasheet gives as typical (page/sector erase, word
program), as a real part does. A pty moves bytes at once whatever its baud rate;
``wire=True`` charges every byte its time on a real wire at the rate the host set (10
bits: start, 8 data, stop; the protocol is lock-step, so each direction's bytes are paid
for before the next answer).

What it models: the 0x7F autobaud sync (and NACK for a 0x7F after sync), Get / Get
Version / Get ID, Read Memory, Write Memory (word granularity; writing a programmed
word with different data fails like the flash controller does), Erase (0x43, 1-byte
page numbers, 0xFF global) or Extended Erase (0x44, 2-byte page numbers, 0xFFFF mass /
0xFFFE bank 1 / 0xFFFD bank 2), Go, Write Protect / Unprotect, Readout Protect /
Unprotect (with the resets that follow them) and readout protection refusing memory
access. NACK on bad complements, checksums, addresses and lengths.

What a pty cannot carry: parity bits and modem lines. Linux even clears PARENB on a pty
(and refuses a termios update that asks only for it again), so tests run the link with
``parity=none``; stm32flash sets 8E1 on its side, which the pty ignores. The host's baud
rate does reach the pty settings: ``max_baud`` refuses to sync above a rate (to test
the fallback). Resets are simulated with :meth:`reset`; :meth:`drop` closes the target
side, so the host sees an I/O error exactly as when a USB adapter is unplugged.
"""

from __future__ import annotations

import contextlib
import os
import select
import termios
import threading
import tty
from dataclasses import dataclass
from functools import reduce
from operator import xor
from typing import Any

ACK, NACK = 0x79, 0x1F
#: AN3155 Get: the commands of bootloader v2.x/v3.x on the USART (one erase command)
_COMMANDS = (0x00, 0x01, 0x02, 0x11, 0x21, 0x31, 0x63, 0x73, 0x82, 0x92)
_SPEEDS = {
    getattr(termios, f"B{rate}"): rate
    for rate in (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600)
    if hasattr(termios, f"B{rate}")
}


class _Closed(Exception):
    """The emulator is stopping (closed or dropped)."""


class _Reset(Exception):
    """NRST pulsed: abandon the command in progress."""


def _xor(data: bytes | bytearray) -> int:
    return reduce(xor, data, 0)


@dataclass(frozen=True)
class FlashTiming:
    """Typical flash times from a datasheet, in seconds."""

    erase_s: tuple[tuple[int, float], ...]  # (page/sector size, erase time)
    mass_erase_s: float
    program_unit: int  # bytes programmed at once (F1: a half-word)
    program_s: float  # per unit

    def erase(self, size: int) -> float:
        return dict(self.erase_s)[size]


@dataclass(frozen=True)
class Part:
    """An STM32 as ST documents it, in plain numbers."""

    name: str
    pid: int  # AN2606 / reference manual DBGMCU_IDCODE DEV_ID
    pages: tuple[tuple[int, int], ...]  # (count, size) runs from the flash base
    ram_bytes: int
    ram_reserved: int  # RAM at the start the bootloader uses itself (AN2606)
    version: int  # bootloader version (AN2606)
    extended_erase: bool  # Extended Erase (0x44) instead of Erase (0x43)
    erased: int = 0xFF
    flash_base: int = 0x0800_0000
    ram_base: int = 0x2000_0000
    typical: FlashTiming | None = None

    @property
    def flash_bytes(self) -> int:
        return sum(count * size for count, size in self.pages)

    @property
    def commands(self) -> tuple[int, ...]:
        return tuple(sorted((*_COMMANDS, 0x44 if self.extended_erase else 0x43)))


#: STM32F101/F102/F103 medium density (RM0008, AN2606; datasheet DS5319: page erase
#: t_ERASE 20 ms, mass erase t_ME 20 ms, half-word program t_prog 52.5 us, typical)
STM32F10X_MD = Part(
    "STM32F10xxx medium density",
    0x410,
    ((128, 1024),),
    ram_bytes=20 * 1024,
    ram_reserved=0x200,
    version=0x22,
    extended_erase=False,
    typical=FlashTiming(((1024, 0.020),), 0.020, 2, 52.5e-6),
)
#: STM32F405/407/415/417 (RM0090, AN2606; datasheet DS8626 at x32 parallelism: sector
#: erase 16 KiB 400 ms, 64 KiB 1100 ms, 128 KiB 2 s, mass erase 16 s, word 16 us)
STM32F40X = Part(
    "STM32F40xxx/41xxx",
    0x413,
    ((4, 16 * 1024), (1, 64 * 1024), (7, 128 * 1024)),
    ram_bytes=128 * 1024,
    ram_reserved=0x3000,
    version=0x31,
    extended_erase=True,
    typical=FlashTiming(((16 * 1024, 0.4), (64 * 1024, 1.1), (128 * 1024, 2.0)), 16.0, 4, 16e-6),
)
#: STM32F030/F031/F038 (RM0360, AN2606): 32 x 1 KiB pages
STM32F03X = Part(
    "STM32F03xx4/6",
    0x444,
    ((32, 1024),),
    ram_bytes=4 * 1024,
    ram_reserved=0x800,
    version=0x31,
    extended_erase=True,
)
#: STM32L05x/L06x (RM0367, AN2606): 512 x 128-byte pages, flash erases to 0x00
STM32L05X = Part(
    "STM32L05xxx/06xxx",
    0x417,
    ((512, 128),),
    ram_bytes=8 * 1024,
    ram_reserved=0x1000,
    version=0x31,
    extended_erase=True,
    erased=0x00,
)


@dataclass
class Region:
    start: int
    data: bytearray
    writable_from: int = 0  # RAM below this is the bootloader's

    @property
    def end(self) -> int:
        return self.start + len(self.data)

    def holds(self, address: int, length: int) -> bool:
        return self.start <= address and address + length <= self.end


class Stm32Emulator:
    """The target end of a pty pair, answering AN3155 frames as ``part`` would."""

    def __init__(
        self,
        part: Part,
        *,
        pid: int | None = None,
        readout_protected: bool = False,
        max_baud: int | None = None,
        timing: str = "instant",
        wire: bool = False,
    ) -> None:
        if timing not in ("instant", "typical") or (timing == "typical" and not part.typical):
            raise ValueError(f"timing {timing!r}: 'instant', or 'typical' for a part with one")
        self.part = part
        self.timing = part.typical if timing == "typical" else None
        self.pid = pid if pid is not None else part.pid
        self.version = part.version
        self.commands = list(part.commands)
        self.erased = part.erased
        self.flash = Region(part.flash_base, bytearray([self.erased]) * part.flash_bytes)
        self.ram = Region(
            part.ram_base, bytearray(part.ram_bytes), part.ram_base + part.ram_reserved
        )
        #: (offset, size), numbered as erase counts them
        self.pages: list[tuple[int, int]] = []
        offset = 0
        for count, size in part.pages:
            for _ in range(count):
                self.pages.append((offset, size))
                offset += size
        #: seconds the flash was busy (erase and program, typical timing)
        self.busy_s = 0.0
        self.wire = wire
        #: seconds the bytes took on the wire (with ``wire``)
        self.wire_s = 0.0
        self._wire_bytes = 0  # received since the last answer
        self.readout_protected = readout_protected
        self.write_protected: set[int] = set()
        self.max_baud = max_baud
        #: after this many commands the target side closes (a mid-cycle unplug)
        self.drop_after_commands: int | None = None
        self.synced = False
        self.running_app = False
        self.commands_seen = 0
        self.log: list[tuple[str, Any]] = []  # ("erase", [pages]), ("mass-erase", None), ...
        self.resets = 0
        self._buffer = bytearray()
        self._reset_done = threading.Event()
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.port = os.ttyname(self._slave)
        self._wake_r, self._wake_w = os.pipe()
        self._stop = False
        self._master_open = True
        self._thread = threading.Thread(target=self._serve, name="stm32-emulator", daemon=True)
        self._thread.start()

    # -- control from the test ------------------------------------------------------

    def reset(self) -> None:
        """An NRST pulse: the bootloader starts over and waits for 0x7F."""
        self._reset_done.clear()
        os.write(self._wake_w, b"r")
        if not self._reset_done.wait(2):
            raise RuntimeError("the emulator thread did not take the reset")

    def _restart(self) -> None:
        self.synced = False
        self.running_app = False
        self.resets += 1

    def drop(self) -> None:
        """Unplug: close the target side; the host's next read or write fails."""
        self._stop = True
        os.write(self._wake_w, b"x")
        self._thread.join(2)
        self._close_master()

    def close(self) -> None:
        self.drop()
        for fd in (self._slave, self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    def __enter__(self) -> Stm32Emulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _close_master(self) -> None:
        if self._master_open:
            self._master_open = False
            with contextlib.suppress(OSError):
                os.close(self._master)

    def flash_bytes(self, address: int, length: int) -> bytes:
        off = address - self.flash.start
        return bytes(self.flash.data[off : off + length])

    def load_flash(self, address: int, data: bytes) -> None:
        off = address - self.flash.start
        self.flash.data[off : off + len(data)] = data

    def host_baud(self) -> int | None:
        """The baud rate the host configured on its side of the pty."""
        return _SPEEDS.get(termios.tcgetattr(self._master)[5])

    # -- byte I/O -------------------------------------------------------------------

    def _recv(self, n: int) -> bytes:
        while len(self._buffer) < n:
            if self._stop:
                raise _Closed()
            ready, _, _ = select.select([self._master, self._wake_r], [], [])
            if self._wake_r in ready:
                if os.read(self._wake_r, 1) == b"r" and not self._stop:
                    raise _Reset()
                raise _Closed()
            try:
                chunk = os.read(self._master, 4096)
            except OSError:  # no host has the port open right now
                chunk = b""
            if not chunk:
                select.select([self._wake_r], [], [], 0.01)
                continue
            self._buffer += chunk
        self._wire_bytes += n
        out = bytes(self._buffer[:n])
        del self._buffer[:n]
        return out

    def _busy(self, seconds: float) -> None:
        """The flash controller at work: the bootloader answers nothing meanwhile."""
        self.busy_s += seconds
        self._wait(seconds)

    def _wait(self, seconds: float) -> None:
        """Pass ``seconds``; a reset or a close still takes effect at once."""
        ready, _, _ = select.select([self._wake_r], [], [], seconds)
        if ready:
            if os.read(self._wake_r, 1) == b"r" and not self._stop:
                raise _Reset()
            raise _Closed()

    def _send(self, data: bytes | int) -> None:
        if self.wire:
            sent = 1 if isinstance(data, int) else len(data)
            seconds = (self._wire_bytes + sent) * 10 / (self.host_baud() or 115200)
            self._wire_bytes = 0
            self.wire_s += seconds
            self._wait(seconds)
        os.write(self._master, bytes([data]) if isinstance(data, int) else data)

    # -- protocol -------------------------------------------------------------------

    def _serve(self) -> None:
        try:
            while True:
                try:
                    first = self._recv(1)[0]
                    if self.running_app:
                        continue  # the application does not speak AN3155
                    if not self.synced:
                        self._autobaud(first)
                        continue
                    second = self._recv(1)[0]
                    self._command(first, second)
                except _Reset:
                    self._buffer.clear()
                    self._wire_bytes = 0
                    self._restart()
                    self._reset_done.set()
        except _Closed:
            pass
        except OSError:  # the host side went away for good
            pass
        finally:
            if self._stop:
                self._close_master()

    def _autobaud(self, byte: int) -> None:
        if byte != 0x7F:
            return  # not the sync byte: the autobaud routine ignores it
        baud = self.host_baud()
        if self.max_baud is not None and baud is not None and baud > self.max_baud:
            return  # at this speed the target cannot lock on
        self.synced = True
        self._send(ACK)

    def _command(self, cmd: int, check: int) -> None:
        if self.drop_after_commands is not None and self.commands_seen >= self.drop_after_commands:
            self._stop = True
            raise _Closed()
        self.commands_seen += 1
        if cmd ^ check != 0xFF or cmd not in self.commands:
            self._send(NACK)
            return
        handler = {
            0x00: self._get,
            0x01: self._get_version,
            0x02: self._get_id,
            0x11: self._read_memory,
            0x21: self._go,
            0x31: self._write_memory,
            0x43: self._erase,
            0x44: self._extended_erase,
            0x63: self._write_protect,
            0x73: self._write_unprotect,
            0x82: self._readout_protect,
            0x92: self._readout_unprotect,
        }.get(cmd)
        if handler is None:
            self._send(NACK)
            return
        handler()

    def _refuse_if_protected(self) -> bool:
        if self.readout_protected:
            self._send(NACK)
            return True
        return False

    def _recv_address(self) -> int | None:
        frame = self._recv(5)
        if _xor(frame[:4]) != frame[4]:
            self._send(NACK)
            return None
        return int.from_bytes(frame[:4], "big")

    def _region(self, address: int, length: int) -> Region | None:
        for region in (self.flash, self.ram):
            if region.holds(address, length):
                return region
        return None

    def _get(self) -> None:
        self._send(bytes([ACK, len(self.commands), self.version, *self.commands, ACK]))

    def _get_version(self) -> None:
        self._send(bytes([ACK, self.version, 0x00, 0x00, ACK]))

    def _get_id(self) -> None:
        self._send(bytes([ACK, 0x01, self.pid >> 8, self.pid & 0xFF, ACK]))

    def _read_memory(self) -> None:
        if self._refuse_if_protected():
            return
        self._send(ACK)
        address = self._recv_address()
        if address is None:
            return
        if self._region(address, 1) is None:
            self._send(NACK)
            return
        self._send(ACK)
        n, check = self._recv(2)
        region = self._region(address, n + 1)
        if n ^ check != 0xFF or region is None:
            self._send(NACK)
            return
        off = address - region.start
        self._send(bytes([ACK]) + bytes(region.data[off : off + n + 1]))
        self.log.append(("read", (address, n + 1)))

    def _go(self) -> None:
        if self._refuse_if_protected():
            return
        self._send(ACK)
        address = self._recv_address()
        if address is None:
            return
        if self._region(address, 4) is None:
            self._send(NACK)
            return
        self._send(ACK)
        self.log.append(("go", address))
        self.running_app = True

    def _write_memory(self) -> None:
        if self._refuse_if_protected():
            return
        self._send(ACK)
        address = self._recv_address()
        if address is None:
            return
        if self._region(address, 1) is None or address % 4:
            self._send(NACK)
            return
        self._send(ACK)
        n = self._recv(1)[0]
        data = self._recv(n + 1)
        check = self._recv(1)[0]
        region = self._region(address, n + 1)
        if check != _xor(bytes([n]) + data) or region is None or (n + 1) % 4:
            self._send(NACK)
            return
        off = address - region.start
        if region is self.ram:
            if address < region.writable_from:
                self._send(NACK)
                return
            region.data[off : off + n + 1] = data
            self._send(ACK)
            return
        if self._write_protected_range(off, n + 1):
            self._send(NACK)
            return
        blank = bytes([self.erased]) * 4
        for i in range(0, n + 1, 4):
            have = bytes(region.data[off + i : off + i + 4])
            want = data[i : i + 4]
            if have not in (blank, want) and want != blank:
                self._send(NACK)  # programming a word that is not erased: PGERR
                return
        for i in range(0, n + 1, 4):
            if data[i : i + 4] != blank:
                region.data[off + i : off + i + 4] = data[i : i + 4]
        if self.timing:
            self._busy((n + 1) // self.timing.program_unit * self.timing.program_s)
        self.log.append(("write", (address, n + 1)))
        self._send(ACK)

    def _write_protected_range(self, off: int, length: int) -> bool:
        return any(
            start < off + length and start + size > off
            for number, (start, size) in enumerate(self.pages)
            if number in self.write_protected
        )

    def _erase_pages(self, numbers: list[int]) -> bool:
        if any(n >= len(self.pages) for n in numbers) or any(
            n in self.write_protected for n in numbers
        ):
            return False
        for n in numbers:
            start, size = self.pages[n]
            self.flash.data[start : start + size] = bytes([self.erased]) * size
            if self.timing:
                self._busy(self.timing.erase(size))
        self.log.append(("erase", list(numbers)))
        return True

    def _mass_erase(self, what: str = "mass-erase") -> None:
        self.flash.data[:] = bytes([self.erased]) * len(self.flash.data)
        if self.timing:
            self._busy(self.timing.mass_erase_s)
        self.log.append((what, None))

    def _erase(self) -> None:
        if self._refuse_if_protected():
            return
        self._send(ACK)
        n = self._recv(1)[0]
        if n == 0xFF:
            if self._recv(1)[0] != 0x00:
                self._send(NACK)
                return
            self._mass_erase("global-erase")
            self._send(ACK)
            return
        pages = self._recv(n + 1)
        check = self._recv(1)[0]
        if check != _xor(bytes([n]) + pages):
            self._send(NACK)
            return
        self._send(ACK if self._erase_pages(list(pages)) else NACK)

    def _extended_erase(self) -> None:
        if self._refuse_if_protected():
            return
        self._send(ACK)
        head = self._recv(2)
        n = int.from_bytes(head, "big")
        if n >= 0xFFF0:
            check = self._recv(1)[0]
            if check != _xor(head) or n not in (0xFFFF, 0xFFFE, 0xFFFD):
                self._send(NACK)
                return
            if n == 0xFFFF:
                self._mass_erase()
            else:
                half = len(self.pages) // 2
                bank = range(half) if n == 0xFFFE else range(half, len(self.pages))
                self._erase_pages(list(bank))
            self._send(ACK)
            return
        body = self._recv(2 * (n + 1))
        check = self._recv(1)[0]
        if check != _xor(head + body):
            self._send(NACK)
            return
        numbers = [int.from_bytes(body[i : i + 2], "big") for i in range(0, len(body), 2)]
        self._send(ACK if self._erase_pages(numbers) else NACK)

    def _write_protect(self) -> None:
        if self._refuse_if_protected():
            return
        self._send(ACK)
        n = self._recv(1)[0]
        sectors = self._recv(n + 1)
        check = self._recv(1)[0]
        if check != _xor(bytes([n]) + sectors):
            self._send(NACK)
            return
        self.write_protected.update(sectors)
        self._send(ACK)
        self._restart()

    def _write_unprotect(self) -> None:
        if self._refuse_if_protected():
            return
        self.write_protected.clear()
        self._send(bytes([ACK, ACK]))
        self._restart()

    def _readout_protect(self) -> None:
        if self._refuse_if_protected():
            return
        self.readout_protected = True
        self.log.append(("readout-protect", None))
        self._send(bytes([ACK, ACK]))
        self._restart()

    def _readout_unprotect(self) -> None:
        self._send(ACK)
        self._mass_erase("readout-unprotect")
        self.readout_protected = False
        self._send(ACK)
        self._restart()
