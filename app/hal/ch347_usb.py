"""CH347 USB access: the chip on the WCH device seam (app.hal.wch_usb), and its packets.

Facts, checked against flashrom's programmers/ch347_spi.c and WCH's ch34x_mphsi Linux
driver (ch34x_mphsi.h, its SPI layer): the CH347T in mode 1 is USB 1a86:55db with its
bulk endpoints on vendor interface 2, the CH347F is 1a86:55de on interface 4; commands
go to bulk OUT 0x06 and answers come from bulk IN 0x86. A command is one USB write of
at most 510 bytes, ``[command, payload length (16 bits, little endian), payload]`` (so
507 payload bytes at most); the answers the SPI commands send are framed the same way.
The I2C stream (app.hal.ch347_i2c) is the exception: it is not framed.
"""

from __future__ import annotations

from app.hal import wch_usb
from app.hal.errors import LinkError
from app.hal.wch_usb import UsbChip, WchBackend, WchHandle

CH347_VID = 0x1A86
CH347T_PID = 0x55DB  # mode 1 (the mode pins select it)
CH347F_PID = 0x55DE
CH347 = UsbChip("CH347", CH347_VID, {CH347T_PID: 2, CH347F_PID: 4}, 0x06, 0x86)
PACKET = 510  # the longest USB write (and answer) the vendor driver and flashrom use
HEADER = 3
MAX_PAYLOAD = PACKET - HEADER
#: the CH347F's function switch: its pins carry I2C only after it (WCH's driver)
FUNCTION_SWITCH = 0xE2


def pyusb_backend() -> WchBackend:
    """pyusb (installed with pyftdi); imported only when a ch347:// URL is opened."""
    return wch_usb.pyusb_backend(CH347)


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
