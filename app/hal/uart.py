"""A serial port wired to a microcontroller's ROM bootloader (STM32 AN3155 and alike).

``uart:///dev/ttyUSB0?baud=115200&reset=dtr&boot0=rts`` opens a programmer with one
in-system site whose ``uart`` is a :class:`UartLink` (pyserial, 8E1 by default).

Options:
- ``baud``: the first baud rate tried (default 115200); algorithms may fall back lower.
- ``parity``: ``even`` (default; the STM32 bootloader needs 8E1) or ``none``.
- ``reset`` / ``boot0``: the modem line wired to NRST / BOOT0: ``dtr``, ``rts`` or
  ``none`` (defaults ``dtr`` and ``rts``).
- ``invert``: comma list of ``reset`` and/or ``boot0`` whose line is active high.
- ``serial``: find the port by the adapter's USB serial number instead of a path
  (``uart://?serial=A50285BI``); a lost link is reopened by that number.
- ``connection=in-system|socket`` (default in-system), ``power=board|programmer``
  (default board: a USB-UART adapter does not switch target power).

Line levels: Socketeer drives *pins*, not modem-line logic. USB-UART adapters (FT232R,
CP210x, CH340, PL2303) have active-low DTR#/RTS# outputs: an asserted line is a low pin.
So without ``invert`` a wire goes straight from DTR# to NRST (asserting DTR resets the
target) and from RTS# to BOOT0 (BOOT0 high = RTS released). ``invert=`` names a line
whose pin is active high, e.g. behind an NPN transistor stage.

Design choice: the engine hands an algorithm only the site's bus (``site.uart``), so the
link carries what the bootloader algorithm needs from the site: ``enter_bootloader()``,
``run_application()``, ``has_reset``, and ``lost()`` (marks ``site.link_lost``); ``site``
is a back-reference to the :class:`UartSite`.

On a pseudo-terminal (tests, emulators, some virtual ports) the modem-line ioctls fail:
a line that cannot be driven is treated as not wired (debug log), never as an error.
"""

from __future__ import annotations

import errno
import logging
import time
from collections.abc import Mapping
from typing import Any

import serial
from serial.tools import list_ports

from app.hal.errors import HalError, LinkError, ProgrammerUrlError
from app.hal.port_errors import PORT_ERRORS, port_errno, port_error_text
from app.hal.programmer import (
    Capabilities,
    Indication,
    ParsedUrl,
    check_options,
    choice,
    connection_options,
    int_option,
    register_scheme,
)

log = logging.getLogger(__name__)

DEFAULT_BAUD = 115200
#: NRST low time; boards often have 100 nF on NRST, so generous.
RESET_PULSE_S = 0.05
#: time from NRST release until the ROM bootloader listens
BOOT_SETTLE_S = 0.1
_KNOWN_OPTIONS = {"baud", "parity", "reset", "boot0", "invert", "serial", "connection", "power"}
_LINES = ("dtr", "rts")
_NO_LINE_ERRNOS = {errno.EINVAL, errno.ENOTTY, errno.ENOSYS, errno.EOPNOTSUPP}


class UartLink:
    """SerialLink over pyserial, plus the target's reset and BOOT0 lines."""

    def __init__(
        self,
        site: UartSite,
        *,
        baud: int,
        parity: str,
        reset_line: str | None,
        boot0_line: str | None,
        invert: frozenset[str],
    ) -> None:
        self.site = site
        self.nominal_baud = baud
        self.parity = parity
        self.reset_line = reset_line
        self.boot0_line = boot0_line
        self.invert = invert
        self._baud = baud
        self._port: Any = None  # serial.Serial while open
        self._timeout: float | None = None
        self._dead_lines: set[str] = set()

    # -- opening --------------------------------------------------------------------

    @property
    def port_name(self) -> str:
        return self.site.port_name()

    def open(self) -> None:
        """Open the port with the lines at rest (reset released, BOOT0 low)."""
        port = serial.Serial()
        port.port = self.port_name
        port.baudrate = self._baud
        port.bytesize = serial.EIGHTBITS
        port.parity = serial.PARITY_EVEN if self.parity == "even" else serial.PARITY_NONE
        port.stopbits = serial.STOPBITS_ONE
        port.timeout = self._timeout = 0.5
        # Set before open so the adapter never glitches the target into reset.
        rest = self._rest_levels()
        if "dtr" in rest:
            port.dtr = rest["dtr"]
        if "rts" in rest:
            port.rts = rest["rts"]
        try:
            port.open()
        except PORT_ERRORS as err:
            raise _open_error(self.port_name, err) from None
        self._port = port
        self._dead_lines.clear()
        for line, level in rest.items():
            self._drive(line, level)
        self._low_latency(port)

    def _low_latency(self, port: Any) -> None:
        """Ask the driver to pass on every byte at once. FTDI adapters otherwise hold a
        short answer up to their latency timer (16 ms by default) -- and AN3155 waits for
        a 1-byte ACK after every part of every command. Ports without the setting
        (pseudo-terminals, other drivers, Windows) keep theirs."""
        setter = getattr(port, "set_low_latency_mode", None)
        if setter is None:
            return
        try:
            setter(True)
        except (NotImplementedError, ValueError, OSError) as err:  # pyserial: ValueError
            log.debug("%s: no low-latency mode: %s", self.port_name, err)

    def _rest_levels(self) -> dict[str, bool]:
        levels: dict[str, bool] = {}
        if self.reset_line:
            levels[self.reset_line] = self._reset_level(False)
        if self.boot0_line:
            levels[self.boot0_line] = self._boot0_level(False)
        return levels

    # -- SerialLink -----------------------------------------------------------------

    def _require(self) -> Any:
        if self._port is None:
            raise self.lost(f"serial port {self.port_name} is not open")
        return self._port

    def write(self, data: bytes) -> None:
        port = self._require()
        try:
            port.write(data)
        except PORT_ERRORS as err:
            raise self.lost(f"write to {self.port_name} failed: {err}") from None

    def read(self, size: int, timeout_s: float) -> bytes:
        """Up to ``size`` bytes; short (maybe empty) when ``timeout_s`` passes first."""
        port = self._require()
        try:
            if timeout_s != self._timeout:
                self._set_timeout(port, timeout_s)
            return bytes(port.read(size))
        except PORT_ERRORS as err:
            raise self.lost(f"read from {self.port_name} failed: {err}") from None

    def _set_timeout(self, port: Any, timeout_s: float) -> None:
        try:
            port.timeout = timeout_s
        except PORT_ERRORS as err:  # termios.error is no OSError
            # pyserial stores the value, then re-applies the termios settings. A
            # pseudo-terminal refuses a set that only asks for parity again (EINVAL);
            # on POSIX pyserial times reads out with select(), so the value still holds.
            if port.timeout != timeout_s:
                raise self.lost(f"setting a timeout on {self.port_name} failed: {err}") from None
            log.debug("%s: timeout set, termios refused the rest: %s", self.port_name, err)
        self._timeout = timeout_s

    def discard_input(self) -> bytes:
        """Drop (and return) whatever the target sent that nobody read yet."""
        port = self._require()
        try:
            waiting = port.in_waiting
            return bytes(port.read(waiting)) if waiting else b""
        except PORT_ERRORS as err:
            raise self.lost(f"read from {self.port_name} failed: {err}") from None

    @property
    def baud(self) -> int:
        return self._baud

    def set_baud(self, baud: int) -> None:
        port = self._require()
        try:
            port.baudrate = baud
        except ValueError as err:
            raise HalError(f"{self.port_name}: baud rate {baud} not accepted: {err}") from None
        except PORT_ERRORS as err:
            raise self.lost(f"setting {baud} baud on {self.port_name} failed: {err}") from None
        self._baud = baud

    def set_lines(self, *, dtr: bool | None = None, rts: bool | None = None) -> None:
        """Drive the modem lines (True = asserted, i.e. a low pin on most adapters)."""
        if dtr is not None:
            self._drive("dtr", dtr)
        if rts is not None:
            self._drive("rts", rts)

    def close(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            try:
                port.close()
            except PORT_ERRORS as err:
                log.debug("closing %s: %s", self.port_name, err)

    @property
    def is_open(self) -> bool:
        return self._port is not None

    def lost(self, message: str) -> LinkError:
        """Mark the site's link lost; returns the error for the caller to raise."""
        self.site.link_lost = True
        return LinkError(message)

    # -- reset and BOOT0 ------------------------------------------------------------

    def _drive(self, line: str, level: bool) -> None:
        if line in self._dead_lines:
            return
        port = self._require()
        try:
            setattr(port, line, level)
        except PORT_ERRORS as err:  # serial.SerialException is an OSError too
            if port_errno(err) in _NO_LINE_ERRNOS:
                # Pseudo-terminals and some virtual ports have no modem lines.
                log.debug(
                    "%s: %s line not available (%s); treated as not wired",
                    self.port_name,
                    line.upper(),
                    err,
                )
                self._dead_lines.add(line)
                return
            raise self.lost(f"setting {line.upper()} on {self.port_name} failed: {err}") from None

    def _reset_level(self, asserted: bool) -> bool:
        # Active-low pin (the adapter's default): asserting the line pulls NRST low.
        return asserted != ("reset" in self.invert)

    def _boot0_level(self, high: bool) -> bool:
        # Active-low pin: BOOT0 high = line released.
        return (not high) != ("boot0" in self.invert)

    def _usable(self, line: str | None) -> bool:
        return line is not None and line not in self._dead_lines

    @property
    def has_reset(self) -> bool:
        """True when a reset line is wired and the port can drive it."""
        return self._usable(self.reset_line)

    @property
    def has_boot0(self) -> bool:
        return self._usable(self.boot0_line)

    def set_reset(self, asserted: bool) -> None:
        if self.reset_line:
            self._drive(self.reset_line, self._reset_level(asserted))

    def set_boot0(self, high: bool) -> None:
        if self.boot0_line:
            self._drive(self.boot0_line, self._boot0_level(high))

    def pulse_reset(self, settle: bool = True) -> bool:
        """Reset the target; False when no reset line can be driven. With ``settle``,
        wait until the ROM bootloader listens and drop what the reset left behind."""
        if not self.has_reset:
            return False
        self.set_reset(True)
        time.sleep(RESET_PULSE_S)
        self.set_reset(False)
        if settle:
            time.sleep(BOOT_SETTLE_S)
            self.discard_input()  # a reset can leave a glitch byte behind
        return True

    def enter_bootloader(self) -> bool:
        """BOOT0 high + reset pulse. False if there is no reset line: the target must
        already be in its bootloader (BOOT0 jumper and reset button)."""
        self.set_boot0(True)
        return self.pulse_reset()

    def run_application(self) -> bool:
        """BOOT0 low + reset pulse, so the target runs its flash. False without reset.
        Nothing waits for the application: the host says nothing more to it."""
        self.set_boot0(False)
        return self.pulse_reset(settle=False)


class UartSite:
    """The one site of a UART programmer: a target board on the adapter's wires."""

    def __init__(
        self,
        path: str,
        usb_serial: str | None,
        *,
        in_system: bool,
        board_powered: bool,
        baud: int,
        parity: str,
        reset_line: str | None,
        boot0_line: str | None,
        invert: frozenset[str],
    ) -> None:
        self.index = 1
        self.adapter_id: str | None = None
        self.spi = None
        self.i2c = None
        self.microwire = None
        self.swd = None
        self.insertions = 0  # no socket: not counted here
        self.in_system = in_system
        self.board_powered = board_powered
        self.link_lost = False
        self.path = path
        self.usb_serial = usb_serial
        self.uart = UartLink(
            self,
            baud=baud,
            parity=parity,
            reset_line=reset_line,
            boot0_line=boot0_line,
            invert=invert,
        )

    def port_name(self) -> str:
        """The port path; looked up by USB serial number when the URL gave one."""
        if not self.usb_serial:
            return self.path
        for info in list_ports.comports():
            if info.serial_number == self.usb_serial:
                self.path = str(info.device)
                return self.path
        return self.path or f"<USB serial {self.usb_serial}>"

    def power(self, on: bool, voltage_mv: int | None = None) -> None:
        """A USB-UART adapter switches no power; the board powers itself."""
        if on and voltage_mv is not None:
            log.debug("uart site: no power switch; the board must be powered (%d mV)", voltage_mv)

    def part_present(self) -> bool:
        return True

    def indicate(self, state: Indication) -> None:
        """No LEDs on a USB-UART adapter."""

    def set_reset(self, asserted: bool) -> None:
        self.uart.set_reset(asserted)

    def set_boot0(self, high: bool) -> None:
        self.uart.set_boot0(high)

    def reconnect(self) -> bool:
        """Reopen the same port (by path, or by USB serial number)."""
        self.uart.close()
        try:
            self.uart.open()
        except HalError as err:
            log.info("uart site: reconnect failed: %s", err)
            return False
        self.link_lost = False
        return True

    def close(self) -> None:
        self.uart.close()


class UartProgrammer:
    name = "USB-UART adapter"

    def __init__(self, url: str, site: UartSite) -> None:
        self.url = url
        self._site = site
        self.capabilities = Capabilities(buses=frozenset({"uart"}))

    @property
    def sites(self) -> list[UartSite]:
        return [self._site]

    def close(self) -> None:
        self._site.close()


def _open_error(path: str, err: BaseException) -> HalError:
    code = port_errno(err)
    if code == errno.ENOENT:
        ports = ", ".join(sorted(p.device for p in list_ports.comports())) or "none found"
        return HalError(f"no serial port {path} (is the adapter plugged in? ports: {ports})")
    if code in (errno.EACCES, errno.EPERM):
        return HalError(
            f"permission denied opening {path}: add yourself to the 'dialout' group"
            " (sudo usermod -aG dialout $USER, then log in again) or install a udev rule"
            " that grants access to the adapter"
        )
    if code == errno.EBUSY:
        return HalError(f"serial port {path} is busy: another program has it open")
    return HalError(f"cannot open serial port {path}: {port_error_text(err)}")


@register_scheme("uart")
def open_uart(parsed: ParsedUrl, context: Mapping[str, object]) -> UartProgrammer:
    options = parsed.options
    check_options(parsed, _KNOWN_OPTIONS)
    usb_serial = options.get("serial") or None
    if not parsed.path and not usb_serial:
        raise ProgrammerUrlError(
            "uart URL names no port: uart:///dev/ttyUSB0, uart://COM3 or uart://?serial=..."
        )
    reset = choice(parsed, "reset", "dtr", (*_LINES, "none"))
    boot0 = choice(parsed, "boot0", "rts", (*_LINES, "none"))
    if reset == boot0 != "none":
        raise ProgrammerUrlError(f"uart options reset and boot0 both name {reset.upper()}")
    invert = frozenset(
        part.strip().lower() for part in options.get("invert", "").split(",") if part.strip()
    )
    if invert - {"reset", "boot0"}:
        raise ProgrammerUrlError(
            f"uart option invert={options['invert']!r}: expected reset, boot0 or reset,boot0"
        )
    in_system, board_powered = connection_options(parsed, in_system=True, board_powered=True)
    site = UartSite(
        parsed.path,
        usb_serial,
        in_system=in_system,
        board_powered=board_powered,
        baud=int_option(parsed, "baud", DEFAULT_BAUD, 300, 4_000_000),
        parity=choice(parsed, "parity", "even", ("even", "none")),
        reset_line=None if reset == "none" else reset,
        boot0_line=None if boot0 == "none" else boot0,
        invert=invert,
    )
    site.uart.open()
    where = parsed.path or f"?serial={usb_serial}"
    return UartProgrammer(f"{parsed.scheme}://{where}", site)
