"""A simulated chip's memory array, allocated only where it was written.

Sixty-four simulated sites of a 128 MiB part would otherwise take 8 GiB before a single
byte was programmed. Blocks of BLOCK bytes come into being on their first write; reads of
untouched blocks return the erased value. Indexing and slicing work like a bytearray's
(step-less slices; a slice assignment must keep the length).
"""

from __future__ import annotations

from typing import overload

BLOCK = 1 << 16


class SparseMemory:
    def __init__(self, size: int, erased: int) -> None:
        self.size = size
        self.erased = erased
        self._blocks: dict[int, bytearray] = {}
        self._blank = bytes([erased]) * BLOCK

    def __len__(self) -> int:
        return self.size

    @property
    def allocated(self) -> int:
        """Bytes really held (for tests and memory figures)."""
        return len(self._blocks) * BLOCK

    def _range(self, key: slice) -> tuple[int, int]:
        if key.step not in (None, 1):
            raise ValueError("SparseMemory slices take no step")
        start, stop, _ = key.indices(self.size)
        return start, max(start, stop)

    @overload
    def __getitem__(self, key: int) -> int: ...

    @overload
    def __getitem__(self, key: slice) -> bytes: ...

    def __getitem__(self, key: int | slice) -> int | bytes:
        if isinstance(key, int):
            index = key + self.size if key < 0 else key
            if not 0 <= index < self.size:
                raise IndexError("memory index out of range")
            block = self._blocks.get(index // BLOCK)
            return self.erased if block is None else block[index % BLOCK]
        start, stop = self._range(key)
        number, offset = divmod(start, BLOCK)
        if offset + stop - start <= BLOCK:  # within one block: most reads
            block = self._blocks.get(number)
            return bytes((self._blank if block is None else block)[offset : offset + stop - start])
        parts = []
        pos = start
        while pos < stop:
            number, offset = divmod(pos, BLOCK)
            take = min(stop - pos, BLOCK - offset)
            block = self._blocks.get(number)
            parts.append((self._blank if block is None else block)[offset : offset + take])
            pos += take
        return b"".join(parts)

    def __setitem__(self, key: int | slice, value: int | bytes | bytearray | memoryview) -> None:
        if isinstance(key, int):
            assert isinstance(value, int)
            index = key + self.size if key < 0 else key
            if not 0 <= index < self.size:
                raise IndexError("memory index out of range")
            self._block(index // BLOCK)[index % BLOCK] = value
            return
        assert not isinstance(value, int)
        start, stop = self._range(key)
        if len(value) != stop - start:
            raise ValueError("SparseMemory slice assignment must keep the length")
        number, offset = divmod(start, BLOCK)
        if offset + stop - start < BLOCK and number in self._blocks:  # a page: most writes
            self._blocks[number][offset : offset + stop - start] = value
            return
        data = memoryview(bytes(value))
        pos = start
        while pos < stop:
            number, offset = divmod(pos, BLOCK)
            take = min(stop - pos, BLOCK - offset)
            chunk = data[pos - start : pos - start + take]
            blank = chunk == self._blank[:take]
            if take == BLOCK and blank:
                self._blocks.pop(number, None)  # a whole block erased: nothing to hold
            elif number in self._blocks or not blank:
                self._block(number)[offset : offset + take] = chunk
            pos += take

    def erase(self, start: int, stop: int) -> None:
        """Set [start, stop) to the erased value without building the data (a chip
        erase of a 128 MiB part frees its blocks instead of writing 128 MiB)."""
        pos = start
        while pos < stop:
            number, offset = divmod(pos, BLOCK)
            take = min(stop - pos, BLOCK - offset)
            if take == BLOCK:
                self._blocks.pop(number, None)
            elif number in self._blocks:
                self._blocks[number][offset : offset + take] = self._blank[:take]
            pos += take

    def _block(self, number: int) -> bytearray:
        block = self._blocks.get(number)
        if block is None:
            block = self._blocks[number] = bytearray(self._blank)
        return block
