"""Bus interfaces the algorithms are written against.

A SPI bus takes a *batch* of chip-select-framed operations per call: batching is what
makes real links fast (one USB or serial round trip for WREN + PAGE PROGRAM + the first
status poll) and it is what the simulator executes directly. A batch may contain a
``WaitReady`` step: the programmer polls the status register until the part is ready,
on the programmer side where it can (the simulator, FTDI MPSSE), on the host otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class SpiOp:
    """One chip-select-framed transaction: send ``write``, then clock in ``read_len`` bytes."""

    write: bytes
    read_len: int = 0


@dataclass(frozen=True)
class WaitReady:
    """Poll a status register (``opcode``) until ``status & mask == value``.

    Returns the last status byte read as its result. Raises BusTimeout after
    ``timeout_s``; ``hint_s`` is the expected time, so a host-side poller can sleep
    that long before its first poll.
    """

    opcode: int = 0x05
    mask: int = 0x01
    value: int = 0x00
    timeout_s: float = 1.0
    hint_s: float = 0.0


SpiStep = SpiOp | WaitReady


class SpiBus(Protocol):
    max_clock_hz: int

    def set_clock(self, hz: int) -> int:
        """Ask for ``hz``; returns the clock actually used (never above the request)."""
        ...

    def transfer(self, ops: Sequence[SpiStep]) -> list[bytes]:
        """Run ``ops`` in order; one result per op (b"" for write-only ops)."""
        ...


class I2cBus(Protocol):
    clock_hz: int

    def write(self, address: int, data: bytes) -> None:
        """START, 7-bit ``address`` + W, ``data``, STOP. Raises I2cNack."""
        ...

    def write_read(self, address: int, data: bytes, read_len: int) -> bytes:
        """Write ``data`` (may be empty), repeated START, read ``read_len`` bytes."""
        ...

    def wait_ack(self, address: int, timeout_s: float, hint_s: float = 0.0) -> None:
        """Acknowledge polling: address the part until it ACKs. Raises BusTimeout."""
        ...


class SerialLink(Protocol):
    """A byte stream with modem-control lines (UART bootloaders, serprog)."""

    def write(self, data: bytes) -> None: ...

    def read(self, size: int, timeout_s: float) -> bytes: ...

    def set_baud(self, baud: int) -> None: ...

    def set_lines(self, *, dtr: bool | None = None, rts: bool | None = None) -> None: ...

    def close(self) -> None: ...
