"""USB transfers per KiB on the CH341A and the CH347, against the fewest their packet
sizes allow (issue 16).

A 16 MiB W25Q128JV (simulator chip model, instant timing) behind each packet-level fake
(tests/ch341a_fake.py, tests/ch347_fake.py) is programmed (no erase: the part is blank;
no verify) and then read whole; the fakes count every bulk OUT and IN transfer.

The floor, from the chip's rules (flashrom's programmers/ch341a_spi.c): a 32-byte USB
packet carries one command byte and at most 31 SPI bytes, and the chip answers every
SPI packet with one IN packet of as many bytes, which ends an IN transfer (a short
packet). So every 31 bytes clocked cost one IN transfer at least. OUT transfers: a read
can put up to 256 packets in one write (flashrom's limit); a packet shorter than 32
bytes ends a write (the chip takes the USB packet's length as the command's), so a page
program costs at least three writes: WREN (one byte), the page (4 + 256 bytes, its
last packet short) and the first status read.

- read floor per KiB:    IN 1024/31,  OUT 1024/31/256
- program floor per KiB: IN 4 x (ceil(260/31) + 2) (the page's packets, WREN's and the
  status read's answers), OUT 4 x 3

The CH347 (flashrom's programmers/ch347_spi.c) moves up to 507 payload bytes a packet
of 510 and each command is its own USB write with its own answer; its floor here is the
packet size only: the bytes clocked each way / 507 (a read: 1024/507 IN a KiB; a page
program: its 4 + 256 bytes out and one answer).

The CH347T in mode 2 (HID) carries each of those packets in a 512-byte report (a 2-byte
length, then at most 510 bytes: i2cy/CH347-HIDAPI's framing), so its floor is the same
507 payload bytes a transfer. Its endpoints are interrupt ones (bInterval 1 at high
speed: nic3-14159/CH347-Research's descriptor dump), which the host polls once a 125 us
microframe: the busier direction's reports x 125 us is a floor on the time, printed too.

Run: .venv/bin/python tests/bench/bench_usb_transfers.py [--mib 16]
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the fakes

from ch341a_fake import FakeCh341Usb
from ch347_fake import CH347T_HID, FakeCh347Usb

from app.core.image import MemoryImage
from app.devicedb import load_database
from app.engine.site_runner import CycleSpec
from app.engine.station import Station
from app.hal.programmer import open_programmer
from app.hal.sim.clock import SimClock, Timing
from app.hal.sim.spi_nor_chip import SpiNorChip

PAYLOAD = 31  # SPI bytes per 32-byte packet
PACKETS_PER_WRITE = 256
PAGE = 256
PAGES_PER_KIB = 1024 // PAGE
READ_FLOOR_IN = 1024 / PAYLOAD
READ_FLOOR_OUT = READ_FLOOR_IN / PACKETS_PER_WRITE
PROGRAM_FLOOR_IN = PAGES_PER_KIB * (math.ceil((4 + PAGE) / PAYLOAD) + 2)
PROGRAM_FLOOR_OUT = PAGES_PER_KIB * 3
CH347_PAYLOAD = 507
CH347_READ_FLOOR = 1024 / CH347_PAYLOAD
CH347_PROGRAM_FLOOR = PAGES_PER_KIB * (math.ceil((4 + PAGE) / CH347_PAYLOAD) + 1)
MICROFRAME_S = 125e-6  # a high-speed interrupt endpoint with bInterval 1: a report each

#: chip -> (fake USB bus, URL, backend key, (program OUT, IN floors), (read OUT, IN
#: floors), the board's USB product id (None: the fake's default))
CHIPS = {
    "CH341A": (
        FakeCh341Usb,
        "ch341a://?vcc=3300",
        "ch341a_backend",
        (PROGRAM_FLOOR_OUT, PROGRAM_FLOOR_IN),
        (READ_FLOOR_OUT, READ_FLOOR_IN),
        None,
    ),
    "CH347": (
        FakeCh347Usb,
        "ch347://",
        "ch347_backend",
        (CH347_PROGRAM_FLOOR / 2, CH347_PROGRAM_FLOOR / 2),
        (0.0, CH347_READ_FLOOR),
        None,
    ),
    "CH347-HID": (
        FakeCh347Usb,
        "ch347://",
        "ch347_backend",
        (CH347_PROGRAM_FLOOR / 2, CH347_PROGRAM_FLOOR / 2),
        (0.0, CH347_READ_FLOOR),
        CH347T_HID,
    ),
}


def measure(chip: str, size: int) -> None:
    fake, url, key, program_floor, read_floor, product = CHIPS[chip]
    database = load_database()
    device = database.get("winbond.w25q128jv")
    usb = fake()
    part = SpiNorChip(device, SimClock(Timing("instant")))
    board = usb.add(part) if product is None else usb.add(part, product=product)
    programmer = open_programmer(url, device=device, database=database, **{key: usb.backend()})
    station = Station(programmer, lambda _e: None, lambda _id: [])
    data = random.Random(16).randbytes(size)
    kib = size / 1024

    before = (board.bulk_out, board.bulk_in)
    t0 = time.perf_counter()
    image = MemoryImage.from_bytes(data)
    spec = CycleSpec("program", device, image, erase_mode="none", verify=False)
    result = station.run(spec).results[0]
    program_s = time.perf_counter() - t0
    assert result.passed, result.message
    out_p, in_p = board.bulk_out - before[0], board.bulk_in - before[1]

    before = (board.bulk_out, board.bulk_in)
    t0 = time.perf_counter()
    read = station.run(CycleSpec("read", device, read_range=(0, size))).results[0]
    read_s = time.perf_counter() - t0
    assert read.passed and read.data == data, read.message
    out_r, in_r = board.bulk_out - before[0], board.bulk_in - before[1]
    programmer.close()

    print(f"{chip} packet-level fake, W25Q128JV, {size / 2**20:g} MiB:")
    line = "  {:<8} OUT {:7.2f}/KiB (floor {:6.2f})  IN {:7.2f}/KiB (floor {:6.2f})"
    line += "  total {:7.2f}/KiB = {:.2f}x the floor  ({:.1f} s in-process)"
    for name, out, inn, fo, fi, secs in (
        ("program", out_p, in_p, *program_floor, program_s),
        ("read", out_r, in_r, *read_floor, read_s),
    ):
        total, floor = (out + inn) / kib, fo + fi
        text = line.format(name, out / kib, fo, inn / kib, fi, total, total / floor, secs)
        if product is not None:  # interrupt endpoints: a report a microframe each way
            text += f"  >= {max(out, inn) * MICROFRAME_S:.1f} s of microframes"
        print(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--mib", type=float, default=16, help="image size in MiB (16)")
    parser.add_argument("--chips", default="CH341A,CH347,CH347-HID", help="CH341A,CH347,CH347-HID")
    args = parser.parse_args(argv)
    for chip in args.chips.split(","):
        measure(chip, int(args.mib * 2**20))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
