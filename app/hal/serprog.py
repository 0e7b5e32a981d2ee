"""flashrom's serial flasher protocol ("serprog") as a programmer backend.

URL: ``serprog:///dev/ttyACM0[?baud=115200&spispeed=8M&connection=...&power=...&timeout=2]``
(the URL path is the port: ``serprog:///dev/serial/by-id/usb-...``, ``serprog://COM3``).

Options:
- ``baud``: serial baud rate (default 115200; USB CDC boards ignore it).
- ``spispeed``: SPI clock limit in Hz (``8M``, ``500k``, ``4000000``); sent with S_SPI_FREQ
  at open, and every clock the algorithm asks for is capped to it.
- ``connection``: ``in-system`` (default: serprog boards are mostly used with clips) or
  ``socket``; ``power``: ``programmer`` (default) or ``board`` (the board powers the chip).
- ``timeout``: seconds without a byte from a working programmer before the link counts as
  lost (default 2).

Protocol facts used (flashrom Documentation/serprog-protocol.txt, interface version 1):
every command answers ACK 0x06 (+ return bytes) or NAK 0x15; SYNCNOP 0x10 answers NAK ACK;
multibyte values are little-endian, lengths 24-bit; Q_CMDMAP is a 32-byte bitmap (command
n = byte n/8, bit n%8); Q_WRNMAXLEN / Q_RDNMAXLEN bound O_SPIOP's slen / rlen (0 means
2^24; an unsupported query means no limit); O_SPIOP is ``0x13 slen[3] rlen[3] data`` ->
``ACK + rlen bytes``. Q_SERBUF is how many bytes the programmer can take in before it has
to answer, so the bus pipelines commands up to that many unacknowledged bytes.

One site. Status polling (WaitReady) runs on the host, serprog has no programmer-side
poll: the first status read goes out in the same write as the command it waits for, and
later reads follow the learned schedule of app.hal.busy_poll (the part's real busy time,
per kind of operation), not a sleep of the datasheet's typical time.

Socketeer's spi_nor algorithm needs a maximum write length of at least page size + 5
(opcode, 4-byte address) = 261 bytes. Reads longer than the maximum read length are split
when the command is a plain read (03/0B/13/0C) and can be re-issued at a later address;
any other op above a limit raises HalError naming the limit.
"""

from __future__ import annotations

import errno
import logging
import select
import sys
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from enum import IntEnum

import serial

from app.hal.bus import SpiOp, SpiStep, WaitReady
from app.hal.busy_poll import BusyPoller
from app.hal.errors import BusTimeout, HalError, LinkError, ProgrammerUrlError
from app.hal.port_errors import PORT_ERRORS, port_errno
from app.hal.programmer import (
    Capabilities,
    Indication,
    ParsedUrl,
    check_options,
    connection_options,
    register_scheme,
)

log = logging.getLogger(__name__)

ACK, NAK = 0x06, 0x15
BUS_SPI = 0x08
MAX_LEN = (1 << 24) - 1  # 24-bit lengths; "0 means 2^24" is capped to what fits
DEFAULT_SERBUF = 16  # what flashrom assumes when Q_SERBUF is not supported
#: Replies allowed in flight before the host reads: keeps a pipelined batch from
#: filling the host's receive buffer while the host is still writing.
REPLY_WINDOW = 4096
#: time.sleep wakes some 60-100 us late on Linux: sleeps end that much early.
SLEEP_OVERSHOOT_S = 0.00008
#: Status reads kept in flight while polling back to back (8 bytes each on the wire).
POLL_DEPTH = 3
#: The minimum limits Socketeer's spi_nor algorithm needs from a programmer.
MIN_WRITE_LEN = 256 + 5
_KNOWN_OPTIONS = {"baud", "spispeed", "connection", "power", "timeout"}
_BUS_NAMES = {0x01: "parallel", 0x02: "LPC", 0x04: "FWH", 0x08: "SPI"}
#: Plain read opcodes: (address bytes or None for 3-or-4, dummy bytes).
_READS = {0x03: (None, 0), 0x0B: (None, 1), 0x13: (4, 0), 0x0C: (4, 1)}
#: what opening a port raises: its errors, and ValueError for a bad setting
OPEN_ERRORS: tuple[type[BaseException], ...] = (*PORT_ERRORS, ValueError)


class Cmd(IntEnum):
    NOP = 0x00
    Q_IFACE = 0x01
    Q_CMDMAP = 0x02
    Q_PGMNAME = 0x03
    Q_SERBUF = 0x04
    Q_BUSTYPE = 0x05
    Q_CHIPSIZE = 0x06
    Q_OPBUF = 0x07
    Q_WRNMAXLEN = 0x08
    R_BYTE = 0x09
    R_NBYTES = 0x0A
    O_INIT = 0x0B
    O_WRITEB = 0x0C
    O_WRITEN = 0x0D
    O_DELAY = 0x0E
    O_EXEC = 0x0F
    SYNCNOP = 0x10
    Q_RDNMAXLEN = 0x11
    S_BUSTYPE = 0x12
    O_SPIOP = 0x13
    S_SPI_FREQ = 0x14
    S_PIN_STATE = 0x15


def spiop_frame(write: bytes, read_len: int) -> bytes:
    """The O_SPIOP command for one chip-select-framed transaction."""
    return (
        bytes([Cmd.O_SPIOP])
        + len(write).to_bytes(3, "little")
        + read_len.to_bytes(3, "little")
        + write
    )


@dataclass
class _Pipeline:
    """Commands written ahead of their answers, within the programmer's serial buffer.

    ``add`` queues a command (draining first when it would not fit); ``send`` writes the
    queue; ``read_next`` reads the oldest outstanding answer; ``drain`` writes the queue
    and reads every outstanding answer into ``replies`` (a key of None: read, dropped).
    """

    client: SerprogClient
    out: bytearray = field(default_factory=bytearray)
    pending: deque[tuple[object, int, str, int]] = field(default_factory=deque)
    unacked: int = 0
    reply_bytes: int = 0
    replies: dict[object, bytearray] = field(default_factory=dict)
    naks: list[str] = field(default_factory=list)

    def fits(self, frame_len: int, reply_len: int) -> bool:
        """Whether one more command fits beside those outstanding."""
        return (
            self.unacked + frame_len <= self.client.serbuf
            and self.reply_bytes + reply_len <= REPLY_WINDOW
        )

    def add(self, key: object, frame: bytes, reply_len: int, what: str) -> None:
        if self.pending and not self.fits(len(frame), reply_len):
            self.drain()
        self.out += frame
        self.unacked += len(frame)
        self.reply_bytes += reply_len
        self.pending.append((key, reply_len, what, len(frame)))
        if key is not None:
            self.replies.setdefault(key, bytearray())

    def send(self) -> None:
        if self.out:
            self.client.write(bytes(self.out))
            self.out.clear()

    def read_next(self) -> bytes:
        """Read the oldest outstanding answer; its return bytes (b"" when NAKed)."""
        key, reply_len, what, size = self.pending.popleft()
        self.unacked -= size
        self.reply_bytes -= reply_len
        status = self.client.read_exact(1)[0]
        if status == NAK:
            self.naks.append(what)
            return b""
        if status != ACK:
            raise self.client.lost(
                f"protocol out of step: answer 0x{status:02X} to {what} (expected ACK/NAK)"
            )
        data = self.client.read_exact(reply_len) if reply_len else b""
        if key is not None:
            self.replies[key] += data
        return data

    def drain(self, *, raise_nak: bool = True) -> None:
        """Read every outstanding answer; a NAK raises HalError once all are read."""
        self.send()
        while self.pending:
            self.read_next()
        self.unacked = self.reply_bytes = 0
        if self.naks and raise_nak:
            self.raise_nak()

    def raise_nak(self) -> None:
        name = self.client.name
        raise HalError(f"serprog programmer {name!r} refused (NAK) {self.naks[0]}")


class SerprogClient:
    """The serial link to one serprog programmer: open, synchronize, query, pipeline."""

    def __init__(self, port: str, baud: int, timeout_s: float) -> None:
        self.port = port
        self.baud = baud
        self.timeout_s = timeout_s
        self.link_lost = False
        self.lock = threading.RLock()
        self._serial: serial.Serial | None = None
        self.cmdmap = bytes(32)
        self.name = "(unknown)"
        self.serbuf = DEFAULT_SERBUF
        self.buses = BUS_SPI
        self.max_write = MAX_LEN
        self.max_read = MAX_LEN

    # -- opening --------------------------------------------------------------------

    def open(self) -> None:
        """Open the port and run the startup sequence; HalError says what went wrong."""
        self._serial = self._open_port()
        try:
            self._synchronize()
            self._handshake()
        except BaseException:
            self.close()
            raise
        self.link_lost = False

    def _open_port(self) -> serial.Serial:
        port = serial.Serial()
        port.port = self.port
        port.baudrate = self.baud
        port.timeout = 0.05
        # A whole serial buffer (<= 64 KiB) must go out at the baud rate.
        port.write_timeout = self.timeout_s + 65536 * 10 / self.baud
        if sys.platform != "win32":
            port.exclusive = True
        try:
            port.open()
        except OPEN_ERRORS as err:
            raise HalError(_open_error(self.port, err)) from None
        return port

    def _synchronize(self) -> None:
        """NOP flood, then SYNCNOP until NAK ACK comes back; a second SYNCNOP confirms."""
        port = self._port()
        self.write(bytes([Cmd.NOP]) * 8)
        time.sleep(0.05)
        port.reset_input_buffer()
        deadline = time.monotonic() + self.timeout_s + 1.0
        while time.monotonic() < deadline:
            self.write(bytes([Cmd.SYNCNOP]))
            if self._saw_nak_ack(0.25):
                time.sleep(0.01)
                port.reset_input_buffer()
                self.write(bytes([Cmd.SYNCNOP]))
                if self._read_raw(2, 0.5) == bytes([NAK, ACK]):
                    return
        raise HalError(
            f"serprog: no programmer answers on {self.port} (SYNCNOP got no NAK ACK):"
            " is it the right port, running serprog firmware"
            f" (and, for a real UART, at {self.baud} baud)?"
        )

    def _saw_nak_ack(self, window_s: float) -> bool:
        end = time.monotonic() + window_s
        previous = None
        while time.monotonic() < end:
            got = self._read_raw(1, end - time.monotonic())
            if not got:
                return False
            if previous == NAK and got[0] == ACK:
                return True
            previous = got[0]
        return False

    def _handshake(self) -> None:
        iface = self.command(Cmd.Q_IFACE, reply_len=2, check=False)
        version = int.from_bytes(iface, "little") if iface is not None else None
        if version != 1:
            raise HalError(
                f"serprog programmer on {self.port} speaks interface version {version};"
                " Socketeer knows version 1"
            )
        cmdmap = self.command(Cmd.Q_CMDMAP, reply_len=32, check=False)
        if cmdmap is None:
            raise HalError(f"serprog programmer on {self.port} refused the command map query")
        self.cmdmap = bytes(cmdmap)
        if not self.supports(Cmd.O_SPIOP):
            raise HalError(f"serprog programmer on {self.port} has no SPI operation (O_SPIOP)")
        name = self.command(Cmd.Q_PGMNAME, reply_len=16)
        if name:
            self.name = name.split(b"\0", 1)[0].decode("ascii", "replace") or "(unnamed)"
        serbuf = self.command(Cmd.Q_SERBUF, reply_len=2)
        if serbuf:
            self.serbuf = int.from_bytes(serbuf, "little") or DEFAULT_SERBUF
        buses = self.command(Cmd.Q_BUSTYPE, reply_len=1)
        if buses:
            self.buses = buses[0]
        if not self.buses & BUS_SPI:
            names = [n for bit, n in _BUS_NAMES.items() if self.buses & bit] or ["none"]
            raise HalError(
                f"serprog programmer {self.name!r} on {self.port} supports"
                f" {', '.join(names)} but not SPI"
            )
        if self.supports(Cmd.S_BUSTYPE) and self.command(Cmd.S_BUSTYPE, bytes([BUS_SPI])) is None:
            raise HalError(f"serprog programmer {self.name!r} refused to select the SPI bus")
        self.max_write = self._max_len(Cmd.Q_WRNMAXLEN)
        self.max_read = self._max_len(Cmd.Q_RDNMAXLEN)
        log.info(
            "serprog: %s on %s (serial buffer %d, max write %d, max read %d)",
            self.name,
            self.port,
            self.serbuf,
            self.max_write,
            self.max_read,
        )

    def _max_len(self, query: Cmd) -> int:
        reply = self.command(query, reply_len=3)
        value = int.from_bytes(reply, "little") if reply else 0
        return value or MAX_LEN

    # -- commands -------------------------------------------------------------------

    def supports(self, cmd: int) -> bool:
        return bool(self.cmdmap[cmd // 8] & (1 << (cmd % 8)))

    def command(
        self, cmd: Cmd, params: bytes = b"", reply_len: int = 0, *, check: bool = True
    ) -> bytearray | None:
        """One command, one round trip. None when NAKed or (``check``) not in the map."""
        if check and not self.supports(cmd):
            return None
        with self.lock:
            pipe = _Pipeline(self)
            pipe.add(0, bytes([cmd]) + params, reply_len, cmd.name)
            pipe.drain(raise_nak=False)
        return None if pipe.naks else pipe.replies[0]

    def set_pins(self, enabled: bool) -> None:
        state = bytes([1 if enabled else 0])
        if self.supports(Cmd.S_PIN_STATE) and self.command(Cmd.S_PIN_STATE, state) is None:
            raise HalError(f"serprog programmer {self.name!r} refused S_PIN_STATE")

    def set_spi_freq(self, hz: int) -> int | None:
        """Ask for ``hz``; the programmer's answer is the clock it actually set."""
        if not self.supports(Cmd.S_SPI_FREQ):
            return None
        reply = self.command(Cmd.S_SPI_FREQ, min(hz, 0xFFFFFFFF).to_bytes(4, "little"), 4)
        if reply is None:
            raise HalError(f"serprog programmer {self.name!r} refused SPI clock {hz} Hz")
        return int.from_bytes(reply, "little")

    # -- raw I/O --------------------------------------------------------------------

    def _port(self) -> serial.Serial:
        if self._serial is None or not self._serial.is_open:
            raise self.lost("port is closed")
        return self._serial

    def lost(self, why: str) -> LinkError:
        """Mark the link lost and return the error to raise."""
        self.link_lost = True
        return LinkError(f"serprog link on {self.port} lost: {why}")

    def write(self, data: bytes) -> None:
        port = self._port()
        try:
            port.write(data)
        except PORT_ERRORS as err:
            raise self.lost(f"write failed ({err})") from None

    def _read_raw(self, size: int, timeout_s: float) -> bytes:
        """Up to ``size`` bytes within ``timeout_s``; short on timeout."""
        port = self._port()
        out = bytearray()
        end = time.monotonic() + timeout_s
        try:
            while len(out) < size and time.monotonic() < end:
                out += port.read(size - len(out))
        except PORT_ERRORS as err:
            raise self.lost(f"read failed ({err})") from None
        return bytes(out)

    def answer_within(self, timeout_s: float) -> bool:
        """Whether a byte arrives within ``timeout_s`` (where the platform can tell
        without reading it: POSIX; elsewhere True, and the caller's read waits)."""
        port = self._port()
        if sys.platform == "win32" or timeout_s <= 0:
            return True
        try:
            ready, _, _ = select.select([port.fileno()], [], [], timeout_s)
        except (OSError, ValueError) as err:
            raise self.lost(f"read failed ({err})") from None
        return bool(ready)

    def read_exact(self, size: int) -> bytes:
        """``size`` bytes; LinkError when the programmer stays silent for ``timeout_s``."""
        port = self._port()
        out = bytearray()
        quiet_since = time.monotonic()
        try:
            while len(out) < size:
                chunk = port.read(min(size - len(out), 65536))
                if chunk:
                    out += chunk
                    quiet_since = time.monotonic()
                elif time.monotonic() - quiet_since > self.timeout_s:
                    raise self.lost(
                        f"no answer for {self.timeout_s:g} s (unplugged, reset or hung?)"
                    )
        except PORT_ERRORS as err:
            raise self.lost(f"read failed ({err})") from None
        return bytes(out)

    def close(self) -> None:
        if self._serial is not None:
            with suppress(*PORT_ERRORS):
                self._serial.close()
            self._serial = None

    def reconnect(self) -> bool:
        """Reopen the same port path and re-synchronize; False while it is absent."""
        with self.lock:
            self.close()
            try:
                self.open()
            except HalError as err:
                log.info("serprog: reconnect to %s failed: %s", self.port, err)
                self.link_lost = True
                return False
            return True


def _open_error(port: str, err: BaseException) -> str:
    code = port_errno(err)
    text = str(err)
    if code in (errno.ENOENT, errno.ENODEV, errno.ENXIO) or "FileNotFoundError" in text:
        return (
            f"serprog: no serial port {port!r}: is the programmer plugged in? List ports"
            " with 'python -m serial.tools.list_ports'"
        )
    if code in (errno.EACCES, errno.EPERM) or "PermissionError" in text or "denied" in text:
        return (
            f"serprog: permission denied opening {port!r}: add yourself to the 'dialout'"
            " group (sudo usermod -aG dialout $USER, then log in again) or install a udev"
            " rule for the board; on Windows close other programs using the port"
        )
    if code == errno.ENOTTY or "Inappropriate ioctl" in text:
        return f"serprog: {port!r} is not a serial port"
    if code == errno.EBUSY or "locked" in text.lower() or "busy" in text.lower():
        return f"serprog: {port!r} is in use by another program (ModemManager, a terminal?)"
    return f"serprog: cannot open {port!r}: {text}"


class SerprogSpiBus:
    """SpiBus over O_SPIOP, pipelined within the programmer's serial buffer."""

    def __init__(self, client: SerprogClient, clock_limit_hz: int | None) -> None:
        self.client = client
        self.clock_limit_hz = clock_limit_hz
        self.max_clock_hz = clock_limit_hz or 0
        self.clock_hz = 0  # as the programmer reported it; 0 = never set
        self._requested: int | None = None
        self.poller = BusyPoller()  # reset when the site powers up for a cycle
        self._read_rtt_s = 0.0  # a status read's round trip, as measured (average)

    def set_clock(self, hz: int) -> int:
        if self.clock_limit_hz:
            hz = min(hz, self.clock_limit_hz)
        self._requested = hz
        actual = self.client.set_spi_freq(hz)
        self.clock_hz = actual if actual is not None else hz
        return self.clock_hz

    def restore_clock(self) -> None:
        if self._requested is not None:
            self.set_clock(self._requested)

    def transfer(self, ops: Sequence[SpiStep]) -> list[bytes]:
        client = self.client
        if client.link_lost:
            raise client.lost("reconnect before using the bus")
        frames = [None if isinstance(op, WaitReady) else self._split(op) for op in ops]
        results: list[bytes] = []
        with client.lock:
            pipe = _Pipeline(client)
            for index, (op, parts) in enumerate(zip(ops, frames, strict=True)):
                if isinstance(op, WaitReady):
                    status = self._wait_ready(pipe, op)
                    pipe.replies[index] = bytearray(status)
                    continue
                assert parts is not None
                for write, read_len in parts:
                    what = f"SPI op 0x{write[0]:02X} (write {len(write)}, read {read_len})"
                    pipe.add(index, spiop_frame(write, read_len), read_len, what)
            pipe.drain()
        for index, op in enumerate(ops):
            results.append(bytes(pipe.replies.get(index, b"")))
            if isinstance(op, SpiOp) and len(results[-1]) != op.read_len:
                raise client.lost("short SPI read")
        return results

    def _split(self, op: SpiOp) -> list[tuple[bytes, int]]:
        client = self.client
        if not op.write:
            raise HalError("serprog cannot run a SPI op without a command byte")
        if len(op.write) > client.max_write:
            raise HalError(
                f"SPI op 0x{op.write[0]:02X} writes {len(op.write)} bytes but programmer"
                f" {client.name!r} takes at most {client.max_write} (Q_WRNMAXLEN);"
                f" Socketeer needs at least {MIN_WRITE_LEN} (a 256-byte page + 5)"
            )
        if op.read_len <= client.max_read:
            return [(op.write, op.read_len)]
        parts = split_read(op, client.max_read)
        if parts is None:
            raise HalError(
                f"SPI op 0x{op.write[0]:02X} reads {op.read_len} bytes but programmer"
                f" {client.name!r} returns at most {client.max_read} (Q_RDNMAXLEN) and the"
                " command cannot be split"
            )
        return parts

    def _wait_ready(self, pipe: _Pipeline, step: WaitReady) -> bytes:
        """Host-side poll on the learned schedule (app.hal.busy_poll).

        The first status read rides in the same write as the commands before it, so a
        part that is already ready costs no extra round trip, and the next page's
        commands follow its answer at once. Later reads go out when the schedule says,
        whether or not earlier answers are back (they are on their way: the link's
        latency is not added to the part's time); while the schedule wants reads back to
        back, up to ``POLL_DEPTH`` are kept in flight within the serial buffer, so the
        programmer runs the next while the host reads one. Reads still in flight once
        the part is ready are answered and dropped behind the next commands.
        """
        frame = spiop_frame(bytes([step.opcode]), 1)
        client = self.client
        start = time.monotonic()
        sent: deque[float] = deque()  # when each status read in flight was sent
        pipe.add(None, frame, 1, "status poll")
        pipe.send()
        sent.append(0.0)
        due = self.poller.next_poll(step, 0.0)
        expected = self.poller.expected(step)
        polls = 0
        # The deadline runs from the programmer's answer to the command waited for: a
        # read sent then is surely run after it. (Sent is not run: a programmer that
        # lags runs a read queued behind the command right after it.)
        acked: float | None = None
        while True:
            elapsed = time.monotonic() - start
            # past the deadline one more read goes out, and its answer decides
            may_send = not sent or acked is None or sent[-1] - acked <= step.timeout_s
            # no read beside one sent after the part's expected end: that one says ready
            room = may_send and len(sent) < POLL_DEPTH and (not sent or sent[-1] < expected)
            if room and elapsed >= due and (pipe.fits(len(frame), 1) or not pipe.pending):
                pipe.add(None, frame, 1, "status poll")
                pipe.send()
                sent.append(elapsed)
                # reads in flight are spread over a round trip, not sent in one burst
                spacing = self._read_rtt_s / POLL_DEPTH
                due = max(self.poller.next_poll(step, elapsed), elapsed + spacing)
                continue
            if not pipe.pending:
                time.sleep(max(0.0, due - elapsed - SLEEP_OVERSHOOT_S))
                continue
            if room and elapsed < due and not client.answer_within(due - elapsed):
                continue  # the next read is due before an answer came
            if len(pipe.pending) > len(sent):  # answers to the commands before
                pipe.read_next()
                if len(pipe.pending) == len(sent):
                    acked = time.monotonic() - start
                continue
            if acked is None:  # nothing was outstanding before the first read
                acked = 0.0
            answer = pipe.read_next()
            at = sent.popleft()
            polls += 1
            rtt = time.monotonic() - start - at
            self._read_rtt_s += (min(rtt, 0.01) - self._read_rtt_s) / 8
            if not answer:
                pipe.raise_nak()
            status = answer[0]
            if status & step.mask == step.value:
                self.poller.learn(step, at, polls)  # when the read went out, see learn()
                return bytes([status])
            if acked is not None and at - acked > step.timeout_s:  # sent past the deadline
                raise BusTimeout(
                    f"status 0x{status:02X} never matched mask 0x{step.mask:02X} ="
                    f" 0x{step.value:02X} within {step.timeout_s * 1000:.0f} ms"
                )


def split_read(op: SpiOp, max_read: int) -> list[tuple[bytes, int]] | None:
    """A plain read (03/0B/13/0C) as several reads of at most ``max_read`` bytes, or None.

    The address width follows from the op's length (opcode + 3 or 4 address bytes + dummy);
    a 3-byte read that would cross 16 MiB is not split (its wrap is part-specific).
    """
    shape = _READS.get(op.write[0])
    if shape is None:
        return None
    fixed, dummy = shape
    address_bytes = len(op.write) - 1 - dummy
    if address_bytes not in ((fixed,) if fixed else (3, 4)):
        return None
    address = int.from_bytes(op.write[1 : 1 + address_bytes], "big")
    if address_bytes == 3 and address + op.read_len > 1 << 24:
        return None
    tail = op.write[1 + address_bytes :]
    parts = []
    for offset in range(0, op.read_len, max_read):
        at = (address + offset).to_bytes(address_bytes, "big")
        parts.append((op.write[:1] + at + tail, min(max_read, op.read_len - offset)))
    return parts


class SerprogSite:
    """The programmer's one site: an SPI bus on a clip, header or socket."""

    index = 1
    adapter_id: str | None = None
    i2c = None
    uart = None
    #: serprog sends bytes only (its op 0x13 has no bit counts): Microwire's odd-length
    #: frames and its CS, active high, cannot be driven through it
    microwire = None
    swd = None
    insertions = 0  # no socket detect: not counted here

    def __init__(
        self, client: SerprogClient, spi: SerprogSpiBus, *, in_system: bool, board_powered: bool
    ) -> None:
        self.client = client
        self.spi = spi
        self.in_system = in_system
        self.board_powered = board_powered

    @property
    def link_lost(self) -> bool:
        return self.client.link_lost

    @link_lost.setter
    def link_lost(self, value: bool) -> None:
        self.client.link_lost = value

    def power(self, on: bool, voltage_mv: int | None = None) -> None:
        """Enable (or release) the programmer's output drivers with S_PIN_STATE.

        serprog boards cannot switch or set target power: ``voltage_mv`` is not applied.
        Releasing the bus on a lost link is a no-op, so cleanup never raises.
        """
        if not on:
            if self.client.link_lost:
                return
            try:
                self.client.set_pins(False)
            except LinkError as err:
                log.warning("%s", err)
            return
        if voltage_mv is not None:
            log.debug("serprog: cannot set target voltage (%d mV requested)", voltage_mv)
        self.spi.poller.reset()  # maybe another part: its busy times are learned anew
        self.client.set_pins(True)

    def part_present(self) -> bool:
        return True  # no socket detect

    def indicate(self, state: Indication) -> None:
        pass  # no LEDs under host control

    def set_reset(self, asserted: bool) -> None:
        pass  # no reset line

    def reconnect(self) -> bool:
        if not self.client.reconnect():
            return False
        try:
            self.spi.restore_clock()
        except HalError as err:
            log.info("serprog: restoring the SPI clock after reconnect failed: %s", err)
            return False
        return True


class SerprogProgrammer:
    def __init__(self, url: str, client: SerprogClient, site: SerprogSite) -> None:
        self.url = url
        self.client = client
        self.name = f"serprog {client.name} on {client.port}"
        self._site = site
        self.capabilities = Capabilities(
            buses=frozenset({"spi"}),
            max_spi_clock_hz=site.spi.max_clock_hz,
            power_control=False,
            socket_detect=False,
        )

    @property
    def sites(self) -> list[SerprogSite]:
        return [self._site]

    def close(self) -> None:
        with suppress(HalError):
            self._site.power(False)
        self.client.close()


def parse_hz(text: str) -> int:
    """``8M``, ``500k``, ``4000000`` (flashrom's spispeed syntax) -> Hz."""
    scale = {"k": 1_000, "K": 1_000, "m": 1_000_000, "M": 1_000_000}.get(text[-1:], 1)
    digits = text[:-1] if scale != 1 else text
    try:
        value = int(digits, 10) * scale
    except ValueError:
        raise ProgrammerUrlError(
            f"serprog spispeed={text!r}: expected Hz, e.g. 8M or 500k"
        ) from None
    if not 0 < value <= 0xFFFFFFFF:
        raise ProgrammerUrlError(f"serprog spispeed={text!r} is out of range")
    return value


def _number(options: Mapping[str, str], key: str, default: float, hi: float) -> float:
    text = options.get(key)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ProgrammerUrlError(f"serprog {key}={text!r} is not a number") from None
    if not 0 < value <= hi:
        raise ProgrammerUrlError(f"serprog {key}={text!r} must be within 0..{hi:g}")
    return value


def port_from_url(parsed: ParsedUrl) -> str:
    path = parsed.path
    if len(path) > 1 and path[0] == "/" and path[1:4].upper() == "COM" and path[4:].isdigit():
        path = path[1:]  # serprog:///COM3
    if not path:
        raise ProgrammerUrlError(
            "serprog URL names no port: serprog:///dev/ttyACM0 (Linux), serprog://COM3 (Windows)"
        )
    return path


@register_scheme("serprog")
def open_serprog(parsed: ParsedUrl, context: Mapping[str, object]) -> SerprogProgrammer:
    check_options(parsed, _KNOWN_OPTIONS)
    port = port_from_url(parsed)
    baud = int(_number(parsed.options, "baud", 115200, 20_000_000))
    timeout_s = _number(parsed.options, "timeout", 2.0, 60.0)
    spispeed = parsed.options.get("spispeed")
    limit = parse_hz(spispeed) if spispeed else None
    in_system, board = connection_options(parsed, in_system=True, board_powered=False)
    client = SerprogClient(port, baud, timeout_s)
    client.open()
    spi = SerprogSpiBus(client, limit)
    try:
        if limit:
            spi.set_clock(limit)
    except HalError:
        client.close()
        raise
    site = SerprogSite(client, spi, in_system=in_system, board_powered=board)
    return SerprogProgrammer(f"serprog://{parsed.path}", client, site)
