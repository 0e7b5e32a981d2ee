"""CMSIS-DAP probes at the command level, and a probe as an SwdLink (app.hal.swd).

Facts from the ARM CMSIS-DAP specification (github.com/ARM-software/CMSIS-DAP,
Documentation/Doxygen/src/ref_dap.txt; the command ids and bit values as in its
Firmware/Include/DAP.h; how the reference firmware runs a transfer batch, posted reads
and value-match reads included, from Firmware/Source/DAP.c):

- every command is one packet of at most the probe's packet size (DAP_Info 0xFF); the
  answer repeats the command byte (0xFF: command not implemented);
- DAP_Transfer (0x05): DAP index, count (1..255), then per transfer a request byte
  (bit 0 APnDP, 1 RnW, 2-3 A[3:2], 4 value match (reads), 5 match mask (writes)) and a
  data word for writes, match-mask writes and value-match reads. The answer: count
  executed, a response byte (bits 2:0 ACK: 1 OK, 2 WAIT, 4 FAULT, 7 no ACK; bit 3 SWD
  protocol error; bit 4 value mismatch), then a word per plain read. The probe posts AP
  reads and ends a run with RDBUFF itself; a value-match read returns no data;
- DAP_TransferBlock (0x06): DAP index, count (SHORT), one request byte, the words to
  write; the answer: count (SHORT), response byte, the words read;
- DAP_SWJ_Sequence (0x12): 1..256 bits (256 as 0), LSB first; DAP_SWJ_Pins (0x10):
  output, select, wait (us), nRESET is bit 7; DAP_SWJ_Clock (0x11): Hz as a WORD;
  DAP_TransferConfigure (0x04): idle cycles, WAIT retries, match retries;
- DAP_Info packet count (0xFE): how many commands the probe buffers, so the host may
  send that many before reading the first answer.

``CmsisDapLink.transfer`` packs a batch of accesses into as few commands as the packet
size allows: runs of the same register (memory through DRW) as DAP_TransferBlock, the
rest as DAP_Transfer; a match read as the spec's match-mask write and value-match read,
followed by one plain read of the same register, because the value-match read returns
no data and the SwdLink contract (and the flash algorithms checking error flags in the
status) wants the value that ended the wait.
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from app.hal.errors import HalError, LinkError
from app.hal.swd import Access, SwdError, SwdFault, SwdMismatch

CMD_INFO = 0x00
CMD_HOST_STATUS = 0x01
CMD_CONNECT = 0x02
CMD_DISCONNECT = 0x03
CMD_TRANSFER_CONFIGURE = 0x04
CMD_TRANSFER = 0x05
CMD_TRANSFER_BLOCK = 0x06
CMD_WRITE_ABORT = 0x08
CMD_SWJ_PINS = 0x10
CMD_SWJ_CLOCK = 0x11
CMD_SWJ_SEQUENCE = 0x12
NOT_IMPLEMENTED = 0xFF
DAP_OK = 0x00

INFO_VENDOR, INFO_PRODUCT, INFO_SERIAL, INFO_PROTOCOL = 0x01, 0x02, 0x03, 0x04
INFO_FIRMWARE = 0x09  # product firmware version
INFO_CAPABILITIES, INFO_PACKET_COUNT, INFO_PACKET_SIZE = 0xF0, 0xFE, 0xFF
CAPABILITY_SWD = 1 << 0
PORT_SWD = 1
HOST_CONNECT = 0
PIN_NRESET = 1 << 7

REQ_AP, REQ_READ, REQ_MATCH_VALUE, REQ_MATCH_MASK = 0x01, 0x02, 0x10, 0x20
ACK_OK, ACK_WAIT, ACK_FAULT, ACK_NONE = 1, 2, 4, 7
PROTOCOL_ERROR, VALUE_MISMATCH = 0x08, 0x10

TRANSFER_MAX = 255  # DAP_Transfer's count is a byte
BLOCK_MAX = 65535
#: a run of the same register goes as DAP_TransferBlock from this length on: a block
#: saves one request byte per transfer and costs two or three more header bytes
BLOCK_MIN = 4
LINE_RESET_ONES = 56  # ADIv5: at least 50 clocks with SWDIO high
IDLE_BITS = 8  # ADIv5: at least two idle clocks after a line reset, before a packet
DEFAULT_WAIT_RETRIES = 1000
MIN_PACKET = 16  # smaller than any probe's: a DAP_Info answer misread
#: value-match retries (the most the SHORT takes): at 4 MHz ~50 clocks a read, ~0.8 s
DEFAULT_MATCH_RETRIES = 65535


_T = TypeVar("_T")


class DapHandle(Protocol):
    """An opened probe at the USB level (app.hal.cmsis_dap_usb; tests: a fake)."""

    @property
    def report_size(self) -> int | None:
        """v1 (HID): the report size every command is padded to with zeros (64 on full
        speed); v2 (bulk): None, a command goes as long as it is."""
        ...

    #: the probe's packet size: the link sets it once DAP_Info has told it (a bulk
    #: answer is read as one transfer of this size)
    packet_size: int

    def write(self, data: bytes) -> None:
        """One command packet (a v1 HID report: exactly ``report_size`` bytes)."""
        ...

    def read(self) -> bytes:
        """One answer packet (may carry padding after the answer)."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class DapInfo:
    """What DAP_Info told about the probe."""

    packet_size: int
    packet_count: int
    capabilities: int
    serial: str
    protocol: str  # the CMSIS-DAP protocol version, e.g. "2.1.0"
    firmware: str  # the product firmware version ("" when not given)
    product: str


@dataclass(frozen=True, slots=True)
class _Item:
    """One DAP transfer of a command: the request byte, its data word (None: none), the
    batch access it serves and whether it answers a word that the batch returns."""

    request: int
    data: int | None
    origin: int
    answers: bool


@dataclass
class _Command:
    block: bool
    items: list[_Item]

    def encode(self) -> bytes:
        if self.block:
            head = struct.pack(
                "<BBHB", CMD_TRANSFER_BLOCK, 0, len(self.items), self.items[0].request
            )
            return head + b"".join(
                struct.pack("<I", i.data) for i in self.items if i.data is not None
            )
        body = bytearray((CMD_TRANSFER, 0, len(self.items)))
        for item in self.items:
            body.append(item.request)
            if item.data is not None:
                body += struct.pack("<I", item.data)
        return bytes(body)

    def answer_size(self) -> int:
        return (4 if self.block else 3) + 4 * sum(i.answers for i in self.items)


def _request(access: Access) -> int:
    return (
        (REQ_AP if access.ap else 0)
        | (REQ_READ if access.read else 0)
        | (access.address & 0x0C)
        | (REQ_MATCH_VALUE if access.mask is not None else 0)
    )


def _items(access: Access, origin: int) -> list[_Item]:
    """The DAP transfers one access takes (see the module docstring for match reads)."""
    if not access.read:
        return [_Item(_request(access), access.value & 0xFFFFFFFF, origin, False)]
    if access.mask is None:
        return [_Item(_request(access), None, origin, True)]
    plain = _request(Access(access.ap, True, access.address))
    return [
        _Item(REQ_MATCH_MASK, access.mask & 0xFFFFFFFF, origin, False),
        _Item(_request(access), access.match & 0xFFFFFFFF, origin, False),
        _Item(plain, None, origin, True),
    ]


def _request_size(items: Sequence[_Item]) -> int:
    return sum(1 if i.data is None else 5 for i in items)


def _same_register(a: Access, b: Access) -> bool:
    return (a.ap, a.read, a.address, a.mask, b.mask) == (b.ap, b.read, b.address, None, None)


def plan(accesses: Sequence[Access], packet_size: int) -> list[_Command]:
    """The commands that carry ``accesses`` in order, each fitting ``packet_size`` both
    ways. Greedy: a run of the same register first fills what room the open DAP_Transfer
    has left, then goes in full blocks; everything else goes in DAP_Transfer."""
    block_room = (packet_size - 5) // 4  # writes: 5 header bytes, 4 per word
    block_read_room = (packet_size - 4) // 4  # reads: the answer's 4 header bytes
    commands: list[_Command] = []
    open_items: list[_Item] = []

    def fits(extra: Sequence[_Item]) -> bool:
        items = [*open_items, *extra]
        return (
            len(items) <= TRANSFER_MAX
            and 3 + _request_size(items) <= packet_size
            and 3 + 4 * sum(i.answers for i in items) <= packet_size
        )

    def close_open() -> None:
        nonlocal open_items
        if open_items:
            commands.append(_Command(False, open_items))
            open_items = []

    index = singles_end = 0
    while index < len(accesses):
        access = accesses[index]
        run = 1
        while index + run < len(accesses) and _same_register(access, accesses[index + run]):
            run += 1
        if index >= singles_end and access.mask is None and run >= BLOCK_MIN:
            while run and open_items and fits(_items(accesses[index], index)):
                open_items += _items(accesses[index], index)
                index, run = index + 1, run - 1
            if run:
                close_open()  # it is full
            room = min(block_read_room if access.read else block_room, BLOCK_MAX)
            last = index + run == len(accesses)
            while run >= room or (last and run >= BLOCK_MIN):
                n = min(run, room)
                items = [_items(accesses[index + k], index + k)[0] for k in range(n)]
                commands.append(_Command(True, items))
                index, run = index + n, run - n
            singles_end = index + run  # a part block would leave its packet's room unused
            if index == singles_end:
                continue
        items = _items(accesses[index], index)
        if not fits(items):
            close_open()
        open_items += items
        index += 1
    close_open()
    return commands


class CmsisDapLink:
    """A CMSIS-DAP probe as an SwdLink: SWD over its DAP_Transfer engine.

    ``handle`` is the opened USB probe; ``name`` names it in every error. Opening runs
    DAP_Info, DAP_Connect (SWD), DAP_SWJ_Clock, DAP_TransferConfigure and DAP_HostStatus.
    ``usb_writes`` / ``usb_reads`` count the USB transfers made (for tests and
    benchmarks); ``lost`` is set when the USB link failed (reopen() to go on).
    """

    def __init__(
        self,
        handle: DapHandle,
        *,
        name: str,
        clock_hz: int,
        link_errors: tuple[type[BaseException], ...] = (),
        reopen: Callable[[], DapHandle] | None = None,
        wait_retries: int = DEFAULT_WAIT_RETRIES,
        match_retries: int = DEFAULT_MATCH_RETRIES,
    ) -> None:
        self.handle = handle
        self._name = name
        self.clock_hz = clock_hz
        self.link_errors = link_errors
        self._reopen = reopen
        self.wait_retries = wait_retries
        self.match_retries = match_retries
        self.usb_writes = 0
        self.usb_reads = 0
        self.lost = False
        self._bits: list[int] = []  # SWJ sequence bits not sent yet
        self._idle_due = False  # a line reset was queued: idle clocks before a packet
        self.info = self._start()

    @property
    def name(self) -> str:
        return self._name

    @property
    def usb_transfers(self) -> int:
        """USB transfers made so far, both ways."""
        return self.usb_writes + self.usb_reads

    # -- USB ----------------------------------------------------------------------------

    def _send(self, packet: bytes) -> None:
        report = self.handle.report_size
        if report is not None:
            packet += bytes(max(0, report - len(packet)))
        self._usb("send a command", lambda: self.handle.write(packet))
        self.usb_writes += 1

    def _receive(self, command: int, size: int) -> bytes:
        answer = self._usb("read an answer", self.handle.read)
        self.usb_reads += 1
        if not answer or answer[0] != command:
            got = f"0x{answer[0]:02X}" if answer else "nothing"
            if answer and answer[0] == NOT_IMPLEMENTED:
                raise HalError(
                    f"CMSIS-DAP probe {self.name} does not implement command 0x{command:02X}"
                )
            self.lost = True  # the answers are out of step with the commands
            raise LinkError(
                f"CMSIS-DAP probe {self.name}: answer {got} to command 0x{command:02X}"
                " (garbled or out of step): the probe is reopened before the next cycle; re-plug it"
                " if this recurs"
            )
        if len(answer) < size:
            self.lost = True
            raise LinkError(
                f"CMSIS-DAP probe {self.name}: short answer to command 0x{command:02X}"
                f" ({len(answer)} of {size} bytes): unplug and re-plug the probe"
            )
        return answer

    def _usb(self, what: str, action: Callable[[], _T]) -> _T:
        if self.lost:
            raise LinkError(f"CMSIS-DAP probe {self.name} is disconnected")
        try:
            return action()
        except self.link_errors as err:
            self.lost = True
            raise LinkError(
                f"USB link to CMSIS-DAP probe {self.name} lost ({what}): {err}"
            ) from None

    def command(self, packet: bytes, answer_size: int = 2) -> bytes:
        """One command and its answer (at least ``answer_size`` bytes)."""
        self._send(packet)
        return self._receive(packet[0], answer_size)

    def _status(self, packet: bytes, what: str) -> None:
        answer = self.command(packet)
        if answer[1] != DAP_OK:
            raise SwdError(f"CMSIS-DAP probe {self.name} refused {what} (status 0x{answer[1]:02X})")

    # -- the general commands -----------------------------------------------------------

    def dap_info(self, which: int) -> bytes:
        answer = self.command(bytes((CMD_INFO, which)))
        length = answer[1]
        if len(answer) < 2 + length:
            raise LinkError(f"CMSIS-DAP probe {self.name}: DAP_Info 0x{which:02X} answer cut short")
        return answer[2 : 2 + length]

    def _info_text(self, which: int) -> str:
        return self.dap_info(which).split(b"\0", 1)[0].decode("utf-8", "replace")

    def _info_number(self, which: int, default: int) -> int:
        raw = self.dap_info(which)
        return int.from_bytes(raw, "little") if raw else default

    def _start(self) -> DapInfo:
        """DAP_Info, then connect the SWD port at the clock asked for."""
        size = self._info_number(INFO_PACKET_SIZE, 64)
        self.handle.packet_size = size
        info = DapInfo(
            packet_size=size,
            packet_count=max(1, self._info_number(INFO_PACKET_COUNT, 1)),
            capabilities=self._info_number(INFO_CAPABILITIES, CAPABILITY_SWD),
            serial=self._info_text(INFO_SERIAL),
            protocol=self._info_text(INFO_PROTOCOL),
            firmware=self._info_text(INFO_FIRMWARE),
            product=self._info_text(INFO_PRODUCT),
        )
        if size < MIN_PACKET:
            raise SwdError(f"CMSIS-DAP probe {self.name} reports a {size}-byte packet size")
        if not info.capabilities & CAPABILITY_SWD:
            raise SwdError(f"CMSIS-DAP probe {self.name} has no SWD (JTAG only): not supported")
        if self.command(bytes((CMD_CONNECT, PORT_SWD)))[1] != PORT_SWD:
            raise SwdError(f"CMSIS-DAP probe {self.name} did not switch to SWD (DAP_Connect)")
        clock = struct.pack("<BI", CMD_SWJ_CLOCK, self.clock_hz)
        self._status(clock, f"SWD clock {self.clock_hz} Hz")
        self._status(
            struct.pack("<BBHH", CMD_TRANSFER_CONFIGURE, 0, self.wait_retries, self.match_retries),
            "DAP_TransferConfigure",
        )
        self._status(bytes((CMD_HOST_STATUS, HOST_CONNECT, 1)), "DAP_HostStatus")
        return info

    def reopen(self) -> None:
        """Open the probe again (after an unplug) and set it up as before."""
        if self._reopen is None:
            raise LinkError(f"CMSIS-DAP probe {self.name} cannot be reopened")
        with contextlib.suppress(Exception):  # the old handle went with the device
            self.handle.close()
        handle = self._usb_open()
        self.handle, self.lost, self._bits, self._idle_due = handle, False, [], False
        self.info = self._start()

    def _usb_open(self) -> DapHandle:
        assert self._reopen is not None
        try:
            return self._reopen()
        except self.link_errors as err:
            raise LinkError(f"CMSIS-DAP probe {self.name} cannot be opened: {err}") from None

    def close(self) -> None:
        if not self.lost:
            try:
                self._status(bytes((CMD_HOST_STATUS, HOST_CONNECT, 0)), "DAP_HostStatus")
                self._status(bytes((CMD_DISCONNECT,)), "DAP_Disconnect")
            except HalError:
                pass  # closing anyway
        self.handle.close()

    def write_abort(self, value: int) -> None:
        """DAP_WriteABORT: the DP ABORT register, outside any transfer batch."""
        self._flush_sequence()
        self._status(struct.pack("<BBI", CMD_WRITE_ABORT, 0, value), "DAP_WriteABORT")

    # -- the line -------------------------------------------------------------------------

    def line_reset(self) -> None:
        self._bits += [1] * LINE_RESET_ONES
        self._idle_due = True

    def sequence(self, bits: int, count: int) -> None:
        self._bits += [(bits >> n) & 1 for n in range(count)]
        self._idle_due = False

    def _flush_sequence(self) -> None:
        """Send the queued line bits (a connect's reset, switch and reset go as one
        DAP_SWJ_Sequence), with idle clocks after a line reset."""
        if self._idle_due:
            self._bits += [0] * IDLE_BITS
            self._idle_due = False
        while self._bits:
            chunk, self._bits = self._bits[:256], self._bits[256:]
            data = bytes(
                sum(bit << n for n, bit in enumerate(chunk[pos : pos + 8]))
                for pos in range(0, len(chunk), 8)
            )
            self._status(bytes((CMD_SWJ_SEQUENCE, len(chunk) & 0xFF)) + data, "DAP_SWJ_Sequence")

    def set_reset(self, asserted: bool) -> None:
        """nRESET through DAP_SWJ_Pins (driven low while asserted)."""
        self._flush_sequence()
        output = 0 if asserted else PIN_NRESET
        self.command(struct.pack("<BBBI", CMD_SWJ_PINS, output, PIN_NRESET, 0))

    # -- transfers ------------------------------------------------------------------------

    def transfer(self, accesses: Sequence[Access]) -> list[int]:
        self._flush_sequence()
        commands = plan(accesses, self.info.packet_size)
        values: list[int] = []
        failure: HalError | None = None
        in_flight: list[_Command] = []
        sent = 0
        window = self.info.packet_count
        while in_flight or (failure is None and sent < len(commands)):
            while failure is None and sent < len(commands) and len(in_flight) < window:
                self._send(commands[sent].encode())
                in_flight.append(commands[sent])
                sent += 1
            command = in_flight.pop(0)
            answer = self._receive(CMD_TRANSFER_BLOCK if command.block else CMD_TRANSFER, 3)
            if failure is None:  # after a failure the rest in flight are only drained
                failure = self._answered(command, answer, accesses, values)
        if failure is not None:
            raise failure
        return values

    def _answered(
        self, command: _Command, answer: bytes, accesses: Sequence[Access], values: list[int]
    ) -> HalError | None:
        """Take the values of one answer; the error it reports, if any."""
        if command.block:
            if len(answer) < 4:
                return self._short(answer)
            count, response = struct.unpack_from("<HB", answer, 1)
            data = answer[4:]
        else:
            count, response = answer[1], answer[2]
            data = answer[3:]
        answered = [i for i in command.items[:count] if i.answers]
        if response == ACK_OK and count == len(command.items):
            if len(data) < 4 * len(answered):
                return self._short(answer)
            values += struct.unpack_from(f"<{len(answered)}I", data)
            return None
        failed = command.items[min(count, len(command.items) - 1)]
        access = accesses[failed.origin]
        ack = response & 7
        if response & VALUE_MISMATCH:
            value = self._read_once(access)
            return SwdMismatch(
                f"{access.name()} still reads 0x{value:08X} after {self.match_retries} match"
                f" retries on {self.name} (waiting for 0x{access.match:08X} under mask"
                f" 0x{access.mask or 0:08X})",
                value,
            )
        if response & PROTOCOL_ERROR:
            return SwdError(
                f"SWD protocol error (parity or line fault) at {access.name()} on {self.name}:"
                " check the wiring, lower clock="
            )
        if ack == ACK_FAULT:
            return SwdFault(f"{access.name()} answered FAULT", done=failed.origin)
        if ack == ACK_WAIT:
            return SwdError(
                f"{access.name()} still WAIT after {self.wait_retries} retries on {self.name}"
            )
        if ack == ACK_NONE:
            return SwdError(
                f"no acknowledge to {access.name()} on {self.name}: is a target there, powered"
                " (VTref) and wired (SWDIO, SWCLK, GND)?"
            )
        return SwdError(
            f"CMSIS-DAP probe {self.name} stopped at {access.name()} (response 0x{response:02X},"
            f" {count} of {len(command.items)} transfers)"
        )

    def _short(self, answer: bytes) -> LinkError:
        self.lost = True
        return LinkError(
            f"CMSIS-DAP probe {self.name}: transfer answer cut short ({len(answer)} bytes):"
            " unplug and re-plug the probe"
        )

    def _read_once(self, access: Access) -> int:
        """The register a match read waited on, read once more (for the message)."""
        try:
            return self.transfer([Access(access.ap, True, access.address)])[0]
        except SwdError:
            return 0
