"""STM32 ROM bootloader over a UART (ST AN3155; entry conditions per AN2606).

Every command is a byte and its complement, answered with ACK (0x79) or NACK (0x1F).
The host wakes the bootloader with 0x7F (it measures the baud rate on that byte), then
learns the command set with Get (0x00) -- Erase (0x43, 1-byte page numbers) or Extended
Erase (0x44, 2-byte page numbers) --, Get Version (0x01) and Get ID (0x02, the product ID
the device database lists as ``ids.stm32_pid``).

Addresses: the engine plans on 0-based offsets (``Geometry.base`` = ``flash_base``); this
module puts ``flash_base + offset`` on the wire. Flash pages/sectors come from the DB's
``flash_layout`` runs, numbered in order (F2/F4/F7 sectors are not uniform, so the
planner's uniform erase blocks are not used: ``erase_for`` erases exactly the pages or
sectors an image touches).

The bus is the site's serial link. When it is a :class:`app.hal.uart.UartLink` it also
drives BOOT0 and NRST (``enter_bootloader`` / ``run_application``); a plain SerialLink
works too, with the target put into its bootloader by hand.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from functools import reduce
from operator import xor
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
from app.hal.errors import LinkError

log = logging.getLogger(__name__)

ACK, NACK, SYNC = 0x79, 0x1F, 0x7F
CMD_GET, CMD_GET_VERSION, CMD_GET_ID = 0x00, 0x01, 0x02
CMD_READ, CMD_GO, CMD_WRITE = 0x11, 0x21, 0x31
CMD_ERASE, CMD_EXT_ERASE = 0x43, 0x44
CMD_READOUT_PROTECT, CMD_READOUT_UNPROTECT = 0x82, 0x92
BLOCK = 256  # Read/Write Memory carry at most 256 bytes
BAUD_FALLBACK = (115200, 57600, 38400, 19200, 9600)
SYNC_TRIES = 4
SYNC_TIMEOUT_S = 0.1
#: answers and data blocks (256 bytes take 0.3 s at 9600 baud); one value, because a
#: serial port re-applies its settings whenever the read timeout changes
ACK_TIMEOUT_S = 2.0
#: after Readout (Un)protect the part resets itself; time until its bootloader listens
REBOOT_S = 0.2
ERASE_CHUNK = 64  # pages per erase command: bounded ACK waits, progress between them
LEGACY_MAX_PAGE = 0xFF  # Erase (0x43) page numbers are one byte

TickerFactory = Callable[[int], Tick]


def _xor(data: bytes | bytearray) -> int:
    return reduce(xor, data, 0)


def _sector_erase_s(size: int) -> float:
    """Worst-case erase time of one page/sector (F4 128 KiB sector: ~4 s at x8)."""
    return max(0.05, size / 131072 * 4.0)


class BootloaderNack(ChipError):
    """The bootloader refused a command or its parameters."""


class ReadoutProtected(BootloaderNack):
    """Read Memory refused at the command byte: readout protection (RDP) is on."""


@register
class Stm32Uart(ChipAlgorithm):
    name = "stm32_uart"

    def __init__(self, bus: Any, params: Mapping[str, Any]) -> None:
        super().__init__(bus, params)
        self.base = hex_field(params.get("flash_base", "0x08000000"))
        self.size = int(params["size_bytes"])
        self.erased = hex_field(params.get("erased_value", "0xFF"))
        #: (offset, size) of every page/sector, numbered as the erase commands count them
        self.pages: list[tuple[int, int]] = []
        offset = 0
        for run in params.get("flash_layout") or [{"count": 1, "size_bytes": self.size}]:
            for _ in range(int(run["count"])):
                self.pages.append((offset, int(run["size_bytes"])))
                offset += int(run["size_bytes"])
        loader = params.get("bootloader") or {}
        #: the DB's idea until Get (0x00) answers; the bootloader's own list wins
        self.commands = {hex_field(c) for c in loader.get("commands", ())}
        self.extended_erase = loader.get("erase", "extended") == "extended"
        self.version: int | None = None
        self.option_bytes = b""
        self.pid: int | None = None
        self.synced = False
        chip_s = 2.0 + self.size / 131072 * 4.0
        smallest = min(size for _, size in self.pages)
        self._geometry = Geometry(
            size=self.size,
            page_size=min(BLOCK, smallest),
            erase_blocks=(),
            chip_erase=EraseBlock(
                CMD_EXT_ERASE if self.extended_erase else CMD_ERASE,
                self.size,
                chip_s * 250.0,
                chip_s * 1000.0,
            ),
            erased_value=self.erased,
            program_ms_typ=5.0,
            program_ms_max=50.0,
            base=self.base,
        )

    @property
    def geometry(self) -> Geometry:
        return self._geometry

    # -- link -----------------------------------------------------------------------

    def _lost(self, message: str) -> LinkError:
        lost = getattr(self.bus, "lost", None)
        return lost(message) if lost is not None else LinkError(message)

    def _write(self, data: bytes) -> None:
        self.bus.write(bytes(data))

    def _read(self, size: int, timeout_s: float, what: str) -> bytes:
        data = self.bus.read(size, timeout_s)
        if len(data) < size:
            raise self._lost(
                f"{what}: the bootloader sent {len(data)} of {size} bytes within {timeout_s:g} s"
            )
        return data

    def _ack(self, what: str, timeout_s: float = ACK_TIMEOUT_S) -> None:
        answer = self.bus.read(1, timeout_s)
        if answer == bytes([ACK]):
            return
        if answer == bytes([NACK]):
            raise BootloaderNack(f"{what}: the bootloader answered NACK")
        if not answer:
            raise self._lost(f"{what}: no answer from the bootloader within {timeout_s:g} s")
        raise ChipError(f"{what}: unexpected answer 0x{answer[0]:02X} (expected ACK 0x79)")

    def _command(self, cmd: int, what: str) -> None:
        if self.commands and cmd not in self.commands:
            raise ChipError(f"{what}: this bootloader does not offer command 0x{cmd:02X}")
        self._write(bytes([cmd, cmd ^ 0xFF]))
        self._ack(what)

    def _address(self, address: int, what: str) -> None:
        frame = address.to_bytes(4, "big")
        self._write(frame + bytes([_xor(frame)]))
        self._ack(what)

    # -- entering the bootloader ----------------------------------------------------

    def _bauds(self) -> list[int]:
        start = int(getattr(self.bus, "baud", BAUD_FALLBACK[0]) or BAUD_FALLBACK[0])
        if not callable(getattr(self.bus, "set_baud", None)):
            return [start]
        nominal = int(getattr(self.bus, "nominal_baud", start) or start)
        first = max(start, nominal)
        return [first] + [b for b in BAUD_FALLBACK if b < first]

    def _discard(self) -> None:
        discard = getattr(self.bus, "discard_input", None)
        if discard is not None:
            discard()
        else:
            self.bus.read(4096, 0)

    def _try_sync(self) -> bool:
        for _ in range(SYNC_TRIES):
            self._discard()
            self._write(bytes([SYNC]))
            answer = self.bus.read(1, SYNC_TIMEOUT_S)
            # ACK: the bootloader locked onto our baud rate. NACK: it was already synced
            # and took 0x7F (+ a previous 0x7F) as a bad command -- just as good.
            if answer in (bytes([ACK]), bytes([NACK])):
                return True
            if answer:
                log.debug("sync: unexpected 0x%02X", answer[0])
        return False

    def _sync(self, reset: bool = True) -> None:
        enter = getattr(self.bus, "enter_bootloader", None)
        tried: list[int] = []
        for i, baud in enumerate(self._bauds()):
            if getattr(self.bus, "baud", baud) != baud:
                self.bus.set_baud(baud)
            if enter is not None and (reset or i > 0):
                # The bootloader measures the baud rate on the first 0x7F after reset;
                # a failed attempt may have locked it to garbage: reset again.
                enter()
            tried.append(baud)
            if self._try_sync():
                self.synced = True
                if i:
                    log.info(
                        "STM32 bootloader answered at %d baud, not %s; put baud=%d in the"
                        " programmer URL to skip the slower tries",
                        baud,
                        ", ".join(str(b) for b in tried[:-1]),
                        baud,
                    )
                log.debug("STM32 bootloader synced at %d baud", baud)
                return
        port = getattr(self.bus, "port_name", "the serial port")
        wiring = (
            "BOOT0 high and a reset pulse come from the adapter's lines"
            if getattr(self.bus, "has_reset", False)
            else "no reset line is driven: set BOOT0 high and reset the board by hand"
        )
        raise ChipError(
            f"no answer from the STM32 bootloader on {port} (sent 0x7F at"
            f" {', '.join(str(b) for b in tried)} baud; {wiring}). Check TX->RX / RX->TX"
            " crossing, GND, the board's power, and that the UART is one AN2606 lists"
            " for this part (usually USART1 on PA9/PA10)"
        )

    def _get(self) -> None:
        self._write(bytes([CMD_GET, CMD_GET ^ 0xFF]))
        self._ack("Get (0x00)")
        count = self._read(1, ACK_TIMEOUT_S, "Get (0x00)")[0]
        body = self._read(count + 1, ACK_TIMEOUT_S, "Get (0x00)")
        self._ack("Get (0x00)")
        self.version = body[0]
        self.commands = set(body[1:])
        if CMD_EXT_ERASE in self.commands:
            self.extended_erase = True
        elif CMD_ERASE in self.commands:
            self.extended_erase = False

    def _get_version(self) -> None:
        self._command(CMD_GET_VERSION, "Get Version (0x01)")
        body = self._read(3, ACK_TIMEOUT_S, "Get Version (0x01)")
        self._ack("Get Version (0x01)")
        self.option_bytes = body[1:]

    def _get_id(self) -> bytes:
        self._command(CMD_GET_ID, "Get ID (0x02)")
        count = self._read(1, ACK_TIMEOUT_S, "Get ID (0x02)")[0]
        raw = self._read(count + 1, ACK_TIMEOUT_S, "Get ID (0x02)")
        self._ack("Get ID (0x02)")
        return raw[:2]

    def connect(self, reset: bool = True) -> bytes:
        """Enter the bootloader, sync, learn its commands; returns the 2-byte PID."""
        self._sync(reset)
        self._get()
        self._get_version()
        raw = self._get_id()
        self.pid = int.from_bytes(raw, "big")
        log.debug(
            "bootloader v%d.%d, PID 0x%03X, commands %s",
            (self.version or 0) >> 4,
            (self.version or 0) & 0xF,
            self.pid,
            " ".join(f"{c:02X}" for c in sorted(self.commands)),
        )
        return raw

    def _ensure_connected(self) -> None:
        if not self.synced:
            self.connect()

    # -- ChipAlgorithm ----------------------------------------------------------------

    def identify(self) -> ChipIdentity:
        return ChipIdentity("stm32_pid", self.connect(), True)

    def prepare(self) -> None:
        """Nothing to set: the bootloader measured the baud rate on 0x7F."""

    def read(self, start: int, length: int, tick: Tick) -> bytes:
        self._ensure_connected()
        out = bytearray()
        pos, end = start, start + length
        while pos < end:
            n = min(BLOCK, end - pos)
            out += self._read_block(self.base + pos, n)
            pos += n
            tick(pos - start)
        return bytes(out)

    def _read_block(self, address: int, n: int) -> bytes:
        what = f"Read Memory at 0x{address:08X}"
        try:
            self._command(CMD_READ, what)
        except BootloaderNack:
            raise ReadoutProtected(
                f"{what} refused (NACK): readout protection (RDP) is active;"
                " enable 'unprotect' to remove it (this mass-erases the flash)",
                address,
            ) from None
        try:
            self._address(address, what)
            self._write(bytes([n - 1, (n - 1) ^ 0xFF]))
            self._ack(what)
        except BootloaderNack as err:
            raise BootloaderNack(f"{err} (address or length not valid)", address) from None
        return self._read(n, ACK_TIMEOUT_S, what)

    def program(self, writes: Sequence[tuple[int, bytes]], tick: Tick) -> None:
        self._ensure_connected()
        done = 0
        for offset, data in writes:
            for first in range(0, len(data), BLOCK):
                self._write_block(self.base + offset + first, data[first : first + BLOCK])
            done += len(data)
            tick(done)

    def _write_block(self, address: int, data: bytes) -> None:
        what = f"Write Memory at 0x{address:08X}"
        if address % 4:
            raise ChipError(f"{what}: the address is not 4-byte aligned", address)
        if len(data) % 4:  # the bootloader writes whole words
            data = data + bytes([self.erased]) * (4 - len(data) % 4)
        try:
            self._command(CMD_WRITE, what)
        except BootloaderNack:
            raise ReadoutProtected(
                f"{what} refused (NACK): readout protection (RDP) is active", address
            ) from None
        self._address(address, what)
        frame = bytes([len(data) - 1]) + data
        self._write(frame + bytes([_xor(frame)]))
        try:
            self._ack(what)
        except BootloaderNack:
            raise BootloaderNack(
                f"{what} failed (NACK): page not erased, or write-protected (WRP option"
                " bytes; Write Unprotect 0x73 clears them)",
                address,
            ) from None

    # -- erase ------------------------------------------------------------------------

    def pages_for(self, ranges: Sequence[tuple[int, int]]) -> list[int]:
        """Numbers of the pages/sectors overlapping the 0-based ``ranges``, ascending."""
        wanted: set[int] = set()
        for lo, hi in ranges:
            for number, (start, size) in enumerate(self.pages):
                if start < hi and start + size > lo:
                    wanted.add(number)
        return sorted(wanted)

    def _spans(self, numbers: Sequence[int]) -> list[tuple[int, int]]:
        spans: list[tuple[int, int]] = []
        for number in numbers:
            start, size = self.pages[number]
            if spans and spans[-1][1] == start:
                spans[-1] = (spans[-1][0], start + size)
            else:
                spans.append((start, start + size))
        return spans

    def erase_for(
        self, ranges: Sequence[tuple[int, int]], ticker: TickerFactory
    ) -> list[tuple[int, int]]:
        """Erase exactly the pages/sectors overlapping the 0-based ``ranges``.

        ``ticker(total_bytes)`` makes the progress callback (the engine's
        ``cycle.ticker``). Returns the erased 0-based spans, for the erase verify.
        """
        numbers = self.pages_for(ranges)
        self.erase_pages(numbers, ticker(sum(self.pages[n][1] for n in numbers)))
        return self._spans(numbers)

    def erase_pages(self, numbers: Sequence[int], tick: Tick) -> None:
        self._ensure_connected()
        done = 0
        for first in range(0, len(numbers), ERASE_CHUNK):
            chunk = list(numbers[first : first + ERASE_CHUNK])
            self._erase_command(chunk)
            done += sum(self.pages[n][1] for n in chunk)
            tick(done)

    def _erase_command(self, numbers: list[int]) -> None:
        where = self._spans(numbers)
        what = (
            f"erase of {len(numbers)} page(s) at"
            f" {', '.join(f'0x{self.base + lo:08X}..0x{self.base + hi:08X}' for lo, hi in where)}"
        )
        timeout = ACK_TIMEOUT_S + sum(_sector_erase_s(self.pages[n][1]) for n in numbers)
        address = self.base + self.pages[numbers[0]][0]
        if self.extended_erase:
            self._command(CMD_EXT_ERASE, what)
            frame = (len(numbers) - 1).to_bytes(2, "big") + b"".join(
                n.to_bytes(2, "big") for n in numbers
            )
        else:
            if numbers[-1] > LEGACY_MAX_PAGE:
                raise ChipError(
                    f"{what}: page {numbers[-1]} is beyond the reach of Erase (0x43), whose"
                    " page numbers are one byte; use a full erase",
                    address,
                )
            self._command(CMD_ERASE, what)
            frame = bytes([len(numbers) - 1, *numbers])
        self._write(frame + bytes([_xor(frame)]))
        try:
            self._ack(what, timeout)
        except BootloaderNack:
            raise BootloaderNack(
                f"{what} failed (NACK): write-protected sector or page number out of range",
                address,
            ) from None

    def erase_blocks(self, blocks: Sequence[tuple[EraseBlock, int]], tick: Tick) -> None:
        ranges = [(address, address + block.size) for block, address in blocks]
        self.erase_pages(self.pages_for(ranges), tick)

    def erase_chip(self) -> None:
        self._ensure_connected()
        timeout = ACK_TIMEOUT_S + self._geometry.chip_erase.ms_max / 1000.0  # type: ignore[union-attr]
        if self.extended_erase:
            self._command(CMD_EXT_ERASE, "mass erase (0x44 0xFFFF)")
            self._write(b"\xff\xff\x00")
        else:
            self._command(CMD_ERASE, "global erase (0x43 0xFF)")
            self._write(b"\xff\x00")
        try:
            self._ack("mass erase", timeout)
        except BootloaderNack:
            # Some parts (STM32L1, dual-bank F4/H7 bootloaders) refuse the mass-erase
            # code: erase page by page instead.
            log.info("mass erase refused; erasing all %d pages one by one", len(self.pages))
            self.erase_pages(range(len(self.pages)), lambda _n: None)

    # -- protection -------------------------------------------------------------------

    def protection(self) -> Protection:
        self._ensure_connected()
        try:
            self._read_block(self.base, 4)
        except ReadoutProtected:
            return Protection(
                True,
                "readout protection (RDP) is active: the bootloader refuses Read Memory;"
                " removing it mass-erases the flash",
            )
        return Protection(False, "readout protection off")

    def unprotect(self) -> None:
        """Readout Unprotect: the part mass-erases, clears RDP and resets itself."""
        self._ensure_connected()
        self._command(CMD_READOUT_UNPROTECT, "Readout Unprotect (0x92)")
        timeout = ACK_TIMEOUT_S + self._geometry.chip_erase.ms_max / 1000.0  # type: ignore[union-attr]
        self._ack("Readout Unprotect (0x92): mass erase", timeout)
        self.synced = False
        # BOOT0 is still high, so the part comes back in its bootloader: sync again
        # without a reset pulse of our own.
        time.sleep(REBOOT_S)
        self.connect(reset=False)
        if self.protection().protected:
            raise ChipError(
                "readout protection is still active after Readout Unprotect; power-cycle"
                " the board (some parts load option bytes only at power-on)"
            )

    def protect(self) -> None:
        """Readout Protect (level 1); the part resets to apply it."""
        self._ensure_connected()
        self._command(CMD_READOUT_PROTECT, "Readout Protect (0x82)")
        self._ack("Readout Protect (0x82)", ACK_TIMEOUT_S + 1.0)
        self.synced = False

    # -- leaving ----------------------------------------------------------------------

    def finish(self, run_application: bool = True) -> None:
        """End of the cycle: release BOOT0 and pulse reset, so the board runs its
        (new) firmware; with ``run_application`` False (a failed cycle) the part stays
        in its bootloader. Without a reset line the bootloader keeps running."""
        self.synced = False
        if not run_application:
            return
        run = getattr(self.bus, "run_application", None)
        if run is not None and not run():
            log.debug("no reset line: the target stays in its bootloader")
