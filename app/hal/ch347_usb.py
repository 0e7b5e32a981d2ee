"""CH347 USB access: the chip on the WCH device seam (app.hal.wch_usb), and its packets.

Facts, checked against flashrom's programmers/ch347_spi.c and WCH's ch34x_mphsi Linux
driver (ch34x_mphsi.h, its SPI layer): the CH347T in mode 1 is USB 1a86:55db with its
bulk endpoints on vendor interface 2, the CH347F is 1a86:55de on interface 4; commands
go to bulk OUT 0x06 and answers come from bulk IN 0x86. A command is one USB write of
at most 510 bytes, ``[command, payload length (16 bits, little endian), payload]`` (so
507 payload bytes at most); the answers the SPI commands send are framed the same way.
The I2C stream (app.hal.ch347_i2c) is the exception: it is not framed.

Mode 2 of the CH347T (1a86:55dc, product string "HID To UART+SPI+I2C") carries the same
packets in HID reports on interface 1, whose endpoints are interrupt OUT 0x06 and IN 0x86
(512 bytes, bInterval 1; interface 0 is the UART). Sources, none of them WCH's: the lsusb
dump and HID report descriptor of a mode-2 CH347T in nic3-14159/CH347-Research
(usb_descriptors/descriptor_mode2.txt, mode2_1_hid_descr.txt: vendor usage page 0xFFA0, no
report IDs, 512-byte input and output reports, a 64-byte feature report) and the hidapi
library i2cy/CH347-HIDAPI (ch347api/__device.py, __spi.py), which sends every mode-1
packet as an output report ``[length (16 bits, little endian), the packet]`` and reads
each answer packet from an input report framed the same way. flashrom's ch347_spi.c has
no HID mode. :class:`HidReports` does that framing, so everything above it speaks mode 1.
"""

from __future__ import annotations

from app.hal import wch_usb
from app.hal.errors import LinkError
from app.hal.wch_usb import UsbChip, WchBackend, WchHandle

CH347_VID = 0x1A86
CH347T_PID = 0x55DB  # mode 1 (the mode pins select it)
CH347T_HID_PID = 0x55DC  # mode 2: the same packets in HID reports
CH347F_PID = 0x55DE
CH347 = UsbChip("CH347", CH347_VID, {CH347T_PID: 2, CH347T_HID_PID: 1, CH347F_PID: 4}, 0x06, 0x86)
PACKET = 510  # the longest USB write (and answer) the vendor driver and flashrom use
HEADER = 3
MAX_PAYLOAD = PACKET - HEADER
REPORT = 512  # a mode-2 input or output report: its 16-bit length, then the packet
REPORT_HEADER = 2
#: the CH347F's function switch: its pins carry I2C only after it (WCH's driver)
FUNCTION_SWITCH = 0xE2


def pyusb_backend() -> WchBackend:
    """pyusb (installed with pyftdi); imported only when a ch347:// URL is opened."""
    return wch_usb.pyusb_backend(CH347)


class HidReports:
    """A mode-2 CH347T: each packet of mode 1 travels in one HID report.

    An output report is ``[length (16 bits, little endian), packet, zeros]``, always 512
    bytes, as the report descriptor declares them and as the Windows HID driver sends
    them. Unproven without hardware: whether the chip minds the padding (i2cy's library
    writes short reports, which hidraw on Linux sends as they are). An input report is
    framed the same way; what follows its length is ignored."""

    def __init__(self, usb: WchHandle) -> None:
        self.usb = usb

    def write(self, data: bytes) -> None:
        if len(data) > REPORT - REPORT_HEADER:
            raise ValueError(
                f"a {len(data)}-byte CH347 packet does not fit a HID report"
                f" (at most {REPORT - REPORT_HEADER} bytes)"
            )
        report = len(data).to_bytes(REPORT_HEADER, "little") + data
        self.usb.write(report.ljust(REPORT, b"\x00"))

    def read(self, size: int) -> bytes:
        """The packet of one input report. ``size`` is not needed: a report holds one
        packet of at most 510 bytes, which is what every caller asks for."""
        report = self.usb.read(REPORT)
        if len(report) < REPORT_HEADER:
            raise LinkError(f"CH347 sent a {len(report)}-byte HID report: {report.hex(' ')}")
        length = int.from_bytes(report[:REPORT_HEADER], "little")
        if length > min(REPORT, len(report)) - REPORT_HEADER:
            raise LinkError(
                f"CH347 sent a HID report saying {length} bytes follow in a"
                f" {len(report)}-byte report (a report carries at most"
                f" {REPORT - REPORT_HEADER})"
            )
        return report[REPORT_HEADER : REPORT_HEADER + length]

    def close(self) -> None:
        self.usb.close()


def framing(product: int, usb: WchHandle) -> WchHandle:
    """The handle the chip's packets go through: HID reports in mode 2, else the USB
    transfers themselves."""
    return HidReports(usb) if product == CH347T_HID_PID else usb


def command(code: int, payload: bytes) -> bytes:
    """One command packet."""
    return bytes((code,)) + len(payload).to_bytes(2, "little") + payload


def answer(handle: WchHandle, code: int) -> bytes:
    """The payload of the next answer packet, which must answer ``code``. A short or
    foreign packet means the stream is out of step: LinkError."""
    raw = handle.read(PACKET)
    if len(raw) < HEADER or raw[0] != code:
        raise LinkError(f"CH347 answered command 0x{code:02X} with {raw[:8].hex(' ') or 'nothing'}")
    length = int.from_bytes(raw[1:HEADER], "little")
    if len(raw) - HEADER < length:
        raise LinkError(
            f"CH347 answered command 0x{code:02X} with {len(raw) - HEADER} of {length} bytes"
        )
    return raw[HEADER : HEADER + length]


def expect_ok(handle: WchHandle, code: int) -> None:
    """Read a status answer (``[code, 1, 0, status]``; 0 is success)."""
    status = answer(handle, code)
    if status[:1] != b"\x00":
        raise LinkError(f"CH347 refused command 0x{code:02X} (status {status.hex(' ') or 'none'})")


def switch_to_i2c(handle: WchHandle) -> None:
    """The CH347F's pins to I2C (payload bytes 2 and 3 set to 0x81, as WCH's driver)."""
    handle.write(command(FUNCTION_SWITCH, bytes((0, 0, 0x81, 0x81, 0, 0, 0, 0))))
    expect_ok(handle, FUNCTION_SWITCH)
