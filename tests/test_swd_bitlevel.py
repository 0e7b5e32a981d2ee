"""The bit-level SWD front (tests/swd_bitlevel.py) and the simulated target's overrun
detection, clocked by a host that works as OpenOCD's bitbang driver does
(src/jtag/drivers/bitbang.c, 0.12.0: per bit SWDIO set or released while SWCLK is low,
SWDIO read, then SWCLK high; a read clocks 8 bits out and 38 in, a write 8 out, 5 in and
33 out). Request bytes are built here from the ADIv5 request layout."""

from __future__ import annotations

from swd_bitlevel import SwdBitFront  # tests/ is on sys.path (rootdir)

from app.hal.sim.clock import SimClock, Timing
from app.hal.sim.mcu_target import McuSpec, make_mcu
from app.hal.sim.swd_target import SimSwdTarget

RAM = 0x2000_0000
F1 = McuSpec("stm32f1", 0x0800_0000, (1024,) * 64, RAM, 20 * 1024, 0x410)
OK, WAIT, FAULT, NOBODY = 0b001, 0b010, 0b100, 0b111


def req(ap: bool, read: bool, a: int) -> int:
    """Start 1, APnDP, RnW, A[3:2], even parity of those four, stop 0, park 1."""
    body = int(ap) | int(read) << 1 | ((a >> 2) & 3) << 2
    return 1 | body << 1 | (bin(body).count("1") & 1) << 5 | 1 << 7


def par(value: int) -> int:
    return bin(value).count("1") & 1


class BitHost:
    def __init__(self, front: SwdBitFront) -> None:
        self.front = front

    def out(self, bits: int, n: int) -> None:
        for i in range(n):
            self.front.rising_edge((bits >> i) & 1)

    def take(self, n: int) -> int:
        value = 0
        for i in range(n):
            value |= self.front.line(None) << i
            self.front.rising_edge(None)
        return value

    def line_reset(self) -> None:
        self.out((1 << 56) - 1, 56)

    def connect(self) -> None:
        self.line_reset()
        self.out(0xE79E, 16)
        self.line_reset()
        self.out(0, 2)

    def read(self, request: int) -> tuple[int, int, bool]:
        self.out(request, 8)
        bits = self.take(38)
        data = (bits >> 4) & 0xFFFFFFFF
        return (bits >> 1) & 7, data, (bits >> 36) & 1 == par(data)

    def write(self, request: int, data: int, *, data_phase: bool = True) -> int:
        self.out(request, 8)
        ack = (self.take(5) >> 1) & 7
        if data_phase:
            self.out(data | par(data) << 32, 33)
        return ack


def setup(**kw) -> tuple[SimSwdTarget, SwdBitFront, BitHost]:
    target = SimSwdTarget(regions={RAM: bytearray(64)}, **kw)
    front = SwdBitFront(target)
    return target, front, BitHost(front)


def power_up(host: BitHost, ctrl: int = 0x5000_0000) -> None:
    assert host.write(req(False, False, 0x4), ctrl) == OK
    assert host.write(req(False, False, 0x8), 0) == OK  # SELECT AP 0, bank 0
    assert host.write(req(True, False, 0x0), 0x2300_0012) == OK  # CSW: word, increment


def test_connect_and_read_idcode() -> None:
    _, front, host = setup()
    assert host.read(req(False, True, 0x0)) == (NOBODY, 0xFFFFFFFF, False)  # still JTAG
    host.connect()
    assert host.read(req(False, True, 0x0)) == (OK, 0x1BA01477, True)
    assert front.line_resets == 2 and front.collisions == 0


def test_memory_write_and_posted_read_round_trip() -> None:
    target, front, host = setup()
    host.connect()
    power_up(host)
    assert host.write(req(True, False, 0x4), RAM + 8) == OK  # TAR
    assert host.write(req(True, False, 0xC), 0xCAFEF00D) == OK  # DRW
    assert host.write(req(True, False, 0xC), 0x12345678) == OK
    assert target.regions[RAM][8:16] == bytes.fromhex("0df0feca78563412")
    assert host.write(req(True, False, 0x4), RAM + 8) == OK
    assert host.read(req(True, True, 0xC))[0] == OK  # posted: the value comes next
    assert host.read(req(True, True, 0xC))[1] == 0xCAFEF00D
    assert host.read(req(False, True, 0xC)) == (OK, 0x12345678, True)  # RDBUFF
    assert front.collisions == 0 and front.parity_errors == 0


def test_wait_has_no_data_phase_without_overrun_detection() -> None:
    target, _, host = setup()
    host.connect()
    power_up(host)
    target.wait_next = 1
    assert host.write(req(True, False, 0x4), RAM, data_phase=False) == WAIT
    host.out(0, 2)
    assert host.write(req(True, False, 0x4), RAM) == OK  # in step: the retry is taken
    assert host.write(req(True, False, 0xC), 7) == OK
    assert target.regions[RAM][0] == 7


def test_overrun_detection_keeps_the_data_phase_and_refuses_what_follows() -> None:
    target, _, host = setup()
    host.connect()
    power_up(host, 0x5000_0001)  # ORUNDETECT
    target.wait_next = 1
    assert host.write(req(True, False, 0x4), RAM) == WAIT  # data phase clocked all the same
    assert host.write(req(True, False, 0xC), 0xBAD) == FAULT  # STICKYORUN: not done
    assert host.read(req(False, True, 0x4))[1] & 0b11 == 0b11  # ORUNDETECT, STICKYORUN
    assert host.read(req(False, True, 0x0))[0] == OK  # IDCODE is always answered
    assert host.write(req(False, False, 0x0), 1 << 4) == OK  # ABORT ORUNERRCLR
    assert host.write(req(True, False, 0x4), RAM) == OK
    assert host.write(req(True, False, 0xC), 0x600D) == OK
    assert target.regions[RAM][:4] == (0x600D).to_bytes(4, "little")


def test_a_bad_request_locks_the_port_out_until_a_line_reset() -> None:
    _, front, host = setup()
    host.connect()
    assert host.read(req(False, True, 0x0) ^ 1 << 5)[0] == NOBODY  # wrong parity
    assert host.read(req(False, True, 0x0))[0] == NOBODY  # locked out
    host.line_reset()
    host.out(0, 2)
    assert host.read(req(False, True, 0x0))[:2] == (OK, 0x1BA01477)
    assert front.collisions == 0


def test_write_data_with_a_wrong_parity_is_dropped() -> None:
    target, front, host = setup()
    host.connect()
    power_up(host)
    host.write(req(True, False, 0x4), RAM)
    host.out(req(True, False, 0xC), 8)
    assert (host.take(5) >> 1) & 7 == OK
    host.out(0x1234 | (par(0x1234) ^ 1) << 32, 33)
    assert front.parity_errors == 1 and target.regions[RAM][:4] == bytes(4)


def test_a_write_the_flash_stalls_is_answered_ok_and_the_next_request_waits() -> None:
    """A write's ACK is clocked out before its data: the SW-DP takes the write into its
    buffer (RM0008 31.8.4) and the WAIT goes to the next request while the flash still
    programs the previous half-word (a model that answered the write itself WAIT once
    it saw the data could not be clocked: the front raises)."""
    clock = SimClock(Timing())  # virtual: each packet advances it at 4 MHz
    mcu = make_mcu(F1, clock, Timing("typ"))  # DS5319 tprog 52.5 us
    front = SwdBitFront(mcu)
    host = BitHost(front)
    host.connect()
    power_up(host, 0x5000_0001)  # ORUNDETECT, as OpenOCD runs: WAIT keeps its data phase
    for address, value in [
        (0x4002_2004, 0x4567_0123),
        (0x4002_2004, 0xCDEF_89AB),
        (0x4002_2010, 1),
    ]:
        assert host.write(req(True, False, 0x4), address) == OK  # FLASH_KEYR x2, CR = PG
        assert host.write(req(True, False, 0xC), value) == OK
    assert host.write(req(True, False, 0x0), 0x2300_0011) == OK  # CSW half-word, increment
    assert host.write(req(True, False, 0x4), 0x0800_0000) == OK
    assert host.write(req(True, False, 0xC), 0x1111) == OK  # programs
    assert host.write(req(True, False, 0xC), 0x2222 << 16) == OK  # held: the flash is busy
    acks = []
    while not acks or acks[-1] != OK:
        acks.append(host.read(req(False, True, 0xC))[0])  # RDBUFF
        if acks[-1] == WAIT:
            assert host.write(req(False, False, 0x0), 1 << 4) == OK  # ABORT ORUNERRCLR
        assert len(acks) < 50
    assert acks[0] == WAIT and mcu.wait_acks == len(acks) - 1
    assert mcu.flash[:4] == bytes.fromhex("11112222")
    assert front.collisions == 0 and front.parity_errors == 0
