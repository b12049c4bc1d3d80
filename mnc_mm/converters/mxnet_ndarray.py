# Copyright (c) OpenMMLab. All rights reserved.
"""MXNet NDArray-list files (``mx.nd.save``, ``*.params``) without MXNet.

Layout (apache/mxnet ``src/ndarray/ndarray.cc``), little-endian::

    uint64 0x112 (list magic) | uint64 0 (reserved) | uint64 N | N records
    | uint64 K (0 or N) | K x (uint64 length, UTF-8 name bytes) | EOF

Four record variants exist, told apart by the record's first uint32:

* ``legacy`` (MXNet before 2017-05-29, e.g. FCIS's ``62ecb60``): no magic;
  the uint32 is ``ndim``, then ``ndim`` uint32 dims. ``ndim == 0``: none.
* ``v1`` (magic ``0xF993FAC8``): int32 ``ndim``, int64 dims.
* ``v2`` (``0xF993FAC9``): int32 storage type, then the shape as in v1.
* ``v3`` (``0xF993FACA``, NumPy shape semantics): as v2, but ``ndim == -1``
  (or a dim of -1) is none and ``ndim == 0`` is a 0-d scalar.

A non-none record goes on with the context (int32 device type, int32 device
id; ignored), an int32 type flag and the raw C-order data. Only dense arrays
are read; sparse storage is refused.
"""
import struct
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from .binary_reader import ByteReader

LIST_MAGIC = 0x112
RECORD_MAGICS = {'v1': 0xF993FAC8, 'v2': 0xF993FAC9, 'v3': 0xF993FACA}
VARIANTS = ('legacy', 'v1', 'v2', 'v3')
# mshadow type flags (mshadow/base.h); 12 (bfloat16) has no numpy dtype.
TYPE_FLAGS = {
    0: np.dtype('<f4'), 1: np.dtype('<f8'), 2: np.dtype('<f2'),
    3: np.dtype('u1'), 4: np.dtype('<i4'), 5: np.dtype('i1'),
    6: np.dtype('<i8'), 7: np.dtype('?'), 8: np.dtype('<i2'),
    9: np.dtype('<u2'), 10: np.dtype('<u4'), 11: np.dtype('<u8')
}
STORAGE_TYPES = {-1: 'undefined', 0: 'default (dense)', 1: 'row_sparse',
                 2: 'csr'}
# The context written by ``mx.model.save_checkpoint``: (cpu = 1, id 0).
CPU_CONTEXT = (1, 0)


@dataclass
class NDArrayList:
    """The content of an NDArray-list file.

    Attributes:
        arrays: one numpy array per record, ``None`` for a "none" record.
        names: one name per array, or ``[]`` for an unnamed list.
        variants: the record variant of each array (see :data:`VARIANTS`).
    """
    arrays: List[Optional[np.ndarray]]
    names: List[str] = field(default_factory=list)
    variants: List[str] = field(default_factory=list)

    @property
    def variant(self) -> Optional[str]:
        """The records' variant; ``'mixed'`` if they differ, ``None`` for an
        empty list."""
        found = set(self.variants)
        if len(found) > 1:
            return 'mixed'
        return found.pop() if found else None

    def as_dict(self, source: str = '<ndarray list>'
                ) -> Dict[str, Optional[np.ndarray]]:
        """``{name: array}`` in file order; the list must be named."""
        if self.arrays and not self.names:
            raise ValueError(f'{source}: expected named arrays, found an '
                             f'unnamed list of {len(self.arrays)} arrays')
        result = dict(zip(self.names, self.arrays))
        if len(result) != len(self.names):
            duplicates = sorted({n for n in self.names
                                 if self.names.count(n) > 1})
            raise ValueError(f'{source}: expected unique array names, found '
                             f'duplicates {duplicates}')
        return result


def _read_dims(reader: ByteReader, variant: str) -> Tuple[int, List[int]]:
    """(ndim, dims) of a v1/v2/v3 shape: int32 ndim, int64 dims."""
    offset = reader.offset
    ndim = reader.scalar('i', 'the int32 number of dimensions')
    if ndim < -1 or (ndim == -1 and variant != 'v3'):
        raise reader.error(
            'a number of dimensions >= 0' if variant != 'v3' else
            'a number of dimensions >= -1', str(ndim), offset)
    dims = list(reader.unpack(f'{max(ndim, 0)}q', f'{ndim} int64 dims'))
    return ndim, dims


def _read_record(reader: ByteReader, index: int
                 ) -> Tuple[Optional[np.ndarray], str]:
    """One array record; returns (array or None, variant)."""
    what = f'array {index}'
    start = reader.offset
    first = reader.scalar('I', f'{what}: a record magic or ndim')
    variant = {v: k for k, v in RECORD_MAGICS.items()}.get(first, 'legacy')
    if variant == 'legacy':
        dims = list(reader.unpack(f'{first}I', f'{what}: {first} uint32 dims'))
        if first == 0:
            return None, variant
    else:
        if variant in ('v2', 'v3'):
            stype_at = reader.offset
            stype = reader.scalar('i', f'{what}: the int32 storage type')
            allowed = (0,) if variant == 'v3' else (-1, 0)
            if stype not in allowed:
                raise reader.error(
                    f'{what}: a dense array (storage type '
                    f'{" or ".join(map(str, allowed))})',
                    f'storage type {stype} '
                    f'({STORAGE_TYPES.get(stype, "unknown")}); sparse arrays '
                    f'are not supported', stype_at)
        ndim, dims = _read_dims(reader, variant)
        if variant == 'v3':
            if ndim == -1 or -1 in dims:
                return None, variant
        elif ndim == 0:
            return None, variant
        if variant == 'v2' and stype == -1:
            raise reader.error(f'{what}: storage type 0 for a non-none array',
                               'storage type -1 (undefined)', stype_at)
        if any(d < 0 for d in dims):
            raise reader.error(f'{what}: non-negative dims', str(dims), start)
    reader.unpack('ii', f'{what}: the context (device type, device id)')
    flag_at = reader.offset
    flag = reader.scalar('i', f'{what}: the int32 type flag')
    if flag not in TYPE_FLAGS:
        raise reader.error(
            f'{what}: a type flag in 0..11', f'{flag}' +
            (' (bfloat16, which numpy cannot hold)' if flag == 12 else ''),
            flag_at)
    return reader.array(TYPE_FLAGS[flag], dims, f'{what}: data'), variant


def decode_ndarray_list(data, source: str = '<bytes>') -> NDArrayList:
    """Parse the bytes of an NDArray-list file.

    Args:
        data (bytes-like): the whole file.
        source (str): the file name used in error messages.

    Raises:
        WeightFileError: wrong magic, truncated or trailing bytes, a name
            count other than 0 or N, sparse storage or an unknown type flag.
    """
    reader = ByteReader(data, source)
    magic = reader.scalar('Q', 'the uint64 list magic 0x112')
    if magic != LIST_MAGIC:
        raise reader.error(
            'the MXNet NDArray-list magic 0x112 (bytes 12 01 00 00 00 00 00 '
            '00)', f'0x{magic:x} (not an MXNet .params file)', 0)
    reader.scalar('Q', 'the uint64 reserved field')
    count_at = reader.offset
    count = reader.scalar('Q', 'the uint64 number of arrays')
    if count * 4 > reader.remaining:
        raise reader.error(
            'a number of arrays that fits the file (each record takes at '
            'least 4 bytes)', f'{count} arrays but only {reader.remaining} '
            f'bytes left (truncated or corrupt file)', count_at)
    arrays, variants = [], []
    for index in range(count):
        array, variant = _read_record(reader, index)
        arrays.append(array)
        variants.append(variant)
    names_at = reader.offset
    num_names = reader.scalar('Q', 'the uint64 number of names')
    if num_names not in (0, count):
        raise reader.error(f'0 or {count} names (one per array)',
                           f'{num_names} names', names_at)
    names = []
    for index in range(num_names):
        length = reader.scalar('Q', f'the length of name {index}')
        name_at = reader.offset
        raw = reader.take(length, f'name {index}')
        try:
            names.append(bytes(raw).decode('utf-8'))
        except UnicodeDecodeError as err:
            raise reader.error(f'name {index} in UTF-8',
                               f'undecodable bytes ({err.reason})',
                               name_at) from None
    reader.expect_end(f'{num_names} names')
    return NDArrayList(arrays, names, variants)


def load_ndarray_list(path: str) -> NDArrayList:
    """Read an NDArray-list file (e.g. ``fcis_coco-0000.params``)."""
    with open(path, 'rb') as f:
        return decode_ndarray_list(f.read(), source=path)


def _encode_record(array: Optional[np.ndarray], variant: str) -> bytes:
    if variant == 'legacy':
        head = b''
        dim_format = 'I'
    else:
        head = struct.pack('<I', RECORD_MAGICS[variant])
        dim_format = 'q'
    if array is None:
        if variant == 'v2':
            head += struct.pack('<i', -1)
        elif variant == 'v3':
            return head + struct.pack('<ii', 0, -1)
        return head + struct.pack('<i', 0)
    array = np.asarray(array)
    if array.ndim == 0 and variant != 'v3':
        raise ValueError(f'array: a 0-d array has no {variant} record (ndim '
                         f'0 means "none" there); use variant v3')
    flags = {dtype: flag for flag, dtype in TYPE_FLAGS.items()}
    dtype = array.dtype.newbyteorder('<')
    if dtype not in flags:
        raise TypeError(f'array: dtype {array.dtype} has no MXNet type flag; '
                        f'expected one of {sorted(d.name for d in flags)}')
    if variant in ('v2', 'v3'):
        head += struct.pack('<i', 0)
    shape = struct.pack(f'<i{array.ndim}{dim_format}', array.ndim,
                        *array.shape)
    return (head + shape + struct.pack('<ii', *CPU_CONTEXT) +
            struct.pack('<i', flags[dtype]) +
            np.ascontiguousarray(array, dtype=dtype).tobytes())


def encode_ndarray_list(arrays: Sequence[Optional[np.ndarray]],
                        names: Sequence[str] = (),
                        variant: str = 'legacy') -> bytes:
    """The bytes MXNet's ``mx.nd.save`` writes for ``arrays``.

    Args:
        arrays: numpy arrays, or ``None`` for a "none" array.
        names: one name per array, or empty for an unnamed list.
        variant: the record variant, one of :data:`VARIANTS`.
    """
    if variant not in VARIANTS:
        raise ValueError(f'variant must be one of {VARIANTS}, '
                         f'found {variant!r}')
    if names and len(names) != len(arrays):
        raise ValueError(f'names: expected 0 or {len(arrays)} names, found '
                         f'{len(names)}')
    parts = [struct.pack('<QQQ', LIST_MAGIC, 0, len(arrays))]
    parts += [_encode_record(array, variant) for array in arrays]
    parts.append(struct.pack('<Q', len(names)))
    for name in names:
        raw = name.encode('utf-8')
        parts.append(struct.pack('<Q', len(raw)) + raw)
    return b''.join(parts)


def encode_ndarray_dict(arrays: Mapping[str, np.ndarray],
                        variant: str = 'legacy') -> bytes:
    """:func:`encode_ndarray_list` of a ``{name: array}`` mapping."""
    return encode_ndarray_list(list(arrays.values()), list(arrays), variant)


def ndarray_list_nbytes(shapes: Mapping[str, Sequence[int]],
                        variant: str = 'legacy', itemsize: int = 4) -> int:
    """The size of a named NDArray-list file of dense ``shapes``, in bytes
    (apache/mxnet tests/python/unittest/legacy_ndarray.v0); checks a download
    before parsing it."""
    if variant not in VARIANTS:
        raise ValueError(f'variant must be one of {VARIANTS}, '
                         f'found {variant!r}')
    dim_size = 4 if variant == 'legacy' else 8
    head = {'legacy': 0, 'v1': 4, 'v2': 8, 'v3': 8}[variant]
    total = 24 + 8
    for name, shape in shapes.items():
        total += (head + 4 + dim_size * len(shape) + 12 +
                  itemsize * int(np.prod(shape, dtype=object)))
        total += 8 + len(name.encode('utf-8'))
    return total


__all__ = [
    'NDArrayList', 'VARIANTS', 'decode_ndarray_list', 'encode_ndarray_dict',
    'encode_ndarray_list', 'load_ndarray_list', 'ndarray_list_nbytes'
]
