"""A serprog programmer emulated on a pseudo-terminal, for tests without hardware.

The emulator answers flashrom's serial flasher protocol (interface version 1) on the
master side of a pty; a host (Socketeer's serprog backend, or the real ``flashrom``
binary) opens the slave path like a USB CDC port. SPI operations go to the simulator's
bus-level SPI NOR model (app.hal.sim.spi_nor_chip.SpiNorChip).

Like a real board it has a serial buffer (Q_SERBUF) and optional maximum write/read
lengths. It records what a test needs to judge the host: commands seen, the largest
backlog of unanswered bytes, and *overruns* (more than one command queued beyond the
serial buffer). ``unplug``/``plug`` simulate a USB cable pulled and put back (the pty
goes away; a stable symlink, like /dev/serial/by-id, points to the new one), ``mute``
a programmer that hangs, ``drop_after_spiops`` an unplug in the middle of a job.
"""

from __future__ import annotations

import contextlib
import functools
import os
import select
import threading
import tty
from collections import Counter
from enum import IntEnum
from pathlib import Path

from app.devicedb import Device
from app.hal.sim.clock import SimClock, Timing
from app.hal.sim.spi_nor_chip import SpiNorChip

# The protocol as flashrom's Documentation/serprog-protocol.txt (interface version 1)
# defines it, written from that document, not from the backend under test.
ACK = 0x06
NAK = 0x15
BUS_SPI = 0x08  # Q_BUSTYPE / S_BUSTYPE bits: parallel 0x01, LPC 0x02, FWH 0x04, SPI 0x08


class Cmd(IntEnum):
    NOP = 0x00  # none -> ACK
    Q_IFACE = 0x01  # -> ACK + 16-bit interface version
    Q_CMDMAP = 0x02  # -> ACK + 32-byte bitmap of supported commands
    Q_PGMNAME = 0x03  # -> ACK + 16-byte name
    Q_SERBUF = 0x04  # -> ACK + 16-bit serial buffer size
    Q_BUSTYPE = 0x05  # -> ACK + 8-bit bus types
    Q_CHIPSIZE = 0x06
    Q_OPBUF = 0x07
    Q_WRNMAXLEN = 0x08  # -> ACK + 24-bit maximum write-n length
    R_BYTE = 0x09
    R_NBYTES = 0x0A
    O_INIT = 0x0B
    O_WRITEB = 0x0C
    O_WRITEN = 0x0D
    O_DELAY = 0x0E
    O_EXEC = 0x0F
    SYNCNOP = 0x10  # -> NAK + ACK
    Q_RDNMAXLEN = 0x11  # -> ACK + 24-bit maximum read-n length
    S_BUSTYPE = 0x12  # 8-bit bus types -> ACK / NAK
    O_SPIOP = 0x13  # 24-bit slen, 24-bit rlen, slen bytes -> ACK + rlen bytes / NAK
    S_SPI_FREQ = 0x14  # 32-bit Hz -> ACK + 32-bit Hz set / NAK
    S_PIN_STATE = 0x15  # 8-bit 0 = drivers off, else on -> ACK / NAK


_PARAMS = {Cmd.S_BUSTYPE: 1, Cmd.S_PIN_STATE: 1, Cmd.S_SPI_FREQ: 4}


@functools.cache
def _device(device_id: str) -> Device:
    from app.devicedb import load_database

    return load_database(use_overlay=False).get(device_id)


def make_chip(device_id: str = "winbond.w25q128jv", timing: str = "instant") -> SpiNorChip:
    """A blank SPI NOR model of a DB device; ``timing`` is the simulator's chip timing
    (``instant``, ``typ``, ``max`` or ``scale:F`` of typical), busy in real time."""
    return SpiNorChip(_device(device_id), SimClock(Timing.parse(timing)))


class SerprogEmulator:
    """A serprog board fronting ``chip``. ``max_write``/``max_read``: None = the query is
    not supported (no limit), 0 = reported as 2^24, else the reported limit."""

    def __init__(
        self,
        chip: SpiNorChip,
        *,
        serbuf: int = 0xFFFF,
        max_write: int | None = None,
        max_read: int | None = None,
        name: str = "socketeer-emu",
        link: Path | None = None,
        max_spi_hz: int = 48_000_000,
        drop_after_spiops: int | None = None,
    ) -> None:
        self.chip = chip
        self.serbuf = serbuf
        self.max_write = max_write
        self.max_read = max_read
        self.name = name
        self.link = link
        self.max_spi_hz = max_spi_hz
        self.drop_after_spiops = drop_after_spiops
        supported = {
            Cmd.NOP,
            Cmd.Q_IFACE,
            Cmd.Q_CMDMAP,
            Cmd.Q_PGMNAME,
            Cmd.Q_SERBUF,
            Cmd.Q_BUSTYPE,
            Cmd.SYNCNOP,
            Cmd.S_BUSTYPE,
            Cmd.O_SPIOP,
            Cmd.S_SPI_FREQ,
            Cmd.S_PIN_STATE,
        }
        if max_write is not None:
            supported.add(Cmd.Q_WRNMAXLEN)
        if max_read is not None:
            supported.add(Cmd.Q_RDNMAXLEN)
        self.supported = frozenset(int(c) for c in supported)
        # What the host did.
        self.commands: Counter[int] = Counter()
        self.opcodes: Counter[int] = Counter()  # first byte of each O_SPIOP
        self.spiops = 0
        self.max_backlog = 0
        self.max_batch = 0  # most commands waiting at once
        self.overruns = 0
        self.pin_states: list[bool] = []
        self.spi_hz = max_spi_hz
        self.pins_enabled = True
        self.muted = False
        # The pty.
        self._master: int | None = None
        self._slave: int | None = None
        self.slave_path = ""
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    # -- plugging -------------------------------------------------------------------

    @property
    def path(self) -> str:
        return str(self.link) if self.link is not None else self.slave_path

    @property
    def plugged(self) -> bool:
        return self._master is not None

    def plug(self) -> None:
        """Create the pty (a fresh one each time, as USB re-enumeration does) and serve."""
        if self.plugged:
            return
        master, slave = os.openpty()
        tty.setraw(slave)  # the emulator keeps the slave open so the pty stays configured
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        self.slave_path = os.ttyname(slave)
        if self.link is not None:
            tmp = self.link.with_name(self.link.name + ".new")
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            tmp.symlink_to(self.slave_path)
            tmp.replace(self.link)
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, name="serprog-emu", daemon=True)
        self._thread.start()

    start = plug

    def unplug(self) -> None:
        """Pull the cable: stop answering, close the pty, remove the stable link."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self._close_pty()

    stop = unplug

    def mute(self, muted: bool = True) -> None:
        """A hung programmer: the port stays, every byte in is ignored."""
        self.muted = muted

    def _close_pty(self) -> None:
        # The state and the link go first: the host sees the drop as soon as the master
        # closes, and a plug() it makes then must not find this pty still "plugged".
        fds, self._master, self._slave = (self._master, self._slave), None, None
        if self.link is not None:
            with contextlib.suppress(FileNotFoundError):
                self.link.unlink()
        for fd in fds:
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)

    def __enter__(self) -> SerprogEmulator:
        self.plug()
        return self

    def __exit__(self, *exc: object) -> None:
        self.unplug()

    # -- serving --------------------------------------------------------------------

    def _serve(self) -> None:
        master = self._master
        assert master is not None
        pending = bytearray()
        while not self._stop.is_set():
            ready, _, _ = select.select([master], [], [], 0.05)
            if not ready:
                continue
            try:
                data = os.read(master, 65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                return
            if self.muted:
                pending.clear()
                continue
            pending += data
            self._account(pending)
            replies = bytearray()  # the answers to one read go out in one write
            while True:
                size = self._length(pending)
                if size is None or len(pending) < size:
                    break
                frame = bytes(pending[:size])
                del pending[:size]
                reply = self._execute(frame)
                if reply is None:  # dropped off the bus mid-command
                    self._send(master, bytes(replies))
                    self._close_pty()
                    return
                replies += reply
            if replies and not self._send(master, bytes(replies)):
                return

    def _account(self, pending: bytearray) -> None:
        """Backlog bookkeeping: bytes received whose commands are not answered yet."""
        self.max_backlog = max(self.max_backlog, len(pending))
        count, offset = 0, 0
        first = None
        while offset < len(pending):
            size = self._length(pending[offset:])
            count += 1
            if first is None:
                first = size
            if size is None:
                break
            offset += size
        self.max_batch = max(self.max_batch, count)
        # One command larger than the buffer is streamed; anything more is an overrun.
        if len(pending) > self.serbuf and first is not None and len(pending) > first:
            self.overruns += 1

    def _length(self, data: bytes | bytearray) -> int | None:
        """The whole command's length, or None while its header is incomplete."""
        if not data:
            return None
        cmd = data[0]
        if cmd not in self.supported:
            return 1  # NAKed at once; its parameters (if any) read as commands
        if cmd == Cmd.O_SPIOP:
            if len(data) < 7:
                return None
            return 7 + int.from_bytes(data[1:4], "little")
        return 1 + _PARAMS.get(Cmd(cmd), 0)

    def _send(self, master: int, data: bytes) -> bool:
        view = memoryview(data)
        while view:
            if self._stop.is_set():
                return False
            try:
                sent = os.write(master, view)
            except BlockingIOError:
                select.select([], [master], [], 0.05)
                continue
            except OSError:
                return False
            view = view[sent:]
        return True

    def _execute(self, frame: bytes) -> bytes | None:
        cmd = frame[0]
        self.commands[cmd] += 1
        if cmd not in self.supported:
            return bytes([NAK])
        args = frame[1:]
        if cmd == Cmd.O_SPIOP:
            return self._spiop(args)
        if cmd == Cmd.NOP:
            return bytes([ACK])
        if cmd == Cmd.SYNCNOP:
            return bytes([NAK, ACK])
        if cmd == Cmd.Q_IFACE:
            return bytes([ACK, 1, 0])
        if cmd == Cmd.Q_CMDMAP:
            bitmap = sum(1 << c for c in self.supported).to_bytes(32, "little")
            return bytes([ACK]) + bitmap
        if cmd == Cmd.Q_PGMNAME:
            return bytes([ACK]) + self.name.encode()[:16].ljust(16, b"\0")
        if cmd == Cmd.Q_SERBUF:
            return bytes([ACK]) + self.serbuf.to_bytes(2, "little")
        if cmd == Cmd.Q_BUSTYPE:
            return bytes([ACK, BUS_SPI])
        if cmd == Cmd.Q_WRNMAXLEN:
            return bytes([ACK]) + (self.max_write or 0).to_bytes(3, "little")
        if cmd == Cmd.Q_RDNMAXLEN:
            return bytes([ACK]) + (self.max_read or 0).to_bytes(3, "little")
        if cmd == Cmd.S_BUSTYPE:
            ok = args[0] != 0 and not args[0] & ~BUS_SPI
            return bytes([ACK if ok else NAK])
        if cmd == Cmd.S_PIN_STATE:
            self.pins_enabled = bool(args[0])
            self.pin_states.append(self.pins_enabled)
            return bytes([ACK])
        if cmd == Cmd.S_SPI_FREQ:
            return self._set_freq(int.from_bytes(args[:4], "little"))
        return bytes([NAK])

    def _set_freq(self, requested: int) -> bytes:
        if requested == 0:
            return bytes([NAK])
        steps = [self.max_spi_hz >> k for k in range(8)]  # a prescaler: max / 2^k
        fitting = [f for f in steps if f <= requested]
        self.spi_hz = fitting[0] if fitting else steps[-1]
        return bytes([ACK]) + self.spi_hz.to_bytes(4, "little")

    def _spiop(self, args: bytes) -> bytes | None:
        slen = int.from_bytes(args[0:3], "little")
        rlen = int.from_bytes(args[3:6], "little")
        write = args[6 : 6 + slen]
        self.spiops += 1
        if self.drop_after_spiops is not None and self.spiops > self.drop_after_spiops:
            return None
        too_long = (self.max_write and slen > self.max_write) or (
            self.max_read and rlen > self.max_read
        )
        if too_long:
            return bytes([NAK])
        if write:
            self.opcodes[write[0]] += 1
        if not self.pins_enabled:  # drivers off: the chip sees nothing, MISO floats high
            return bytes([ACK]) + b"\xff" * rlen
        return bytes([ACK]) + self.chip.transaction(write, rlen)
