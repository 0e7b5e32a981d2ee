"""ST-LINK/V2, V2-1 and STLINK-V3 probes (and their clones) as a memory-level
DebugAccess (app.hal.bus): the probe's firmware runs the SWD packets, the host asks it
for memory blocks, DAP registers and the NRST line.

The USB protocol, from OpenOCD's src/jtag/drivers/stlink_usb.c and pyOCD's
pyocd/probe/stlink/ (stlink.py, constants.py), which agree on all of it:

- every command is a 16-byte block on the bulk OUT endpoint; a write command's data
  follows as its own bulk OUT transfer; an answer comes as one bulk IN transfer;
- GET_VERSION (0xF1) answers 6 bytes: a big-endian word (hardware version in bits 15:12,
  JTAG/SWD firmware version "J" in 11:6, SWIM or mass-storage version in 5:0), then the
  USB VID and PID little-endian. A V3 answers J0 there and its versions come from
  GET_VERSION_EX (0xFB, 12 bytes: hardware, SWIM, JTAG, MSC, bridge; VID, PID at 8);
- GET_CURRENT_MODE (0xF5) answers the mode in byte 0: 0 DFU, 1 mass storage, 2 debug,
  3 SWIM, 4 bootloader. DFU is left with 0xF3 0x07, debug with 0xF2 0x21, SWIM with
  0xF4 0x01 (no answer to any of them); mass storage is the idle mode;
- debug commands start 0xF2: ENTER2 SWD (0x30 0xA3) powers the debug port up,
  READ_IDCODES (0x31) answers status and the DP IDCODE at byte 4, READMEM_32BIT (0x07) /
  WRITEMEM_32BIT (0x08) / WRITEMEM_16BIT (0x48, firmware V2J26+) take the address
  (LE32), the length in bytes (LE16, at most 6144) and the AP number, then
  GETLASTRWSTATUS2 (0x3E, V2J15+) answers the access's status and the faulting address;
  READ_DAP_REG / WRITE_DAP_REG (0x45 / 0x46, V2J24+) take a port (an AP number, 0xFFFF
  for the DP) and a register; INIT_AP (0x4B, V2J28+) opens an AP before its first use;
  RW_MISC_OUT / RW_MISC_IN (0x51 / 0x52, V2J32+, V3J2+) run a batch of 32-bit memory
  reads and writes (see _write_then_read);
  DRIVE_NRST (0x3C) drives NRST low (0) or high (1); the SWD clock is SWD_SET_FREQ
  (0x43, V2J22+, a divisor from a table) on a V2 and GET_COM_FREQ / SET_COM_FREQ
  (0x62 / 0x61, in kHz) on a V3;
- status byte 0x80 is OK; 0x10/0x14 AP/DP WAIT, 0x11/0x15 AP/DP FAULT, 0x18-0x1A the
  sticky and write-data errors, and the rest of the table below.

The probe's TAR auto-increment is only guaranteed within 1 KiB (ADIv5's minimum), and
the probe does not split a block itself (OpenOCD splits at its tar_autoincr_block, 1 KiB
by default), so memory blocks are split at every 1 KiB boundary here.
"""

from __future__ import annotations

import struct
import threading
import time
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass

from app.hal.errors import HalError, LinkError
from app.hal.stlink_usb import PRODUCTS, StlinkBackend, StlinkDevice, StlinkHandle
from app.hal.swd import SwdError, SwdFault, SwdMismatch
from app.hal.usb_naming import location, same_device

ST_VID = 0x0483
COMMAND_SIZE = 16
GET_VERSION, DEBUG, DFU, SWIM = 0xF1, 0xF2, 0xF3, 0xF4
GET_CURRENT_MODE, GET_TARGET_VOLTAGE, GET_VERSION_EX = 0xF5, 0xF7, 0xFB
MODE_DFU, MODE_MASS, MODE_DEBUG, MODE_SWIM, MODE_BOOTLOADER = 0, 1, 2, 3, 4
MODE_NAMES = {0: "DFU", 1: "mass storage", 2: "debug", 3: "SWIM", 4: "bootloader"}
DFU_EXIT, SWIM_EXIT = 0x07, 0x01
# the second byte of a DEBUG command
READMEM_32BIT, WRITEMEM_32BIT, DEBUG_EXIT = 0x07, 0x08, 0x21
ENTER2, ENTER_SWD, READ_IDCODES = 0x30, 0xA3, 0x31
DRIVE_NRST, GETLASTRWSTATUS2, SWD_SET_FREQ = 0x3C, 0x3E, 0x43
READ_DAP_REG, WRITE_DAP_REG, WRITEMEM_16BIT, INIT_AP = 0x45, 0x46, 0x48, 0x4B
RW_MISC_OUT, RW_MISC_IN = 0x51, 0x52
#: RW_MISC items (OpenOCD's RW_MISC_CMD_*): each a code byte and a 32-bit value
MISC_ADDRESS, MISC_WRITE, MISC_READ, MISC_APNUM = 1, 2, 3, 5
SET_COM_FREQ, GET_COM_FREQ = 0x61, 0x62
NRST_LOW, NRST_HIGH = 0x00, 0x01
DP_PORT = 0xFFFF
DP_ABORT, ABORT_CLEAR_ALL = 0x0, 0b11110
OK = 0x80

#: ST-LINK status codes (pyOCD constants.py Status, OpenOCD's STLINK_* error defines)
STATUS_TEXT = {
    0x01: "unknown error",
    0x02: "SPI error",
    0x03: "DMA error",
    0x04: "unknown JTAG chain",
    0x05: "no device connected",
    0x06: "internal error",
    0x07: "command wait",
    0x08: "command error",
    0x09: "IDCODE read error",
    0x0A: "alignment error",
    0x0B: "debug power error",
    0x0C: "write error",
    0x0D: "write verification error",
    0x0E: "already opened in another mode",
    0x10: "AP WAIT",
    0x11: "AP FAULT",
    0x12: "AP error",
    0x13: "AP parity error",
    0x14: "DP WAIT",
    0x15: "DP FAULT",
    0x16: "DP error",
    0x17: "DP parity error",
    0x18: "AP write data error",
    0x19: "AP sticky error",
    0x1A: "AP sticky overrun error",
    0x1D: "bad AP",
    0x40: "configuration changed",
    0x41: "frequency not supported",
    0x42: "unknown command",
}
#: statuses that mean the target's bus faulted (pyOCD's _MEM_FAULT_ERRORS: 0x01 is what
#: older firmware answers for a fault)
FAULTS = frozenset({0x01, 0x11, 0x15, 0x18, 0x19})
WAITS = frozenset({0x10, 0x14})

#: V2 SWD clock (kHz) -> SWD_SET_FREQ divisor, fastest first (OpenOCD's
#: stlink_khz_to_speed_map_swd); before V2J22 the clock stays at the 1.8 MHz default
V2_SWD_CLOCKS = (
    (4000, 0),
    (1800, 1),
    (1200, 2),
    (950, 3),
    (480, 7),
    (240, 15),
    (125, 31),
    (100, 40),
    (50, 79),
    (25, 158),
    (15, 265),
    (5, 798),
)
V2_DEFAULT_CLOCK_HZ = 1_800_000
#: bytes one READMEM/WRITEMEM may move (the probe's 6144-byte buffer), and the block the
#: host splits at (TAR auto-increment, see the module docstring)
MAX_MEM_BYTES = 6144
TAR_BLOCK = 1024
POLL_TIMEOUT_S = 5.0
#: a memory block the target answered WAIT to (the firmware gave up retrying) is sent
#: again this many times, 1, 2, 4 ... ms apart, as OpenOCD does (MAX_WAIT_RETRIES)
WAIT_RETRIES = 8

#: V2 firmware ("J" version) from which a command exists; every V3 has them all
#: (OpenOCD's STLINK_F_HAS_* flags in stlink_usb_version, pyOCD's MIN_JTAG_VERSION_*)
V2_LAST_STATUS, V2_SWD_CLOCK, V2_DAP_REGISTERS, V2_MEM_16BIT, V2_INIT_AP = 15, 22, 24, 26, 28
#: RW_MISC (a batch of 32-bit memory reads and writes in one round trip): V2J32, V3J2
V2_RW_MISC, V3_RW_MISC = 32, 2
FIRMWARE_UPDATE = (
    "update the probe with ST's ST-LINK firmware updater (STSW-LINK007, or"
    " STM32CubeProgrammer's Firmware upgrade); some clones refuse ST's update"
)


class StlinkFirmwareError(HalError):
    """The probe's firmware is too old for what was asked."""


@dataclass(frozen=True)
class Firmware:
    """The probe's versions, as GET_VERSION(_EX) report them."""

    hardware: int
    jtag: int
    swim: int = 0
    msc: int = 0
    bridge: int = 0

    @property
    def text(self) -> str:
        """As OpenOCD and ST's tools print it, e.g. V2J37S7 or V3J7M2B3S1."""
        text = f"V{self.hardware}"
        if self.jtag or not self.msc:
            text += f"J{self.jtag}"
        if self.msc:
            text += f"M{self.msc}"
        if self.bridge:
            text += f"B{self.bridge}"
        if self.swim or not self.msc:
            text += f"S{self.swim}"
        return text

    def has(self, v2_jtag: int, v3_jtag: int = 0) -> bool:
        """Whether a command that a V2 has from J``v2_jtag`` on (a V3 from J``v3_jtag``)
        exists here."""
        return self.jtag >= (v3_jtag if self.hardware >= 3 else v2_jtag)


def parse_version(answer: bytes, product: int) -> tuple[Firmware, int]:
    """GET_VERSION's answer: the firmware (V3: still to be asked with GET_VERSION_EX
    when its J reads 0) and the USB VID it reports."""
    (word,) = struct.unpack(">H", answer[:2])
    hardware, x, y = word >> 12, (word >> 6) & 0x3F, word & 0x3F
    vid = int.from_bytes(answer[2:4], "little")
    if product in (0x374B, 0x3752) and ((x <= 22 and y == 7) or (x >= 25 and 7 <= y <= 12)):
        # a V2-1 running the STM8 (SWIM-only) firmware reports MxSy (OpenOCD)
        return Firmware(hardware, 0, swim=y, msc=x), vid
    if product in (0x374A, 0x374B, 0x3752):
        return Firmware(hardware, x, msc=y), vid  # V2-1: JxMy
    return Firmware(hardware, x, swim=y), vid


def parse_version_ex(answer: bytes) -> tuple[Firmware, int]:
    hardware, swim, jtag, msc, bridge = answer[:5]
    return Firmware(hardware, jtag, swim, msc, bridge), int.from_bytes(answer[8:10], "little")


def v2_divisor(hz: int) -> tuple[int, int]:
    """The fastest V2 SWD clock at most ``hz`` (the slowest if none is): (kHz, divisor)."""
    for khz, divisor in V2_SWD_CLOCKS:
        if khz * 1000 <= hz:
            return khz, divisor
    return V2_SWD_CLOCKS[-1]


def tar_blocks(address: int, length: int) -> list[tuple[int, int]]:
    """(start, bytes) pieces of a memory run that never cross a 1 KiB TAR boundary."""
    blocks = []
    while length > 0:
        n = min(TAR_BLOCK - address % TAR_BLOCK, length, MAX_MEM_BYTES)
        blocks.append((address, n))
        address, length = address + n, length - n
    return blocks


def _memory_command(command: int, address: int, length: int, ap: int = 0) -> bytes:
    """Bytes 2-5 address, 6-7 length, 8 AP; 9-11 CSW[31:8], 0: the firmware's default."""
    return bytes([DEBUG, command]) + struct.pack("<IHB", address, length, ap)


def _aligned(address: int, size: int) -> None:
    if address % size:
        raise SwdError(f"address 0x{address:08X} is not aligned to {size} bytes")


class StlinkProbe:
    """One ST-LINK and the target on its SWD pins: app.hal.bus.DebugAccess.

    ``open()`` reads the firmware version and leaves DFU/SWIM/debug mode; ``connect()``
    sets the clock and enters SWD. A USB failure raises LinkError and marks the probe
    ``lost``; ``reopen()`` finds it again (by serial number, else at its bus:address).
    """

    def __init__(
        self,
        backend: StlinkBackend,
        device: StlinkDevice,
        *,
        clock_hz: int,
        only_probe: bool = False,
        named_by_path: bool = False,
    ) -> None:
        self.backend = backend
        self.device = device
        self.requested_hz = clock_hz
        self.clock_hz = 0  # what the probe set, after connect()
        self.firmware: Firmware | None = None
        self.mode_at_open: int | None = None
        self.lost = False
        self.poll_timeout_s = POLL_TIMEOUT_S
        self.wait_backoff_s = 0.001  # the first pause before a block is sent again
        self._only_probe = only_probe
        #: the serial number that names this probe ("": none, or clones share it)
        self.serial = "" if named_by_path else device.serial
        self._handle: StlinkHandle | None = None
        self._in_debug = False
        self._aps_open: set[int] = set()
        self._lock = threading.RLock()

    @property
    def name(self) -> str:
        return f"ST-LINK {self.serial or location(self.device)}"

    # -- USB ------------------------------------------------------------------------------

    def _command(self, command: bytes, *, out: bytes = b"", reply: int = 0, what: str) -> bytes:
        """One command: its 16-byte block, the data phase ``out`` if any, then an answer
        of exactly ``reply`` bytes if one is due."""
        with self._lock:
            if self.lost or self._handle is None:
                raise LinkError(f"{self.name} is disconnected")
            try:
                self._handle.write(command.ljust(COMMAND_SIZE, b"\0"))
                if out:
                    self._handle.write(out)
                answer = self._handle.read(reply) if reply else b""
            except self.backend.link_errors as err:
                self.lost = True
                raise LinkError(f"USB link to {self.name} lost while {what}: {err}") from None
            if len(answer) != reply:
                self.lost = True  # the answers are out of step with the commands now
                raise LinkError(
                    f"{self.name} answered {len(answer)} of {reply} bytes while {what}:"
                    " the USB stream is out of step (re-plug the probe if this repeats)"
                )
            return answer

    def _status(self, status: int, what: str) -> None:
        """Raise for a status byte that is not OK (SwdFault, SwdError); a byte that is
        no ST-LINK status means the answers are garbled (LinkError)."""
        if status == OK:
            return
        text = STATUS_TEXT.get(status)
        if text is None:
            self.lost = True
            raise LinkError(
                f"{self.name} answered status 0x{status:02X} while {what}, which is no"
                " ST-LINK status: the USB stream is garbled (re-plug the probe)"
            )
        message = f"{self.name}: {what} failed (ST-LINK status 0x{status:02X}: {text})"
        if status in FAULTS:
            raise SwdFault(message)
        if status in WAITS:
            raise SwdError(f"{message}: the target kept the bus busy")
        raise SwdError(message)

    def _garbled(self, status: int, what: str) -> None:
        """LinkError for a byte that is no ST-LINK status (see _status)."""
        if status != OK and status not in STATUS_TEXT:
            self._status(status, what)

    def _require(self, v2_jtag: int, what: str) -> None:
        firmware = self._firmware()
        if not firmware.has(v2_jtag):
            raise StlinkFirmwareError(
                f"{self.name} runs firmware {firmware.text}, which has no {what}: that needs"
                f" V2J{v2_jtag} or later (any V3); {FIRMWARE_UPDATE}"
            )

    def _firmware(self) -> Firmware:
        if self.firmware is None:
            raise LinkError(f"{self.name} is not open")
        return self.firmware

    # -- opening --------------------------------------------------------------------------

    def open(self, *, idle: bool = True) -> None:
        """Open the USB device, read the firmware version, leave DFU mode and (``idle``)
        SWIM or debug mode. Listing passes idle=False: a probe another program has in
        debug mode is left alone (leaving DFU disturbs nobody)."""
        with self._lock:
            if PRODUCTS.get(self.device.product, PRODUCTS[0x3748]).loader:
                raise HalError(
                    f"{self.name} is in its USB loader (firmware update mode): finish the"
                    " update with ST's ST-LINK firmware updater (STSW-LINK007) or re-plug it"
                )
            self._handle = self.backend.open(self.device)
            self.lost, self._in_debug = False, False
            self._aps_open.clear()
            try:
                self.firmware = self._read_version()
                self.mode_at_open = self._leave_mode(only_dfu=not idle)
            except BaseException:
                self._close_handle()
                raise

    def _read_version(self) -> Firmware:
        answer = self._command(bytes([GET_VERSION]), reply=6, what="reading its version")
        firmware, vid = parse_version(answer, self.device.product)
        if firmware.hardware >= 3 and firmware.jtag == 0 and firmware.swim == 0:
            ex = self._command(bytes([GET_VERSION_EX]), reply=12, what="reading its version")
            firmware, vid = parse_version_ex(ex)
        if vid != ST_VID or not 2 <= firmware.hardware <= 4:
            self.lost = True
            raise LinkError(
                f"{self.name} answered GET_VERSION with {answer.hex()}, which is no ST-LINK"
                " version: the USB stream is garbled (re-plug the probe)"
            )
        if firmware.jtag == 0:
            raise StlinkFirmwareError(
                f"{self.name} runs firmware {firmware.text} (STM8 SWIM only), which has no"
                f" SWD: load the STM32 firmware: {FIRMWARE_UPDATE}"
            )
        if not firmware.has(V2_LAST_STATUS):
            raise StlinkFirmwareError(
                f"{self.name} runs firmware {firmware.text}: Socketeer needs V2J{V2_LAST_STATUS}"
                f" or later (memory access status with the faulting address); {FIRMWARE_UPDATE}"
            )
        return firmware

    def _mode(self) -> int:
        return self._command(bytes([GET_CURRENT_MODE]), reply=2, what="reading its mode")[0]

    def _leave_mode(self, *, only_dfu: bool = False) -> int:
        """Leave DFU, SWIM or debug mode (mass storage is idle); the mode found."""
        mode = self._mode()
        exits = {MODE_DFU: (DFU, DFU_EXIT)}
        if not only_dfu:
            exits |= {MODE_DEBUG: (DEBUG, DEBUG_EXIT), MODE_SWIM: (SWIM, SWIM_EXIT)}
        if mode == MODE_BOOTLOADER:
            raise HalError(
                f"{self.name} is in its bootloader: re-plug it, or run ST's ST-LINK firmware"
                " updater (STSW-LINK007) if it stays there"
            )
        if mode in exits:
            self._command(bytes(exits[mode]), what="leaving its current mode")
            if mode == MODE_DFU and self._mode() == MODE_DFU:
                raise HalError(
                    f"{self.name} stays in DFU mode after being told to leave it: re-plug it;"
                    " if it stays there, its firmware update did not finish: run ST's"
                    " ST-LINK firmware updater (STSW-LINK007)"
                )
        self._in_debug = False
        return mode

    def reopen(self) -> bool:
        """Find the probe again after a re-plug and open it; False while it is gone."""
        with self._lock:
            self._close_handle()
            try:
                devices = self.backend.find_devices()
            except HalError:
                return False
            again = self._same_probe(devices)
            if again is None or not again.accessible:
                return False
            self.device = again
            failures: tuple[type[BaseException], ...] = (*self.backend.link_errors, HalError)
            try:
                self.open()
            except failures:
                self._close_handle()
                self.lost = True
                return False
            return True

    def _same_probe(self, devices: list[StlinkDevice]) -> StlinkDevice | None:
        return same_device(self.device, devices, self.serial, only_one=self._only_probe)

    def close(self) -> None:
        with self._lock:
            if self._in_debug and not self.lost:
                with suppress(HalError):
                    self._command(bytes([DEBUG, DEBUG_EXIT]), what="leaving debug mode")
            self._close_handle()

    def _close_handle(self) -> None:
        handle, self._handle = self._handle, None
        self._in_debug = False
        if handle is not None:
            with suppress(Exception):  # a probe that is gone cannot be closed cleanly
                handle.close()

    # -- the debug port -------------------------------------------------------------------

    def connect(self, *, under_reset: bool = False) -> int:
        """Set the SWD clock, enter SWD (NRST held low first when ``under_reset``, and
        left low), open AP 0; the DP IDCODE."""
        with self._lock:
            self._leave_mode()
            self._set_clock()
            if under_reset:  # before ENTER2, as OpenOCD does; the firmware may refuse it yet
                self._command(bytes([DEBUG, DRIVE_NRST, NRST_LOW]), reply=2, what="asserting NRST")
            status = self._command(
                bytes([DEBUG, ENTER2, ENTER_SWD, 0]), reply=2, what="entering SWD mode"
            )[0]
            if status != OK:
                self._garbled(status, "entering SWD mode")
                raise self._no_target(status)
            self._in_debug = True
            self._aps_open.clear()
            if under_reset:  # again, now that the probe is in SWD mode for certain
                self.set_reset(True)
            answer = self._command(bytes([DEBUG, READ_IDCODES]), reply=12, what="reading IDCODE")
            idcode = int.from_bytes(answer[4:8], "little")
            if answer[0] != OK or idcode in (0, 0xFFFFFFFF):
                self._garbled(answer[0], "reading IDCODE")
                raise self._no_target(answer[0])
            self._open_ap(0)
            return idcode

    def _no_target(self, status: int) -> SwdError:
        answer = self._command(
            bytes([GET_TARGET_VOLTAGE]), reply=8, what="reading the target voltage"
        )
        reference, measured = struct.unpack("<II", answer)
        volts = 2 * measured * 1.2 / reference if reference else 0.0  # pyOCD's formula
        hint = (
            "the board is not powered, or VTref (T_VCC) is not wired to it"
            if volts < 1.5
            else "check SWDIO, SWCLK and GND, and that the part's SWD pins are not disabled"
            " (try connect=under-reset with NRST wired)"
        )
        text = STATUS_TEXT.get(status, f"status 0x{status:02X}")
        return SwdError(
            f"no SW-DP answered on {self.name} (ST-LINK status 0x{status:02X}: {text});"
            f" target voltage {volts:.2f} V: {hint}"
        )

    def _set_clock(self) -> None:
        firmware = self._firmware()
        if firmware.hardware >= 3:
            answer = self._command(
                bytes([DEBUG, GET_COM_FREQ, 0]), reply=52, what="reading its SWD clocks"
            )
            self._status(answer[0], "reading its SWD clocks")
            count = min(answer[8], 10)
            offered = [
                int.from_bytes(answer[12 + 4 * i : 16 + 4 * i], "little") for i in range(count)
            ]
            if not offered:
                raise SwdError(f"{self.name} offers no SWD clock")
            fitting = [khz for khz in offered if khz * 1000 <= self.requested_hz]
            khz = max(fitting) if fitting else min(offered)
            command = bytes([DEBUG, SET_COM_FREQ, 0, 0]) + struct.pack("<I", khz)
            answer = self._command(command, reply=8, what="setting the SWD clock")
            self._status(answer[0], f"setting the SWD clock to {khz} kHz")
            self.clock_hz = int.from_bytes(answer[4:8], "little") * 1000
        elif firmware.has(V2_SWD_CLOCK):
            khz, divisor = v2_divisor(self.requested_hz)
            command = bytes([DEBUG, SWD_SET_FREQ]) + struct.pack("<H", divisor)
            answer = self._command(command, reply=2, what="setting the SWD clock")
            self._status(answer[0], f"setting the SWD clock to {khz} kHz")
            self.clock_hz = khz * 1000
        else:
            self.clock_hz = V2_DEFAULT_CLOCK_HZ

    def set_reset(self, asserted: bool) -> None:
        level = NRST_LOW if asserted else NRST_HIGH
        what = "asserting NRST" if asserted else "releasing NRST"
        self._status(self._command(bytes([DEBUG, DRIVE_NRST, level]), reply=2, what=what)[0], what)

    def _open_ap(self, ap: int) -> None:
        """INIT_AP before an AP's first use, where the firmware requires it (V2J28+)."""
        if ap in self._aps_open or not self._firmware().has(V2_INIT_AP):
            return
        what = f"opening AP {ap}"
        self._status(self._command(bytes([DEBUG, INIT_AP, ap, 0]), reply=2, what=what)[0], what)
        self._aps_open.add(ap)

    def ap_read(self, ap: int, register: int) -> int:
        self._require(V2_DAP_REGISTERS, "DAP register access (needed to reach other APs)")
        with self._lock:
            self._open_ap(ap)
            what = f"reading AP {ap} register 0x{register:02X}"
            command = bytes([DEBUG, READ_DAP_REG]) + struct.pack("<HH", ap, register)
            answer = self._command(command, reply=8, what=what)
            self._register_status(answer[0], what)
            return int.from_bytes(answer[4:8], "little")

    def ap_write(self, ap: int, register: int, value: int) -> None:
        self._require(V2_DAP_REGISTERS, "DAP register access (needed to reach other APs)")
        with self._lock:
            self._open_ap(ap)
            what = f"writing AP {ap} register 0x{register:02X}"
            command = bytes([DEBUG, WRITE_DAP_REG]) + struct.pack("<HHI", ap, register, value)
            self._register_status(self._command(command, reply=2, what=what)[0], what)

    def _register_status(self, status: int, what: str) -> None:
        """As _status; a fault also leaves the sticky error cleared for the next access."""
        try:
            self._status(status, what)
        except SwdFault:
            self._clear_sticky_error()
            raise

    # -- memory ---------------------------------------------------------------------------

    def read_words(self, address: int, count: int) -> list[int]:
        _aligned(address, 4)
        with self._lock:
            data = bytearray()
            for start, n in tar_blocks(address, count * 4):
                what = f"reading {n} bytes at 0x{start:08X}"
                data += self._block(_memory_command(READMEM_32BIT, start, n), reply=n, what=what)
            return list(struct.unpack(f"<{count}I", data))

    def write_words(self, address: int, words: Sequence[int]) -> None:
        _aligned(address, 4)
        data = struct.pack(f"<{len(words)}I", *words)
        with self._lock:
            for start, n in tar_blocks(address, len(data)):
                what = f"writing {n} bytes at 0x{start:08X}"
                chunk = data[start - address : start - address + n]
                self._block(_memory_command(WRITEMEM_32BIT, start, n), out=chunk, what=what)

    def write_read_back(self, units: Sequence[Sequence[tuple[int, int]]], size: int) -> list[int]:
        """Write each unit's accesses, then read its last address back (a memory read
        of the word holding it: the probe retries while the target's bus stalls on the
        flash programming it). The probe has no batching of its own for this, so each
        access is its own command (a round trip per write and one per read), except
        that firmware with RW_MISC (V2J32, V3J2) takes a word and its read-back as one
        batch."""
        if size not in (2, 4):
            raise ValueError(f"ST-LINK writes are 2 or 4 bytes, not {size}")
        if size == 2:
            self._require(V2_MEM_16BIT, "16-bit memory access (half-word flash programming)")
        command = WRITEMEM_16BIT if size == 2 else WRITEMEM_32BIT
        mask = (1 << (8 * size)) - 1
        batched = size == 4 and self._firmware().has(V2_RW_MISC, V3_RW_MISC)
        back = []
        with self._lock:
            for unit in units:
                if batched:  # the last word and its read-back as one RW_MISC batch
                    for address, value in unit[:-1]:
                        self.write_words(address, [value])
                    address, value = unit[-1]
                    _aligned(address, 4)
                    back.append(self._write_then_read(address, value & mask, address))
                    continue
                for address, value in unit:
                    _aligned(address, size)
                    data = (value & mask).to_bytes(size, "little")
                    what = f"writing 0x{value & mask:0{2 * size}X} at 0x{address:08X}"
                    self._block(_memory_command(command, address, size), out=data, what=what)
                last = unit[-1][0]
                what = f"reading back 0x{last & ~3:08X}"
                word = self._block(_memory_command(READMEM_32BIT, last & ~3, 4), reply=4, what=what)
                back.append((int.from_bytes(word, "little") >> (8 * (last & 3))) & mask)
        return back

    def _block(self, command: bytes, *, out: bytes = b"", reply: int = 0, what: str) -> bytes:
        """One memory command (as _command) and its status, sent again while the target
        answers WAIT (see WAIT_RETRIES); what it read."""
        for attempt in range(WAIT_RETRIES + 1):
            data = self._command(command, out=out, reply=reply, what=what)
            if self._check_access(what, wait_ok=True):
                return data
            time.sleep(self.wait_backoff_s * (1 << attempt))
        raise SwdError(
            f"{self.name}: {what} failed: the target answered WAIT to {WAIT_RETRIES + 1}"
            " attempts (its bus stays busy; a lower clock= may help)"
        )

    def write_polled(
        self, units: Sequence[tuple[int, int]], size: int, status: int, busy: int, ready: int = 0
    ) -> list[int]:
        """Write each unit, then read the status word until its ``busy`` bits read
        ``ready`` (0: a BSY flag clears; the mask: a READY flag sets). The probe
        has no value-match read, so each poll is a round trip. A word and its first
        status read go as one RW_MISC batch where the firmware has it (V2J32, V3J2);
        otherwise the write's own status is not asked for: the status read after it
        fails too when the write faulted (the sticky error), and only then is the
        culprit found (see _poll)."""
        if size not in (2, 4):
            raise ValueError(f"ST-LINK polled writes are 2 or 4 bytes, not {size}")
        if size == 2:
            self._require(V2_MEM_16BIT, "16-bit memory access (half-word flash programming)")
        if size != 4 and busy >> (8 * size):
            raise ValueError(f"busy mask 0x{busy:X} does not fit a {size}-byte status read")
        if ready & ~busy:
            raise ValueError(f"ready value 0x{ready:X} has bits outside the mask 0x{busy:X}")
        _aligned(status, 4)
        command = WRITEMEM_16BIT if size == 2 else WRITEMEM_32BIT
        batched = size == 4 and self._firmware().has(V2_RW_MISC, V3_RW_MISC)
        mask = (1 << (8 * size)) - 1
        seen = []
        with self._lock:
            for address, value in units:
                _aligned(address, size)
                value &= mask
                if batched:
                    word = self._write_then_read(address, value, status)
                    if word & busy != ready:
                        word = self._poll(status, busy, ready, None)
                else:
                    data = value.to_bytes(size, "little")
                    what = f"writing 0x{value:0{2 * size}X} at 0x{address:08X}"
                    self._command(_memory_command(command, address, size), out=data, what=what)
                    word = self._poll(status, busy, ready, address)
                seen.append(word & mask)
        return seen

    def _write_then_read(self, address: int, value: int, status: int) -> int:
        """One RW_MISC batch (OpenOCD's stlink_usb_misc_rw_segment): on AP 0, write
        ``value`` at ``address``, read the word at ``status``. RW_MISC_OUT carries the
        item codes (padded to 4 bytes) then one 32-bit value per item; RW_MISC_IN answers
        one value per item, then one status per item."""
        items = [(MISC_APNUM, 0), (MISC_ADDRESS, address), (MISC_WRITE, value), (MISC_READ, status)]
        n = len(items)
        codes = bytes(code for code, _ in items).ljust(-(-n // 4) * 4, b"\0")
        values = struct.pack(f"<{n}I", *(v for _, v in items))
        what = f"writing 0x{value:08X} at 0x{address:08X}"
        command = bytes([DEBUG, RW_MISC_OUT]) + struct.pack("<I", n)
        self._command(command, out=codes + values, what=what)
        answer = self._command(bytes([DEBUG, RW_MISC_IN]), reply=8 * n, what=what)
        results = struct.unpack(f"<{2 * n}I", answer)
        for (code, _), error in zip(items, results[n:], strict=True):
            if error == OK:
                continue
            self._garbled(error, what)
            if error in FAULTS:
                self._clear_sticky_error()
                where, at = (
                    ("reading the status register", status)
                    if code == MISC_READ
                    else ("writing", address)
                )
                raise SwdFault(
                    f"{self.name}: FAULT {where} at 0x{at:08X}: the target's bus refused it"
                    f" (ST-LINK status 0x{error:02X}: {STATUS_TEXT[error]}); nothing is mapped"
                    " there, or it is protected"
                )
            self._status(error, what)
        return int(results[n - 1])

    def _poll(self, status: int, busy: int, ready: int, written: int | None) -> int:
        """Read the status word until its ``busy`` bits read ``ready``; ``written``: the
        address of the write just sent, whose fault shows here first (None: nothing
        written since)."""
        deadline = time.monotonic() + self.poll_timeout_s
        after_write = written is not None
        while True:
            what = f"reading the status register at 0x{status:08X}"
            answer = self._command(_memory_command(READMEM_32BIT, status, 4), reply=4, what=what)
            try:
                self._check_access(what)
            except SwdFault:
                if not after_write:
                    raise
                # did the write fault (and the status read after it, sticky), or the read?
                self._command(_memory_command(READMEM_32BIT, status, 4), reply=4, what=what)
                self._check_access(what)
                raise SwdFault(
                    f"{self.name}: FAULT writing at 0x{written or 0:08X}: the target's bus"
                    " refused it (nothing mapped there, or it is protected)"
                ) from None
            value = int.from_bytes(answer, "little")
            if value & busy == ready:
                return value
            after_write = False
            if time.monotonic() > deadline:
                raise SwdMismatch(
                    f"{self.name}: the status register at 0x{status:08X} still reads"
                    f" 0x{value:08X} after {self.poll_timeout_s:.1f} s (waiting for bits"
                    f" 0x{busy:08X} to read 0x{ready:08X})",
                    value,
                )

    def _check_access(self, what: str, *, wait_ok: bool = False) -> bool:
        """GETLASTRWSTATUS2 after a memory command: True when it succeeded, False for a
        WAIT when ``wait_ok``. A fault names its address and clears the sticky error so
        the next access can run."""
        answer = self._command(bytes([DEBUG, GETLASTRWSTATUS2]), reply=12, what=what)
        status = answer[0]
        if status == OK:
            return True
        if wait_ok and status in WAITS:
            return False
        if status in FAULTS:
            address = int.from_bytes(answer[4:8], "little")
            self._clear_sticky_error()
            raise SwdFault(
                f"{self.name}: FAULT {what}: the target's bus refused 0x{address:08X}"
                f" (ST-LINK status 0x{status:02X}: {STATUS_TEXT[status]}); nothing is mapped"
                " there, or it is protected"
            )
        self._status(status, what)
        return False  # not reached: _status raised

    def _clear_sticky_error(self) -> None:
        """DP ABORT through WRITE_DAP_REG; firmware without it (before V2J24) enters SWD
        mode again, which starts the port afresh."""
        if self._firmware().has(V2_DAP_REGISTERS):
            command = bytes([DEBUG, WRITE_DAP_REG]) + struct.pack(
                "<HHI", DP_PORT, DP_ABORT, ABORT_CLEAR_ALL
            )
            answer = self._command(command, reply=2, what="clearing the sticky error (ABORT)")
            self._status(answer[0], "clearing the sticky error (ABORT)")
            return
        self._command(bytes([DEBUG, DEBUG_EXIT]), what="leaving SWD mode")
        answer = self._command(
            bytes([DEBUG, ENTER2, ENTER_SWD, 0]), reply=2, what="entering SWD mode again"
        )
        self._status(answer[0], "entering SWD mode again")
