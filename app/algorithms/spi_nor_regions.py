"""Erase regions of SPI NOR parts with boot or parameter sectors.

On such a part one erase command erases blocks of different sizes in different places
(EN25B: D8h erases 4, 4, 8, 16 and 32 KiB boot sectors at the bottom and 64 KiB blocks
above). The planner wants regions in which every command has one block size, so the
part is cut wherever any command's block size changes, and neighbouring stretches with
the same commands and sizes are joined again.
"""

from __future__ import annotations

import itertools

from app.algorithms.base import EraseBlock, EraseRegion
from app.devicedb.facts import SpiNorFacts


def layout_regions(size: int, facts: SpiNorFacts) -> tuple[EraseRegion, ...]:
    timings = {op.opcode: op.timing for op in facts.erase_ops}
    layouts = {layout.opcode: layout.blocks() for layout in facts.erase_layout}
    uniform = [op for op in facts.block_erases if op.size and op.opcode not in layouts]
    cuts = sorted({0, size, *(start for blocks in layouts.values() for start, _ in blocks)})
    stretches: list[tuple[int, int, tuple[EraseBlock, ...]]] = []
    for start, end in itertools.pairwise(cuts):
        found = [
            EraseBlock(opcode, block, timings[opcode])
            for opcode, blocks in layouts.items()
            for at, block in blocks
            if at <= start < at + block and at + block >= end and (end - start) % block == 0
        ]
        found += [
            EraseBlock(op.opcode, op.size, op.timing)
            for op in uniform
            if op.size and start % op.size == 0 and (end - start) % op.size == 0
        ]
        ordered = tuple(sorted(found, key=lambda b: b.size))
        if (
            stretches
            and stretches[-1][2] == ordered
            and all((start - stretches[-1][0]) % b.size == 0 for b in ordered)
        ):
            first, _, same = stretches[-1]
            stretches[-1] = (first, end, same)
        else:
            stretches.append((start, end, ordered))
    return tuple(EraseRegion(s, e - s, blocks) for s, e, blocks in stretches if blocks)
