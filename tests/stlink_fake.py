"""A fake ST-LINK at the USB packet level, with a simulated target on its SWD pins.

Written from the protocol facts (OpenOCD's src/jtag/drivers/stlink_usb.c, pyOCD's
pyocd/probe/stlink/), not from app.hal.stlink*: it takes 16-byte command blocks and
data phases on bulk OUT and queues each answer for one bulk IN transfer, as the probe
does. Behind it, as the probe's firmware, runs its own small ADIv5 packet driver (line
reset, JTAG-to-SWD, IDCODE, ABORT, power-up, SELECT, CSW/TAR/DRW, posted reads, WAIT
retries) against app.hal.sim.swd_target.SimSwdTarget through the target's packet
interface. The memory commands write TAR once per command and let it auto-increment,
so a block that crosses a 1 KiB boundary wraps inside the target, as ADIv5 allows.

Firmware variants (VARIANTS): a V2 on J22 (no DAP register, INIT_AP, 16-bit memory or
RW_MISC commands: sending one is a driver bug and fails the test), a V2 on J37, a V3
(versions from GET_VERSION_EX, clocks from GET_COM_FREQ). From J28 (any V3) an AP must be
opened with INIT_AP before its first use. RW_MISC (V2J32, V3J2; OpenOCD's
stlink_usb_rw_misc_out/in): its OUT data is the item codes (1 address, 2 write, 3 read,
5 AP number; padded to 4 bytes) then a 32-bit value per item; RW_MISC_IN answers a value
per item, then a status per item.

Faults: ``unplug()`` (every transfer fails), ``fail_after`` (the probe drops off the bus
after N more transfers), ``garble_next`` ("short": the next answer loses its last byte;
"status": its status byte becomes one no ST-LINK sends), ``stuck_in_dfu``.
"""

from __future__ import annotations

import struct
from collections import Counter, deque
from dataclasses import dataclass

from app.hal.sim.swd_target import SimSwdTarget

ST_VID = 0x0483
STATUS_OK = 0x80
AP_WAIT, AP_FAULT, AP_ERROR, DP_WAIT, DP_FAULT, IDCODE_ERROR = 0x10, 0x11, 0x12, 0x14, 0x15, 0x09
ACK_OK, ACK_WAIT, ACK_FAULT = 0b001, 0b010, 0b100
MODE_DFU, MODE_MASS, MODE_DEBUG = 0x00, 0x01, 0x02
V3_CLOCKS_KHZ = (24000, 8000, 3300, 1000, 200, 50, 5)


@dataclass(frozen=True)
class Variant:
    product: int
    hardware: int
    jtag: int
    swim: int = 0
    msc: int = 0
    bridge: int = 0
    power_on_mode: int = MODE_MASS


VARIANTS = {
    "V2J22": Variant(0x3748, 2, 22, swim=4, power_on_mode=MODE_DFU),
    "V2J37": Variant(0x3748, 2, 37, swim=7, power_on_mode=MODE_DFU),
    "V3": Variant(0x374E, 3, 7, swim=1, msc=2, bridge=3),
}


class FakeUsbError(IOError):
    """What pyusb's USBError stands for here."""


@dataclass(frozen=True)
class FakeDeviceInfo:
    bus: int
    address: int
    serial: str
    product: int
    accessible: bool = True
    error: str | None = None


def _parity(value: int) -> int:
    return bin(value).count("1") & 1


def _request(ap: bool, read: bool, register: int) -> int:
    """ADIv5 request: start 1, APnDP, RnW, A[2], A[3], even parity, stop 0, park 1."""
    body = int(ap) | int(read) << 1 | ((register >> 2) & 1) << 2 | ((register >> 3) & 1) << 3
    return 0x01 | body << 1 | _parity(body) << 5 | 1 << 7


class _Fault(Exception):
    def __init__(self, status: int) -> None:
        self.status = status


class FakeStlink:
    """One probe: the USB side, the firmware's command decoder, its SWD driver."""

    def __init__(
        self,
        usb: FakeStlinkUsb,
        target: SimSwdTarget | None,
        variant: str,
        bus: int,
        address: int,
        serial: str,
    ) -> None:
        self.usb = usb
        self.target = target
        self.variant = VARIANTS[variant]
        self.bus, self.address, self.serial = bus, address, serial
        self.accessible = True
        self.plugged = True
        self.fail_after: int | None = None
        self.garble_next: str | None = None
        self.stuck_in_dfu = False
        self.target_volts = 3.3
        self.bulk_out = self.bulk_in = 0
        self.commands: Counter[int] = Counter()  # second byte of 0xF2 commands, else first
        self.events: list[str] = []  # NRST and mode changes, in order
        self.swd_khz: int | None = None
        self._power_on()

    def _power_on(self) -> None:
        self.mode = self.variant.power_on_mode
        self.nrst_low = False
        self._answers: deque[bytes] = deque()
        self._data_phase: tuple[int, int, int, int] | None = None  # command, address, n, ap
        self._misc_answer = b""
        self._aps_open: set[int] = set()
        self._last = (STATUS_OK, 0)
        self._select: int | None = None

    # -- USB ------------------------------------------------------------------------------

    def _usb(self) -> None:
        if not self.plugged:
            raise FakeUsbError("[Errno 19] No such device (it may have been disconnected)")
        if self.fail_after is not None:
            if self.fail_after <= 0:
                self.unplug()
                raise FakeUsbError("[Errno 19] No such device (it may have been disconnected)")
            self.fail_after -= 1

    def write(self, data: bytes) -> None:
        self._usb()
        self.bulk_out += 1
        if self._data_phase is not None:
            command, address, n, ap = self._data_phase
            self._data_phase = None
            assert len(data) == n, f"data phase of {len(data)} bytes, the command said {n}"
            if command == 0x51:
                self._misc_answer = self._run_misc(address, bytes(data))
            else:
                self._write_memory(command, address, bytes(data), ap)
            return
        assert len(data) == 16, f"a command block is 16 bytes, not {len(data)}"
        self._command(bytes(data))

    def read(self, size: int) -> bytes:
        self._usb()
        self.bulk_in += 1
        if not self._answers:
            raise FakeUsbError("[Errno 110] Operation timed out")  # no answer was due
        answer = self._answers.popleft()
        assert len(answer) <= size, f"asked for {size} bytes, the answer has {len(answer)}"
        return answer

    def close(self) -> None:
        pass

    def _answer(self, data: bytes) -> None:
        if self.garble_next == "short":
            data = data[:-1]
        elif self.garble_next == "status":
            data = b"\x5a" + data[1:]
        self.garble_next = None
        self._answers.append(data)

    # -- the command decoder ----------------------------------------------------------------

    def _has(self, v2_jtag: int) -> bool:
        return self.variant.hardware >= 3 or self.variant.jtag >= v2_jtag

    def _need(self, v2_jtag: int, command: int) -> None:
        assert self._has(v2_jtag), (
            f"firmware V{self.variant.hardware}J{self.variant.jtag} has no command"
            f" 0x{command:02X} (from J{v2_jtag}): a real probe would not answer"
        )

    def _command(self, block: bytes) -> None:
        first = block[0]
        self.commands[block[1] if first == 0xF2 else first] += 1
        v = self.variant
        if first == 0xF1:  # GET_VERSION: BE word hw|J|S (a V3 reports J0 S0), VID, PID
            jtag, low = (0, 0) if v.hardware >= 3 else (v.jtag, v.swim)
            word = v.hardware << 12 | jtag << 6 | low
            self._answer(struct.pack(">H", word) + struct.pack("<HH", ST_VID, v.product))
        elif first == 0xFB:  # GET_VERSION_EX
            assert v.hardware >= 3, "GET_VERSION_EX is a V3 command"
            versions = bytes([v.hardware, v.swim, v.jtag, v.msc, v.bridge, 0, 0, 0])
            self._answer(versions + struct.pack("<HH", ST_VID, v.product))
        elif first == 0xF5:
            self._answer(bytes([self.mode, 0]))
        elif first == 0xF3:
            assert block[1] == 0x07, "DFU commands other than DFU_EXIT"
            if not self.stuck_in_dfu:
                self.mode = MODE_MASS
            self.events.append("dfu-exit")
        elif first == 0xF7:  # GET_TARGET_VOLTAGE: V = 2 * a1 * 1.2 / a0
            reference = 1489
            self._answer(struct.pack("<II", reference, round(self.target_volts * reference / 2.4)))
        elif first == 0xF2:
            self._debug(block)
        else:
            raise AssertionError(f"the fake ST-LINK got an unknown command 0x{first:02X}")

    def _debug(self, block: bytes) -> None:
        command = block[1]
        ok = bytes([STATUS_OK, 0])
        if command == 0x21:  # EXIT
            self.mode = MODE_MASS
            self.events.append("exit")
        elif command == 0x30:  # ENTER2
            assert block[2] == 0xA3, "only SWD is entered here"
            self.mode = MODE_DEBUG
            self._aps_open.clear()
            self.events.append("enter-swd")
            self._answer(ok)
            self._swd_connect()
        elif command == 0x31:  # READ_IDCODES
            self._require_debug(command)
            try:
                idcode = self._dp_read(0x0)
                self._answer(bytes([STATUS_OK, 0, 0, 0]) + struct.pack("<I", idcode) + bytes(4))
            except _Fault:
                self._answer(bytes([IDCODE_ERROR]) + bytes(11))
        elif command == 0x3C:  # DRIVE_NRST
            self.nrst_low = block[2] == 0x00
            self.events.append("nrst-low" if self.nrst_low else "nrst-high")
            self._answer(ok)
        elif command == 0x43:  # SWD_SET_FREQ (divisor)
            self._need(22, command)
            assert self.variant.hardware == 2, "a V3 sets its clock with SET_COM_FREQ"
            divisors = {0: 4000, 1: 1800, 2: 1200, 3: 950, 7: 480, 15: 240, 31: 125, 40: 100}
            divisors |= {79: 50, 158: 25, 265: 15, 798: 5}
            (divisor,) = struct.unpack("<H", block[2:4])
            self.swd_khz = divisors[divisor]
            self._answer(ok)
        elif command == 0x62:  # GET_COM_FREQ
            assert self.variant.hardware >= 3, "GET_COM_FREQ is a V3 command"
            table = list(V3_CLOCKS_KHZ) + [0] * (10 - len(V3_CLOCKS_KHZ))
            current = self.swd_khz or V3_CLOCKS_KHZ[2]
            payload = struct.pack("<II10I", current, len(V3_CLOCKS_KHZ), *table)
            self._answer(bytes([STATUS_OK, 0, 0, 0]) + payload)
        elif command == 0x61:  # SET_COM_FREQ
            assert self.variant.hardware >= 3, "SET_COM_FREQ is a V3 command"
            (khz,) = struct.unpack("<I", block[4:8])
            assert khz in V3_CLOCKS_KHZ, f"{khz} kHz is not a clock GET_COM_FREQ offered"
            self.swd_khz = khz
            self._answer(bytes([STATUS_OK, 0, 0, 0]) + struct.pack("<I", khz))
        elif command in (0x07, 0x08, 0x48):  # READMEM_32BIT, WRITEMEM_32BIT, WRITEMEM_16BIT
            self._memory_command(command, block)
        elif command == 0x51:  # RW_MISC_OUT: items (LE32 at 2), then the data phase
            self._need_misc()
            self._require_debug(command)
            (items,) = struct.unpack("<I", block[2:6])
            self._data_phase = (command, items, -(-items // 4) * 4 + 4 * items, 0)
        elif command == 0x52:  # RW_MISC_IN
            self._need_misc()
            assert self._misc_answer, "RW_MISC_IN without an RW_MISC_OUT before it"
            self._answer(self._misc_answer)
            self._misc_answer = b""
        elif command == 0x3E:  # GETLASTRWSTATUS2
            status, fault = self._last
            self._answer(bytes([status, 0, 0, 0]) + struct.pack("<I", fault) + bytes(4))
        elif command == 0x4B:  # INIT_AP
            self._need(28, command)
            self._require_debug(command)
            self._aps_open.add(block[2])
            self._answer(ok)
        elif command in (0x45, 0x46):  # READ_DAP_REG, WRITE_DAP_REG
            self._need(24, command)
            self._require_debug(command)
            port, register = struct.unpack("<HH", block[2:6])
            if port != 0xFFFF:
                self._require_ap(port)
            try:
                if command == 0x45:
                    value = (
                        self._dp_read(register) if port == 0xFFFF else self._ap_read(port, register)
                    )
                    self._answer(bytes([STATUS_OK, 0, 0, 0]) + struct.pack("<I", value))
                else:
                    (value,) = struct.unpack("<I", block[6:10])
                    if port == 0xFFFF:
                        self._dp_write(register, value)
                    else:
                        self._ap_write(port, register, value)
                    self._answer(ok)
            except _Fault as fault:
                self._answer(bytes([fault.status, 0]) + (bytes(6) if command == 0x45 else b""))
        else:
            raise AssertionError(f"the fake ST-LINK got an unknown debug command 0x{command:02X}")

    def _need_misc(self) -> None:
        v = self.variant
        assert v.jtag >= (2 if v.hardware >= 3 else 32), "RW_MISC needs V2J32 or V3J2"

    def _run_misc(self, items: int, data: bytes) -> bytes:
        codes = data[:items]
        values = struct.unpack(f"<{items}I", data[-4 * items :])
        ap = address = None
        results, statuses = [], []
        for code, value in zip(codes, values, strict=True):
            result, status = 0, STATUS_OK
            if code == 5:
                ap = value
                self._require_ap(ap)
            elif code == 1:
                address = value
            else:
                assert ap is not None, "an RW_MISC memory item before its AP number"
                if code == 2:
                    assert address is not None, "an RW_MISC write before its address"
                    _, (status, _) = self._run_memory(
                        ap, address, 4, 4, value.to_bytes(4, "little")
                    )
                else:
                    assert code == 3, f"RW_MISC item code {code}"
                    raw, (status, _) = self._run_memory(ap, value, 4, 4, None)
                    result = int.from_bytes(raw, "little")
            results.append(result)
            statuses.append(status)
        return struct.pack(f"<{2 * items}I", *results, *statuses)

    def _require_debug(self, command: int) -> None:
        assert self.mode == MODE_DEBUG, f"debug command 0x{command:02X} outside debug mode"

    def _require_ap(self, ap: int) -> None:
        if self._has(28):
            assert ap in self._aps_open, f"AP {ap} used before INIT_AP (needed from J28)"

    # -- memory -------------------------------------------------------------------------------

    def _memory_command(self, command: int, block: bytes) -> None:
        if command == 0x48:
            self._need(26, command)
        self._require_debug(command)
        address, n, ap = struct.unpack("<IHB", block[2:9])
        size = 2 if command == 0x48 else 4
        assert n <= 6144, f"{n} bytes in one memory command (the probe's buffer is 6144)"
        assert address % size == 0 and n % size == 0, "unaligned memory command"
        self._require_ap(ap)
        if command == 0x07:
            data, self._last = self._run_memory(ap, address, n, size, None)
            self._answer(data)
        else:
            self._data_phase = (command, address, n, ap)

    def _write_memory(self, command: int, address: int, data: bytes, ap: int) -> None:
        size = 2 if command == 0x48 else 4
        _, self._last = self._run_memory(ap, address, len(data), size, data)

    def _run_memory(
        self, ap: int, address: int, n: int, size: int, data: bytes | None
    ) -> tuple[bytes, tuple[int, int]]:
        """One memory command as MEM-AP transfers: CSW and TAR once, then DRW per unit
        (reads posted: each answers the one before, RDBUFF the last). A FAULT answer
        names the access before it (the one that set the sticky error); a sticky error
        left by the last access is found in CTRL/STAT. Returns the data read (zeros
        from the fault on) and (status, faulting address)."""
        units = n // size
        values: list[int] = []
        done = -1  # the unit whose access was last sent
        try:
            self._ap_write(ap, 0x00, 0x23000000 | {2: 0b001, 4: 0b010}[size] | 0b01 << 4)
            self._ap_write(ap, 0x04, address)
            for unit in range(units):
                where = address + unit * size
                if data is None:
                    value = self._transfer(True, True, 0x0C)
                    if unit:
                        values.append(value)
                else:
                    value = int.from_bytes(data[unit * size : (unit + 1) * size], "little")
                    self._transfer(True, False, 0x0C, value << (8 * (where & 3)))
                done = unit
            if data is None and units:
                values.append(self._transfer(False, True, 0x0C))  # RDBUFF
            if self._transfer(False, True, 0x4) & (1 << 5):  # STICKYERR after the last
                raise _Fault(AP_FAULT)
        except _Fault as fault:
            failed = address + max(done, 0) * size
            raw = b"".join(v.to_bytes(4, "little") for v in values)
            return raw.ljust(n if data is None else 0, b"\0"), (fault.status, failed)
        raw = b"".join(
            ((v >> (8 * ((address + i * size) & 3))) & ((1 << (8 * size)) - 1)).to_bytes(
                size, "little"
            )
            for i, v in enumerate(values)
        )
        return raw, (STATUS_OK, 0)

    # -- the firmware's SWD driver (ADIv5) --------------------------------------------------

    def _transfer(self, ap: bool, read: bool, register: int, value: int = 0) -> int:
        target = self.target
        for _ in range(64):
            if target is None:
                raise _Fault(AP_ERROR if ap else IDCODE_ERROR)
            ack, answer = target.packet(_request(ap, read, register), None if read else value)
            if ack == ACK_OK:
                if not read:
                    return 0
                assert answer is not None
                data = answer & 0xFFFFFFFF
                if _parity(data) != answer >> 32 & 1:
                    raise _Fault(0x13 if ap else 0x17)  # parity error
                return data
            if ack == ACK_FAULT:
                raise _Fault(AP_FAULT if ap else DP_FAULT)
            if ack != ACK_WAIT:
                raise _Fault(AP_ERROR if ap else IDCODE_ERROR)  # nobody drove the line
        raise _Fault(AP_WAIT if ap else DP_WAIT)

    def _swd_connect(self) -> None:
        """What ENTER2 SWD does: the switch sequence, IDCODE, ABORT, power-up."""
        self._select = None
        if self.target is None:
            return
        self.target.line_reset()
        self.target.sequence(0xE79E, 16)
        self.target.line_reset()
        try:
            self._dp_read(0x0)
            self._dp_write(0x0, 0b11110)  # ABORT: clear every sticky flag
            self._dp_write(0x4, 0x50000000)  # CSYSPWRUPREQ | CDBGPWRUPREQ
            for _ in range(10):
                if self._dp_read(0x4) & 0xA0000000 == 0xA0000000:
                    return
        except _Fault:
            return  # READ_IDCODES reports it

    def _dp_read(self, register: int) -> int:
        return self._transfer(False, True, register)

    def _dp_write(self, register: int, value: int) -> None:
        if register == 0x8:
            self._select = value
        self._transfer(False, False, register, value)

    def _bank(self, ap: int, register: int) -> None:
        select = ap << 24 | register & 0xF0
        if select != self._select:
            self._dp_write(0x8, select)

    def _ap_read(self, ap: int, register: int) -> int:
        self._bank(ap, register)
        self._transfer(True, True, register & 0x0C)
        return self._transfer(False, True, 0x0C)  # RDBUFF

    def _ap_write(self, ap: int, register: int, value: int) -> None:
        self._bank(ap, register)
        self._transfer(True, False, register & 0x0C, value)

    # -- plugging -----------------------------------------------------------------------------

    def info(self) -> FakeDeviceInfo:
        error = None if self.accessible else "permission denied"
        return FakeDeviceInfo(
            self.bus, self.address, self.serial, self.variant.product, self.accessible, error
        )

    def unplug(self) -> None:
        self.plugged = False
        self.fail_after = None

    def replug(self, address: int) -> None:
        """Plug the probe back in: a new USB address, the firmware in its power-on state."""
        self.address = address
        self.plugged = True
        self._power_on()


class FakeStlinkUsb:
    """The host's USB bus with fake ST-LINKs; ``backend()`` is the seam to inject."""

    link_errors = (FakeUsbError,)

    def __init__(self) -> None:
        self.probes: list[FakeStlink] = []
        self.opened = 0

    def add(
        self,
        target: SimSwdTarget | None,
        variant: str = "V2J37",
        *,
        bus: int = 1,
        address: int = 5,
        serial: str = "066DFF343633464257",
    ) -> FakeStlink:
        probe = FakeStlink(self, target, variant, bus, address, serial)
        self.probes.append(probe)
        return probe

    def find_devices(self) -> list[FakeDeviceInfo]:
        return [probe.info() for probe in self.probes if probe.plugged]

    def open(self, device: FakeDeviceInfo) -> FakeStlink:
        for probe in self.probes:
            if probe.plugged and (probe.bus, probe.address) == (device.bus, device.address):
                if not probe.accessible:
                    raise FakeUsbError("[Errno 13] Access denied (insufficient permissions)")
                self.opened += 1
                return probe
        raise FakeUsbError(f"no device at {device.bus}:{device.address}")

    def backend(self) -> FakeStlinkUsb:
        return self
