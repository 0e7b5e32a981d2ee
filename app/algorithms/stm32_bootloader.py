"""The STM32 ROM bootloader's UART protocol (ST AN3155; entry conditions per AN2606).

Every command is a byte and its complement, answered with ACK (0x79) or NACK (0x1F).
The host wakes the bootloader with 0x7F (it measures the baud rate on that byte), then
learns the command set with Get (0x00) -- Erase (0x43, 1-byte page numbers) or Extended
Erase (0x44, 2-byte page numbers) --, Get Version (0x01) and Get ID (0x02, the product ID
the device database lists as ``ids.stm32_pid``).

:class:`Stm32Bootloader` is one session on a serial link and needs no device facts, so
``detect`` can name an unknown part; the ``stm32_uart`` algorithm drives it with the
part's flash layout. The link (a :class:`app.hal.bus.BootloaderLink`) also drives BOOT0
and NRST (``enter_bootloader`` / ``run_application``); on a link without a reset line
the target is put into its bootloader by hand.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from functools import reduce
from operator import xor

from app.algorithms.base import ChipError
from app.devicedb.facts import BootloaderFacts
from app.hal.bus import BootloaderLink
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
LEGACY_MAX_PAGE = 0xFF  # Erase (0x43) page numbers are one byte


def _xor(data: bytes | bytearray) -> int:
    return reduce(xor, data, 0)


class BootloaderNack(ChipError):
    """The bootloader refused a command or its parameters."""


class ReadoutProtected(BootloaderNack):
    """Read Memory refused at the command byte: readout protection (RDP) is on."""


class Stm32Bootloader:
    """One AN3155 session on ``link``. ``expected`` (the DB's bootloader facts) says
    which commands to allow until Get (0x00) answers with the bootloader's own list."""

    def __init__(self, link: BootloaderLink, expected: BootloaderFacts | None = None) -> None:
        self.link = link
        self.commands: set[int] = set(expected.commands) if expected else set()
        #: Extended Erase (0x44) or Erase (0x43); None until known
        self.extended_erase: bool | None = expected.extended_erase if expected else None
        self.version: int | None = None
        self.option_bytes = b""
        self.pid: int | None = None
        self.synced = False

    # -- frames ---------------------------------------------------------------------

    def _lost(self, message: str) -> LinkError:
        return self.link.lost(message)

    def _write(self, data: bytes) -> None:
        self.link.write(bytes(data))

    def _read(self, size: int, timeout_s: float, what: str) -> bytes:
        data = self.link.read(size, timeout_s)
        if len(data) < size:
            raise self._lost(
                f"{what}: the bootloader sent {len(data)} of {size} bytes within {timeout_s:g} s"
            )
        return data

    def _ack(self, what: str, timeout_s: float = ACK_TIMEOUT_S) -> None:
        answer = self.link.read(1, timeout_s)
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
        first = max(self.link.baud, self.link.nominal_baud)
        return [first] + [b for b in BAUD_FALLBACK if b < first]

    def _try_sync(self) -> bool:
        for _ in range(SYNC_TRIES):
            self.link.discard_input()
            self._write(bytes([SYNC]))
            answer = self.link.read(1, SYNC_TIMEOUT_S)
            # ACK: the bootloader locked onto our baud rate. NACK: it was already synced
            # and took 0x7F (+ a previous 0x7F) as a bad command -- just as good.
            if answer in (bytes([ACK]), bytes([NACK])):
                return True
            if answer:
                log.debug("sync: unexpected 0x%02X", answer[0])
        return False

    def _sync(self, reset: bool = True) -> None:
        tried: list[int] = []
        for i, baud in enumerate(self._bauds()):
            if self.link.baud != baud:
                self.link.set_baud(baud)
            if reset or i > 0:
                # The bootloader measures the baud rate on the first 0x7F after reset;
                # a failed attempt may have locked it to garbage: reset again.
                self.link.enter_bootloader()
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
        port = self.link.port_name
        wiring = (
            "BOOT0 high and a reset pulse come from the adapter's lines"
            if self.link.has_reset
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

    def ensure_connected(self) -> None:
        if not self.synced:
            self.connect()

    # -- memory ---------------------------------------------------------------------

    def read_memory(self, address: int, n: int) -> bytes:
        """Read Memory (0x11): ``n`` (1..256) bytes at ``address``."""
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

    def write_memory(self, address: int, data: bytes) -> None:
        """Write Memory (0x31): at most 256 bytes, a whole number of words, at a
        word-aligned ``address``."""
        what = f"Write Memory at 0x{address:08X}"
        if address % 4:
            raise ChipError(f"{what}: the address is not 4-byte aligned", address)
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

    def erase(self, numbers: Sequence[int], what: str, address: int, timeout_s: float) -> None:
        """Erase the pages/sectors ``numbers`` (ascending) with the erase command the
        bootloader offers; ``what`` and ``address`` name them in errors."""
        if self.extended_erase:
            self._command(CMD_EXT_ERASE, what)
            frame = (len(numbers) - 1).to_bytes(2, "big") + b"".join(
                n.to_bytes(2, "big") for n in numbers
            )
        elif self.extended_erase is None:
            raise ChipError(f"{what}: the bootloader offers no erase command", address)
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
            self._ack(what, timeout_s)
        except BootloaderNack:
            raise BootloaderNack(
                f"{what} failed (NACK): write-protected sector or page number out of range",
                address,
            ) from None

    def mass_erase(self, timeout_s: float) -> None:
        """Erase the whole flash; BootloaderNack when the part refuses the mass-erase
        code (STM32L1, dual-bank F4/H7 bootloaders)."""
        if self.extended_erase:
            self._command(CMD_EXT_ERASE, "mass erase (0x44 0xFFFF)")
            self._write(b"\xff\xff\x00")
        else:
            self._command(CMD_ERASE, "global erase (0x43 0xFF)")
            self._write(b"\xff\x00")
        self._ack("mass erase", timeout_s)

    # -- readout protection -----------------------------------------------------------

    def readout_unprotect(self, timeout_s: float) -> None:
        """Readout Unprotect (0x92): the part mass-erases, clears RDP and resets; BOOT0
        is still high, so it comes back in its bootloader and is synced again without a
        reset pulse of our own."""
        self._command(CMD_READOUT_UNPROTECT, "Readout Unprotect (0x92)")
        self._ack("Readout Unprotect (0x92): mass erase", timeout_s)
        self.synced = False
        time.sleep(REBOOT_S)
        self.connect(reset=False)

    def readout_protect(self) -> None:
        """Readout Protect (0x82, level 1); the part resets to apply it."""
        self._command(CMD_READOUT_PROTECT, "Readout Protect (0x82)")
        self._ack("Readout Protect (0x82)", ACK_TIMEOUT_S + 1.0)
        self.synced = False

    def leave(self, run_application: bool) -> None:
        """End of the session: with ``run_application``, release BOOT0 and pulse reset so
        the board runs its firmware; otherwise the part stays in its bootloader. Without
        a reset line the bootloader keeps running."""
        self.synced = False
        if not run_application:
            return
        if not self.link.run_application():
            log.debug("no reset line: the target stays in its bootloader")
