"""A slow or loaded host never fails a good part: a busy wait is judged by a status read
taken after the deadline, not by a read from before a stall of the host thread."""

from __future__ import annotations

import pytest
from ftdi_fake import FakeUsb, spi_chip  # tests/ is on sys.path (rootdir conftest)

from app.hal.bus import SpiOp, WaitReady
from app.hal.errors import BusTimeout
from app.hal.programmer import open_programmer

WREN = SpiOp(b"\x06")
ERASE_4K = SpiOp(b"\x20\x00\x00\x00")
TIMEOUT_S = 0.4  # the datasheet maximum the algorithm waits for


@pytest.fixture
def w25q128(database):
    return database.get("winbond.w25q128jv")


def on_host_time(chip, clock, busy_s: float):
    """``chip`` (a real chip model) made to stay busy ``busy_s`` of host time after
    each erase, so the host clock's stalls decide what a poll sees."""
    transaction = chip.transaction
    chip.ready_at = 0.0

    def timed(write: bytes, read_len: int) -> bytes:
        if write[:1] == b"\x20":
            chip.ready_at = clock.now() + busy_s
        answer = transaction(write, read_len)
        if write[:1] == b"\x05" and clock.now() < chip.ready_at:
            return bytes([answer[0] | 0x01])  # WIP still set
        return answer

    chip.transaction = timed
    return chip


def erase_with_a_stalled_host(w25q128, stall_s: float, busy_s: float) -> None:
    usb = FakeUsb()
    board = usb.add("FTSLOW", "232h")
    iface = board.interfaces[1]
    iface.chip = on_host_time(spi_chip(w25q128), usb.clock, busy_s)
    site = open_programmer("ftdi://ftdi:232h/1", device=w25q128, ftdi_backend=usb.backend())
    site = site.sites[0]
    polls = {"n": 0}
    tick = usb.clock.tick

    def stalling_tick() -> None:  # a busy status answer arrives after a long stall
        tick()
        if iface.chip.ready_at and usb.clock.now() < iface.chip.ready_at:
            polls["n"] += 1
            if polls["n"] == 3:  # the answer to a status read that said busy
                usb.clock.sleep(stall_s)

    usb.clock.tick = stalling_tick  # type: ignore[method-assign]
    site.spi.transfer([WREN, ERASE_4K, WaitReady(0x05, 1, 0, TIMEOUT_S, 0.0)])


def test_a_stall_past_the_deadline_does_not_fail_a_part_that_is_ready(w25q128) -> None:
    # the part is ready after 0.2 s (well within 0.4 s); the host stalls 0.6 s right
    # after reading "busy": the read after the deadline sees it ready
    erase_with_a_stalled_host(w25q128, stall_s=0.6, busy_s=0.2)


def test_a_part_really_busy_past_the_deadline_still_times_out(w25q128) -> None:
    with pytest.raises(BusTimeout, match="still busy"):
        erase_with_a_stalled_host(w25q128, stall_s=0.6, busy_s=5.0)


def test_the_simulator_judges_busy_time_by_the_chip_clock(database, monkeypatch) -> None:
    """A host thread stalled for longer than the datasheet maximum between starting an
    erase and polling it (a loaded PC, GIL contention) does not fail the part."""
    import time

    from app.core.image import MemoryImage
    from app.engine.cycle import build_cycle_spec
    from app.engine.station import Station
    from app.hal.sim import buses

    device = database.get("winbond.w25x40cl")  # 4 KiB erase: typ 45 ms, max 400 ms
    wait = buses.SimSpiBus._wait
    stalls = [0.6]  # the first busy wait (the erase): the host comes back 0.6 s later

    def stalled_wait(self, op):
        if stalls:
            time.sleep(stalls.pop())
        return wait(self, op)

    monkeypatch.setattr(buses.SimSpiBus, "_wait", stalled_wait)
    programmer = open_programmer("sim://?sites=1&timing=typ", device=device, database=database)
    image = MemoryImage.from_bytes(bytes(range(256)) * 16)  # one 4 KiB block
    spec = build_cycle_spec("program", device, database, image=image)
    t0 = time.monotonic()
    result = Station(programmer, lambda e: None).run(spec).results[0]
    assert result.passed, result.message
    assert time.monotonic() - t0 > 0.6  # the host really stalled past the 400 ms maximum
