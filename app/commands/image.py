"""`socketeer image info|convert|checksum`: inspect, convert and checksum image files."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from app.commands import help_for
from app.core.checksums import ALGORITHMS, ChecksumSpec, checksum
from app.core.errors import ImageRangeError, UsageError
from app.core.formats import FORMATS, LoadedImage, format_from_extension, load_image, save_image
from app.core.image import MemoryImage, format_range
from app.core.numbers import parse_byte, parse_number, parse_range


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("image", help=help_for("image"))
    image_sub = parser.add_subparsers(dest="image_command", metavar="ACTION")

    def add_input(p: argparse.ArgumentParser) -> None:
        p.add_argument("file", type=Path, help="image file (Intel HEX, S-record, TI-TXT, binary)")
        p.add_argument(
            "--format",
            dest="in_format",
            choices=FORMATS,
            help="input format (default: detected from content)",
        )
        p.add_argument("--base", default="0", help="load address of a raw binary input (default 0)")

    info = image_sub.add_parser("info", help="format, segments, start address, CRC-32, SHA-256")
    add_input(info)
    info.add_argument("--json", action="store_true", help="print one JSON document")
    info.set_defaults(func=cmd_info)

    conv = image_sub.add_parser("convert", help="convert between image formats")
    add_input(conv)
    conv.add_argument("output", type=Path)
    conv.add_argument("--to", choices=FORMATS, help="output format (default: from OUT's extension)")
    conv.add_argument("--fill", default="0xFF", help="gap fill byte for binary output (0xFF)")
    conv.add_argument("--range", help="keep only START:END (after --offset); bin output covers it")
    conv.add_argument("--offset", default="0", help="move every address by N (may be negative)")
    conv.add_argument("--line-bytes", type=int, help="data bytes per record/line")
    conv.add_argument(
        "--srec-type",
        choices=("s19", "s28", "s37"),
        help="force the S-record address size (default: by highest address)",
    )
    conv.set_defaults(func=cmd_convert)

    chk = image_sub.add_parser("checksum", help="CRC / sum / SHA-256 over data or a filled range")
    add_input(chk)
    chk.add_argument(
        "--algo", action="append", choices=ALGORITHMS, help="algorithm (repeatable; default crc32)"
    )
    chk.add_argument("--range", help="START:END to cover, gaps filled (implies a filled range)")
    chk.add_argument("--fill", help="gap fill byte; implies a filled range (default 0xFF then)")
    chk.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="START:END",
        help="leave this range out of the calculation (repeatable)",
    )
    chk.add_argument("--json", action="store_true", help="print one JSON document")
    chk.set_defaults(func=cmd_checksum)

    parser.set_defaults(func=None, _help=parser)


def _load(args: argparse.Namespace) -> LoadedImage:
    base = parse_number(args.base, "--base")
    return load_image(args.file, args.in_format, base)


def _hex(value: int | None) -> str | None:
    return None if value is None else f"0x{value:X}"


def image_summary(loaded: LoadedImage) -> dict:
    """The facts `image info` prints, as a JSON-ready dict."""
    image = loaded.image
    summary: dict = {
        "file": str(loaded.path),
        "format": loaded.format,
        "segments": [[_hex(s.start), _hex(s.end)] for s in image.segments],
        "start_address": _hex(image.start_address),
        "data_bytes": image.data_bytes,
        "crc32_data": checksum(image, ChecksumSpec("crc32")),
        "sha256_data": checksum(image, ChecksumSpec("sha256")),
        "warnings": list(image.warnings),
    }
    if image.header is not None:
        summary["header"] = image.header.decode("latin-1")
    if not image.is_empty:
        summary["fill_range"] = [_hex(image.min_address), _hex(image.max_address)]
        summary["filled_bytes"] = image.max_address - image.min_address
        summary["crc32_filled_0xFF"] = checksum(image, ChecksumSpec("crc32", fill=0xFF))
        summary["sha256_filled_0xFF"] = checksum(image, ChecksumSpec("sha256", fill=0xFF))
    return summary


def cmd_info(args: argparse.Namespace) -> int:
    summary = image_summary(_load(args))
    for warning in summary["warnings"]:
        print(f"socketeer: warning: {warning}", file=sys.stderr)
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    image_segments = summary["segments"]
    print(f"file:          {summary['file']}")
    print(f"format:        {summary['format']}")
    if "header" in summary:
        print(f"header:        {summary['header']!r}")
    print(f"segments:      {len(image_segments)}")
    for lo, hi in image_segments:
        size = int(hi, 16) - int(lo, 16)
        print(f"  {format_range(int(lo, 16), int(hi, 16)):<28} {size:>10} bytes")
    print(f"start address: {summary['start_address'] or 'none'}")
    print(f"data bytes:    {summary['data_bytes']}")
    print(f"crc32 (data):  {summary['crc32_data']}")
    print(f"sha256 (data): {summary['sha256_data']}")
    if "fill_range" in summary:
        lo, hi = summary["fill_range"]
        print(f"filled range:  [{lo}, {hi}) {summary['filled_bytes']} bytes, gaps 0xFF")
        print(f"crc32 (filled):  {summary['crc32_filled_0xFF']}")
        print(f"sha256 (filled): {summary['sha256_filled_0xFF']}")
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    fmt = args.to or format_from_extension(args.output)
    if fmt is None:
        raise UsageError(f"{args.output}: cannot tell the output format from its name; use --to")
    fill = parse_byte(args.fill, "--fill")
    loaded = _load(args)
    image: MemoryImage = loaded.image
    offset = parse_number(args.offset, "--offset", signed=True)
    if offset:
        image = image.relocated(offset)
    options: dict[str, int | None] = {"record_bytes": args.line_bytes}
    if args.line_bytes is not None and args.line_bytes < 1:
        raise UsageError("--line-bytes must be at least 1")
    if args.srec_type:
        options["address_bytes"] = {"s19": 2, "s28": 3, "s37": 4}[args.srec_type]
    if args.range:
        lo, hi = parse_range(args.range, "--range")
        image = image.cropped(lo, hi)
        if fmt == "bin":
            image = MemoryImage.from_bytes(bytes(image.read(lo, hi, fill)), lo)
    if fmt == "bin":
        options["fill"] = fill
    try:
        save_image(image, args.output, fmt, **options)
    except ValueError as err:
        raise ImageRangeError(f"{args.output}: {err}") from None
    print(
        f"wrote {args.output} ({fmt}, {image.data_bytes} data bytes"
        f" in {len(image.segments)} segment(s))"
    )
    return 0


def cmd_checksum(args: argparse.Namespace) -> int:
    algos = args.algo or ["crc32"]
    excludes = tuple(parse_range(e, "--exclude") for e in args.exclude)
    fill = parse_byte(args.fill, "--fill") if args.fill is not None else None
    start = end = None
    if args.range:
        start, end = parse_range(args.range, "--range")
        fill = 0xFF if fill is None else fill
    image = _load(args).image
    results = {a: checksum(image, ChecksumSpec(a, fill, start, end, excludes)) for a in algos}
    scope: dict = {"mode": "data" if fill is None else "filled"}
    if fill is not None:
        lo = start if start is not None else (None if image.is_empty else image.min_address)
        hi = end if end is not None else (None if image.is_empty else image.max_address)
        scope.update(fill=_hex(fill), range=[_hex(lo), _hex(hi)])
    if excludes:
        scope["exclude"] = [[_hex(a), _hex(b)] for a, b in excludes]
    if args.json:
        print(json.dumps({"file": str(args.file), **scope, "checksums": results}, indent=2))
        return 0
    where = (
        "data only"
        if fill is None
        else f"range [{scope['range'][0]}, {scope['range'][1]}) filled with {scope['fill']}"
    )
    if excludes:
        where += ", excluding " + ", ".join(format_range(a, b) for a, b in excludes)
    for algo, value in results.items():
        print(f"{algo:<7} {value}  ({where})")
    return 0
