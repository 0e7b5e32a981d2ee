"""The simulator's chip memory is held only where it was written: it behaves like a
bytearray of the whole part (checked against one), and 64 sites of a 128 MiB part cost
next to nothing until they are programmed."""

from __future__ import annotations

import tracemalloc

from hypothesis import given
from hypothesis import strategies as st

from app.hal.programmer import open_programmer
from app.hal.sim.sparse_memory import BLOCK, SparseMemory

SIZE = 4 * BLOCK + 123

DATA = st.binary(min_size=1, max_size=3 * BLOCK)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("write"), st.integers(0, SIZE - 1), DATA),
        st.tuples(st.just("erase"), st.integers(0, SIZE - 1), st.integers(1, 3 * BLOCK)),
        st.tuples(st.just("byte"), st.integers(0, SIZE - 1), st.integers(0, 255)),
    ),
    max_size=12,
)  # fmt: skip


@given(operations, st.integers(0, SIZE), st.integers(0, SIZE))
def test_it_behaves_like_a_bytearray_of_the_part(ops, lo: int, hi: int) -> None:
    model = bytearray([0xFF]) * SIZE
    memory = SparseMemory(SIZE, 0xFF)
    for kind, at, arg in ops:
        if kind == "write":
            data = arg[: SIZE - at]
            model[at : at + len(data)] = data
            memory[at : at + len(data)] = data
        elif kind == "erase":
            end = min(SIZE, at + arg)
            model[at:end] = b"\xff" * (end - at)
            memory.erase(at, end)
        else:
            model[at] = arg
            memory[at] = arg
    assert memory[lo:hi] == bytes(model[lo:hi])
    assert memory[0:SIZE] == bytes(model)
    assert [memory[i] for i in (0, SIZE // 2, SIZE - 1)] == [model[0], model[SIZE // 2], model[-1]]
    assert memory.allocated <= SIZE + BLOCK


def test_sixty_four_sites_of_a_128_mib_part_cost_little(database) -> None:
    tracemalloc.start()
    programmer = open_programmer("sim://?sites=64&chip=winbond.w25q01jv", database=database)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    try:
        assert len(programmer.sites) == 64
        assert peak < 64 << 20, f"{peak >> 20} MiB for 64 blank parts"
    finally:
        programmer.close()
