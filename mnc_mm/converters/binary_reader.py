# Copyright (c) OpenMMLab. All rights reserved.
"""Bounds-checked reading of little-endian binary weight files.

Every read says what it expects, so a truncated or corrupt file fails with
a :class:`WeightFileError` that names the file, the byte offset, what was
expected there and what was found. Sizes are checked against the bytes that
remain *before* anything is allocated, so a corrupt header cannot ask for
gigabytes.
"""
import struct
from typing import Sequence, Tuple, Union

import numpy as np


class WeightFileError(ValueError):
    """A weight file is truncated, corrupt or not in the expected format.

    ``offset`` is a byte offset, or a place inside a structured file (e.g.
    an HDF5 group) where byte offsets mean nothing.
    """

    def __init__(self, source: str, offset: Union[int, str], expected: str,
                 found: str):
        self.source = source
        self.offset = offset
        self.expected = expected
        self.found = found
        where = (f'at byte offset {offset}' if isinstance(offset, int) else
                 f'in {offset}')
        super().__init__(f'{source}: {where}: expected {expected}, found '
                         f'{found}')


class ByteReader:
    """A cursor over an in-memory file.

    Args:
        data (bytes-like): the whole file.
        source (str): the file name used in error messages.
    """

    def __init__(self, data, source: str):
        self.view = memoryview(data).cast('B')
        self.source = source
        self.offset = 0

    @property
    def remaining(self) -> int:
        """Bytes left after the cursor."""
        return len(self.view) - self.offset

    def error(self, expected: str, found: str, offset=None) -> WeightFileError:
        """A :class:`WeightFileError` at ``offset`` (default: the cursor)."""
        return WeightFileError(self.source,
                               self.offset if offset is None else offset,
                               expected, found)

    def take(self, nbytes: int, what: str) -> memoryview:
        """The next ``nbytes`` bytes, as a view; the cursor moves past them."""
        if nbytes > self.remaining:
            raise self.error(f'{what} ({nbytes} bytes)',
                             f'only {self.remaining} bytes before the end '
                             f'of the file (truncated file)')
        start = self.offset
        self.offset += nbytes
        return self.view[start:self.offset]

    def unpack(self, fmt: str, what: str) -> Tuple:
        """``struct.unpack`` of the next bytes, little-endian (``fmt`` has
        no byte-order prefix)."""
        fmt = '<' + fmt
        return struct.unpack(fmt, self.take(struct.calcsize(fmt), what))

    def scalar(self, fmt: str, what: str):
        """One value of struct format ``fmt`` (e.g. ``'Q'``, ``'i'``)."""
        return self.unpack(fmt, what)[0]

    def array(self, dtype: np.dtype, shape: Sequence[int],
              what: str) -> np.ndarray:
        """A C-order array of ``shape`` read from the next bytes (a copy).

        ``dtype`` must be little-endian or byte-order free.
        """
        count = int(np.prod(shape, dtype=object))
        raw = self.take(count * np.dtype(dtype).itemsize,
                        f'{what}: {count} values of {np.dtype(dtype).name}')
        return np.frombuffer(raw, dtype=dtype, count=count).reshape(
            tuple(shape)).copy()

    def expect_end(self, what: str) -> None:
        """Raise unless the cursor is at the end of the file."""
        if self.remaining:
            raise self.error(f'the end of the file after {what}',
                             f'{self.remaining} trailing bytes')
