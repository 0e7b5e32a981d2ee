"""The SWD layers (app.hal.swd, app.hal.debug_port) against the simulated target
(app.hal.sim.swd_target), both written from ADIv5: request encoding, connect and power-up, MEM-AP
block transfers across the TAR boundary, posted reads, WAIT, FAULT and no target."""

from __future__ import annotations

import pytest

from app.hal.debug_port import DebugPort
from app.hal.sim.swd_target import SimSwdTarget
from app.hal.swd import PacketLink, SwdError, SwdFault, SwdMismatch, request_byte

RAM = 0x2000_0000


class CountingTarget(SimSwdTarget):
    """The target, keeping every request byte it was sent."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.requests: list[int] = []

    def packet(self, request: int, data: int | None) -> tuple[int, int | None]:
        self.requests.append(request)
        return super().packet(request, data)


def target(**kw) -> CountingTarget:
    return CountingTarget(regions={RAM: bytearray(8192)}, **kw)


def test_request_bytes_are_adiv5s() -> None:
    """The well-known request bytes (start, APnDP, RnW, A[3:2], parity, stop, park)."""
    assert request_byte(ap=False, read=True, address=0x0) == 0xA5  # DP IDCODE
    assert request_byte(ap=False, read=False, address=0x0) == 0x81  # DP ABORT
    assert request_byte(ap=False, read=True, address=0x4) == 0x8D  # DP CTRL/STAT
    assert request_byte(ap=False, read=False, address=0x8) == 0xB1  # DP SELECT
    assert request_byte(ap=False, read=True, address=0xC) == 0xBD  # DP RDBUFF
    assert request_byte(ap=True, read=True, address=0xC) == 0x9F  # AP DRW read
    assert request_byte(ap=True, read=False, address=0x4) == 0x8B  # AP TAR write


def test_connect_reads_idcode_and_powers_the_debug_domain_up() -> None:
    sim = target()
    port = DebugPort(PacketLink(sim))
    assert port.connect() == 0x1BA01477
    assert sim.requests[0] == 0xA5  # the first packet after the switch: IDCODE


def test_nothing_answers_before_the_jtag_to_swd_switch() -> None:
    sim = target()
    port = DebugPort(PacketLink(sim))
    with pytest.raises(SwdError, match="no acknowledge"):
        port.read_words(RAM, 1)  # never connected: the port is still in JTAG


def test_memory_round_trip_across_the_1kib_tar_boundary() -> None:
    sim = target()
    port = DebugPort(PacketLink(sim))
    port.connect()
    words = list(range(0x1000, 0x1000 + 600))
    start = RAM + 0x400 - 8  # two words before a 1 KiB boundary
    port.write_words(start, words)
    assert port.read_words(start, 600) == words
    raw = sim.regions[RAM][0x400 - 8 : 0x400 - 8 + 2400]
    assert [int.from_bytes(raw[i : i + 4], "little") for i in range(0, 2400, 4)] == words
    tar_writes = [r for r in sim.requests if r == 0x8B]
    # runs of 2, 256, 256 and 86 words (the boundaries at 1, 2 and 3 KiB), written and read
    assert len(tar_writes) == 4 * 2


def test_ap_reads_are_posted_and_end_with_rdbuff() -> None:
    sim = target()
    port = DebugPort(PacketLink(sim))
    port.connect()
    port.write_words(RAM, [1, 2, 3])
    sim.requests.clear()
    assert port.read_words(RAM, 3) == [1, 2, 3]
    # 3 DRW reads, the last posted one from RDBUFF, then the batch's CTRL/STAT check
    assert sim.requests.count(0x9F) == 3 and sim.requests[-2:] == [0xBD, 0x8D]


def test_wait_is_retried_and_a_storm_is_an_error() -> None:
    sim = target()
    port = DebugPort(PacketLink(sim, wait_retries=10))
    port.connect()
    sim.wait_next = 5
    port.write_words(RAM, [7])
    assert port.read_words(RAM, 1) == [7]
    sim.wait_next = 50
    with pytest.raises(SwdError, match="still WAIT after 10 retries"):
        port.read_words(RAM, 1)


def test_a_bus_error_faults_the_next_access_and_is_cleared() -> None:
    sim = target()
    port = DebugPort(PacketLink(sim))
    port.connect()
    with pytest.raises(
        SwdFault,
        match=r"FAULT during the read of 2 words at 0x60000000 \(CTRL/STAT 0x[0-9A-F]{8}\)",
    ):
        port.read_words(0x6000_0000, 2)  # nothing mapped there: STICKYERR, then FAULT
    port.write_words(RAM, [0xCAFE])  # ABORT cleared the sticky error
    assert port.read_words(RAM, 1) == [0xCAFE]


def test_no_target_is_named() -> None:
    port = DebugPort(PacketLink(target(present=False)))
    with pytest.raises(SwdError, match="no acknowledge"):
        port.connect()


def test_a_bad_parity_bit_is_caught() -> None:
    class Noisy(CountingTarget):
        def packet(self, request: int, data: int | None) -> tuple[int, int | None]:
            ack, value = super().packet(request, data)
            return ack, None if value is None else value ^ (1 << 32)

    with pytest.raises(SwdError, match="parity error reading DP read 0x0"):
        DebugPort(PacketLink(Noisy(regions={}))).connect()


class BusyFlash(CountingTarget):
    """A status word at STATUS reads busy (bit 0) ``busy_reads`` times after each write
    to FLASH, as a flash controller's BSY does while a half-word programs."""

    busy_reads = 3

    def __post_init__(self) -> None:
        super().__post_init__()
        self._busy = 0

    def _store(self, address: int, value: int) -> bool:
        if address < STATUS:
            self._busy = self.busy_reads
        return super()._store(address, value)

    def _load(self, address: int) -> int | None:
        if address == STATUS and self._busy:
            self._busy -= 1
            return 1
        return super()._load(address)


STATUS = 0x4002_200C


def test_polled_writes_wait_for_busy_to_clear_and_land_in_their_lane() -> None:
    sim = BusyFlash(regions={0x0800_0000: bytearray(b"\xff" * 64), STATUS: bytearray(4)})
    port = DebugPort(PacketLink(sim))
    port.connect()
    seen = port.write_polled([(0x0800_0000, 0x1234), (0x0800_0002, 0xABCD)], 2, STATUS, 1)
    assert seen == [0, 0]
    assert sim.regions[0x0800_0000][:4] == bytes.fromhex("3412CDAB")
    # each unit: its status read until ready (1 + 3 busy re-reads, each posted + RDBUFF)
    assert sim.requests.count(0x9F) == 2 * 4


def test_a_status_that_never_clears_is_named() -> None:
    sim = BusyFlash(regions={0x0800_0000: bytearray(4), STATUS: bytearray(4)})
    sim.busy_reads = 10**9
    port = DebugPort(PacketLink(sim, match_timeout_s=0.05))
    port.connect()
    with pytest.raises(SwdMismatch, match=r"still reads 0x00000001 after 0\.1 s"):
        port.write_polled([(0x0800_0000, 0x1234)], 2, STATUS, 1)


def test_a_bus_error_on_the_last_write_of_a_batch_is_caught() -> None:
    """Nothing follows the failing write to answer FAULT: the batch's closing CTRL/STAT
    read finds STICKYERR (and ABORT clears it for the next batch)."""
    sim = target()
    port = DebugPort(PacketLink(sim))
    port.connect()
    with pytest.raises(SwdFault, match=r"bus error during the write of 1 words at 0x60000000"):
        port.write_words(0x6000_0000, [1])
    port.write_words(RAM, [5])
    assert port.read_words(RAM, 1) == [5]
