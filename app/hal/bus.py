"""Bus interfaces the algorithms are written against.

A SPI bus takes a *batch* of chip-select-framed operations per call: batching is what
makes real links fast (one USB or serial round trip for WREN + PAGE PROGRAM + the first
status poll) and it is what the simulator executes directly. A batch may contain a
``WaitReady`` step: the programmer polls the status register until the part is ready,
on the programmer side where it can (FTDI MPSSE), on the host otherwise, on the learned
schedule of app.hal.busy_poll.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from app.hal.errors import LinkError


@dataclass(frozen=True)
class SpiOp:
    """One chip-select-framed transaction: send ``write``, then clock in ``read_len`` bytes."""

    write: bytes
    read_len: int = 0


@dataclass(frozen=True)
class WaitReady:
    """Poll a status register (``opcode``) until ``status & mask == value``.

    Returns the last status byte read as its result. Raises BusTimeout when a read
    after ``timeout_s`` (the datasheet maximum) still finds the part busy. ``hint_s`` is
    the datasheet's typical time and ``kind`` names the operation ("page program",
    "erase 64K"): a poller (app.hal.busy_poll) starts from the typical time and learns,
    per kind, how long the part really takes.
    """

    opcode: int = 0x05
    mask: int = 0x01
    value: int = 0x00
    timeout_s: float = 1.0
    hint_s: float = 0.0
    kind: str = ""


SpiStep = SpiOp | WaitReady


@runtime_checkable
class SpiBus(Protocol):
    @property
    def max_clock_hz(self) -> int:
        """The fastest clock this bus offers (the programmer's limit)."""
        ...

    def set_clock(self, hz: int) -> int:
        """Ask for ``hz``; returns the clock actually used (never above the request)."""
        ...

    def transfer(self, ops: Sequence[SpiStep]) -> list[bytes]:
        """Run ``ops`` in order; one result per op (b"" for write-only ops)."""
        ...


@dataclass(frozen=True)
class MicrowireOp:
    """One chip-select frame on a Microwire bus (CS active *high*): clock out the
    ``count`` low bits of ``bits``, most significant first, then clock in ``read_bits``
    bits (the result, most significant first, as an int). A part ignores zeros before
    the start bit, so a frame may be padded with leading zeros."""

    bits: int
    count: int
    read_bits: int = 0


@dataclass(frozen=True)
class ReadyWait:
    """Wait for a Microwire part's self-timed cycle: CS low (tCSL), then CS high, and
    DO reads 0 while the part is busy, 1 when it is ready. Raises BusTimeout when a read
    after ``timeout_s`` still finds it busy; ``hint_s`` and ``kind`` as in WaitReady."""

    timeout_s: float
    hint_s: float = 0.0
    kind: str = ""


MicrowireStep = MicrowireOp | ReadyWait


@runtime_checkable
class MicrowireBus(Protocol):
    """The 93xx three-wire bus: bit-level frames, not bytes (a READ of a 93C46 in x8
    is 10 bits out, then a dummy 0 and the data)."""

    @property
    def max_clock_hz(self) -> int: ...

    def set_clock(self, hz: int) -> int:
        """Ask for ``hz``; returns the clock actually used (never above the request)."""
        ...

    def transfer(self, ops: Sequence[MicrowireStep]) -> list[int]:
        """Run ``ops`` in order; one result per op (0 for write-only ops, the DO level
        1 for a ReadyWait that found the part ready)."""
        ...


@runtime_checkable
class I2cBus(Protocol):
    @property
    def clock_hz(self) -> int: ...

    def write(self, address: int, data: bytes) -> None:
        """START, 7-bit ``address`` + W, ``data``, STOP. Raises I2cNack."""
        ...

    def write_read(self, address: int, data: bytes, read_len: int) -> bytes:
        """Write ``data`` (may be empty), repeated START, read ``read_len`` bytes."""
        ...

    def wait_ack(self, address: int, timeout_s: float, hint_s: float = 0.0) -> None:
        """Acknowledge polling: address the part until it ACKs. Raises BusTimeout."""
        ...


@runtime_checkable
class SerialLink(Protocol):
    """A byte stream with modem-control lines."""

    @property
    def port_name(self) -> str:
        """The port as the operator knows it (``/dev/ttyUSB0``, ``COM3``), for messages."""
        ...

    @property
    def baud(self) -> int:
        """The baud rate in use now."""
        ...

    def write(self, data: bytes) -> None: ...

    def read(self, size: int, timeout_s: float) -> bytes:
        """Up to ``size`` bytes; short (maybe empty) when ``timeout_s`` passes first."""
        ...

    def discard_input(self) -> bytes:
        """Drop (and return) whatever arrived that nobody read yet."""
        ...

    def set_baud(self, baud: int) -> None: ...

    def set_lines(self, *, dtr: bool | None = None, rts: bool | None = None) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class BootloaderLink(SerialLink, Protocol):
    """A serial link to a microcontroller's ROM bootloader (a site's ``uart``): the
    target's reset and BOOT0 lines come with it, because an algorithm is handed only
    its bus. Lines the adapter cannot drive are declared (``has_reset``), not probed:
    ``enter_bootloader`` and ``run_application`` then return False and the operator
    sets BOOT0 and resets the board by hand."""

    @property
    def nominal_baud(self) -> int:
        """The baud rate the programmer URL asked for (the first one tried)."""
        ...

    @property
    def has_reset(self) -> bool:
        """True when a reset line is wired and can be driven."""
        ...

    def enter_bootloader(self) -> bool:
        """BOOT0 high + reset pulse; False when there is no reset line."""
        ...

    def run_application(self) -> bool:
        """BOOT0 low + reset pulse, so the target runs its flash; False without reset."""
        ...

    def lost(self, message: str) -> LinkError:
        """Mark the site's link lost (the next cycle reconnects first); returns the
        error for the caller to raise."""
        ...


@runtime_checkable
class DebugAccess(Protocol):
    """A microcontroller's memory and access ports through its debug port (SWD): the
    memory-level interface both a DP/AP transfer probe (app.hal.debug_port over
    CMSIS-DAP, FTDI, the simulator) and a memory-level probe (ST-LINK) offer."""

    @property
    def name(self) -> str:
        """The probe, as shown to the user."""
        ...

    def connect(self, *, under_reset: bool = False) -> int:
        """Attach to the debug port (NRST held low first when ``under_reset``, and left
        low); the DP IDCODE. Raises HalError when nothing answers."""
        ...

    def read_words(self, address: int, count: int) -> list[int]: ...

    def write_words(self, address: int, words: Sequence[int]) -> None: ...

    def write_polled(
        self, units: Sequence[tuple[int, int]], size: int, status: int, busy: int, ready: int = 0
    ) -> list[int]:
        """Write each (address, value) as one ``size``-byte access (2 or 4) and after
        each wait until the word at ``status`` has its ``busy`` bits equal to ``ready``
        (0: a BSY flag clears; the mask: a READY flag sets); the status seen after each
        unit (flash programming through a controller's data writes)."""
        ...

    def write_read_back(self, units: Sequence[Sequence[tuple[int, int]]], size: int) -> list[int]:
        """For each unit (one or more (address, value) writes of ``size`` bytes), write
        it and read its last address back; the values read. A read of flash waits on
        the bus while the flash programs, so each read returns once its unit is
        programmed (flash programming without status polls)."""
        ...

    def ap_read(self, ap: int, register: int) -> int: ...

    def ap_write(self, ap: int, register: int, value: int) -> None: ...

    def set_reset(self, asserted: bool) -> None:
        """Drive NRST (low while asserted); a no-op where the probe has no reset line."""
        ...

    def close(self) -> None: ...


#: any bus an algorithm is written against (each algorithm takes one of them)
Bus = SpiBus | I2cBus | BootloaderLink | MicrowireBus | DebugAccess
