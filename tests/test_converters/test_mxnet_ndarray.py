# Copyright (c) OpenMMLab. All rights reserved.
"""MXNet NDArray-list reader and writer against bytes built by hand from
the format description (apache/mxnet src/ndarray/ndarray.cc (NDArray::Load))
and MXNet's own legacy file."""
import hashlib
import struct

import numpy as np
import pytest

from mnc_mm.converters import (WeightFileError, decode_ndarray_list,
                               encode_ndarray_dict, encode_ndarray_list,
                               load_ndarray_list, ndarray_list_nbytes)
from mnc_mm.converters.mxnet_ndarray import VARIANTS

# MXNet's tests/python/unittest/legacy_ndarray.v0: six float32 arange(128)
# arrays as an unnamed legacy list, written by MXNet itself.
LEGACY_FIXTURE_SHA256 = ('91934457a3a74d219b6164e60330e6dd'
                         '8682dc2b802bb1887a7c3ea5c4ffc4c9')
V1, V2, V3 = 0xF993FAC8, 0xF993FAC9, 0xF993FACA


def _list_bytes(records, names=()):
    """List header + records + names, packed with struct by hand."""
    out = struct.pack('<QQQ', 0x112, 0, len(records)) + b''.join(records)
    out += struct.pack('<Q', len(names))
    for name in names:
        out += struct.pack('<Q', len(name)) + name
    return out


def _legacy_fixture():
    record = (struct.pack('<II', 1, 128) + struct.pack('<ii', 1, 0) +
              struct.pack('<i', 0) +
              struct.pack('<128f', *range(128)))
    return _list_bytes([record] * 6)


def test_mxnet_legacy_fixture_byte_for_byte():
    fixture = _legacy_fixture()
    assert len(fixture) == 3224
    assert hashlib.sha256(fixture).hexdigest() == LEGACY_FIXTURE_SHA256
    arange = np.arange(128, dtype=np.float32)
    assert encode_ndarray_list([arange] * 6) == fixture
    loaded = decode_ndarray_list(fixture)
    assert loaded.names == [] and loaded.variant == 'legacy'
    assert len(loaded.arrays) == 6
    for array in loaded.arrays:
        assert array.dtype == np.float32 and array.shape == (128, )
        np.testing.assert_array_equal(array, arange)


def _record_v1(dims, flag, payload):
    return (struct.pack('<II', V1, len(dims)) +
            struct.pack(f'<{len(dims)}q', *dims) +
            struct.pack('<iii', 1, 0, flag) + payload)


def _record_v23(magic, stype, ndim, dims, flag=None, payload=b''):
    out = struct.pack('<Iii', magic, stype, ndim)
    out += struct.pack(f'<{len(dims)}q', *dims)
    if flag is not None:
        out += struct.pack('<iii', 1, 0, flag) + payload
    return out


def test_v1_v2_v3_records_match_hand_built_bytes():
    values = np.arange(6, dtype=np.float64).reshape(2, 3) - 2.5
    payload = struct.pack('<6d', *values.ravel())
    cases = {
        'v1': [_record_v1([2, 3], 1, payload)],
        'v2': [_record_v23(V2, 0, 2, [2, 3], 1, payload)],
        'v3': [_record_v23(V3, 0, 2, [2, 3], 1, payload),
               _record_v23(V3, 0, 0, [], 4, struct.pack('<i', -7)),
               _record_v23(V3, 0, -1, [])],
    }
    for variant, records in cases.items():
        arrays = [values, np.array(-7, np.int32), None][:len(records)]
        names = [f'arg:w{i}' for i in range(len(records))]
        data = _list_bytes(records, [n.encode() for n in names])
        assert encode_ndarray_list(arrays, names, variant) == data
        loaded = decode_ndarray_list(data)
        assert loaded.variant == variant and loaded.names == names
        np.testing.assert_array_equal(loaded.arrays[0], values)
        assert loaded.arrays[0].dtype == np.float64
        if variant == 'v3':
            assert loaded.arrays[1].shape == () and loaded.arrays[1] == -7
            assert loaded.arrays[2] is None


def _mixed_dict():
    rng = np.random.default_rng(0)
    return {
        'arg:conv1_weight': rng.standard_normal((4, 3, 2, 2)).astype('f4'),
        'arg:bn_conv1_gamma': np.linspace(0, 1, 4, dtype=np.float16),
        'aux:bn_conv1_moving_var': rng.random(4),
        'aux:counts': np.array([[1, -2], [3, 2**31 - 1]], np.int32),
        'arg:mask': np.array([True, False]),
        'arg:ids': np.arange(3, dtype=np.int64) - 1,
        'arg:pixels': np.arange(5, dtype=np.uint8),
        'arg:empty': np.zeros((0, 3), np.float32),
        'arg:poids_größe_重み': np.ones(1, np.float32),
    }


@pytest.mark.parametrize('variant', VARIANTS)
def test_round_trip_is_byte_exact(variant):
    arrays = _mixed_dict()
    if variant == 'v3':
        arrays['arg:scalar'] = np.array(2.5, np.float32)
    data = encode_ndarray_dict(arrays, variant)
    loaded = decode_ndarray_list(data)
    assert loaded.variant == variant
    assert list(loaded.as_dict()) == list(arrays)
    for name, array in loaded.as_dict().items():
        assert array.dtype == arrays[name].dtype
        assert array.shape == arrays[name].shape
        np.testing.assert_array_equal(array, arrays[name])
        assert array.flags.writeable and array.flags.c_contiguous
    assert encode_ndarray_list(loaded.arrays, loaded.names, variant) == data
    assert len(data) - ndarray_list_nbytes(
        {k: v.shape for k, v in arrays.items()}, variant) == sum(
            v.nbytes - 4 * v.size for v in arrays.values())


@pytest.mark.parametrize('variant', VARIANTS)
def test_none_arrays_and_empty_lists(variant):
    data = encode_ndarray_list([None, np.ones(2, np.float32)], ['a', 'b'],
                               variant)
    loaded = decode_ndarray_list(data)
    assert loaded.arrays[0] is None
    np.testing.assert_array_equal(loaded.arrays[1], np.ones(2))
    none_record = {'legacy': struct.pack('<I', 0),
                   'v1': struct.pack('<Ii', V1, 0),
                   'v2': struct.pack('<Iii', V2, -1, 0),
                   'v3': struct.pack('<Iii', V3, 0, -1)}[variant]
    assert data[24:24 + len(none_record)] == none_record
    empty = encode_ndarray_list([], variant=variant)
    assert empty == struct.pack('<QQQQ', 0x112, 0, 0, 0)
    loaded = decode_ndarray_list(empty)
    assert loaded.arrays == [] and loaded.variant is None


def test_v3_unknown_dim_is_none():
    data = _list_bytes([_record_v23(V3, 0, 2, [-1, 3])])
    assert decode_ndarray_list(data).arrays == [None]


def _error(data, source='w.params'):
    with pytest.raises(WeightFileError) as info:
        decode_ndarray_list(data, source)
    assert str(info.value).startswith(f'{source}: at byte offset '
                                      f'{info.value.offset}: expected ')
    return info.value


def test_wrong_magic_names_what_was_found():
    err = _error(b'PK\x03\x04' + bytes(60))
    assert err.offset == 0
    assert '0x112' in err.expected and '0x4034b50' in err.found


def test_every_truncation_is_reported_at_its_offset():
    data = encode_ndarray_dict(
        {'arg:w': np.ones((2, 2), np.float32), 'aux:m': None}, 'v2')
    for cut in range(len(data)):
        err = _error(data[:cut])
        assert 'truncated' in err.found
        assert err.offset <= cut


def test_name_count_and_trailing_bytes():
    arrays = [np.zeros(1, np.float32)] * 2
    data = encode_ndarray_list(arrays, ['a', 'b'])
    names_at = len(encode_ndarray_list(arrays)) - 8
    bad_count = data[:names_at] + struct.pack('<Q', 1) + data[names_at + 8:]
    err = _error(bad_count)
    assert err.offset == names_at
    assert err.expected.startswith('0 or 2 names') and err.found == '1 names'
    err = _error(data + b'\x00')
    assert err.offset == len(data) and err.found == '1 trailing bytes'


def test_sparse_and_undefined_storage_are_refused():
    err = _error(_list_bytes([_record_v23(V2, 1, 1, [4])]))
    assert err.offset == 28 and 'row_sparse' in err.found
    err = _error(_list_bytes([_record_v23(V3, 2, 1, [4])]))
    assert 'csr' in err.found
    err = _error(_list_bytes([_record_v23(V2, -1, 1, [4], 0, bytes(16))]))
    assert 'undefined' in err.found


def test_corrupt_sizes_fail_before_allocating():
    # 2**40 float64 values would be 8 TiB.
    record = (struct.pack('<II', 2, 2**20) + struct.pack('<I', 2**20) +
              struct.pack('<iii', 1, 0, 1))
    err = _error(_list_bytes([record]))
    assert err.offset == 24 + 24 and 'truncated' in err.found
    assert str(2**40) in err.expected
    err = _error(struct.pack('<QQQ', 0x112, 0, 2**60) + bytes(8))
    assert err.offset == 16 and str(2**60) in err.found


def test_bad_type_flag_dims_and_names():
    err = _error(_list_bytes([_record_v1([1], 12, b'\x00\x00')]))
    assert 'bfloat16' in err.found and err.offset == 24 + 24
    err = _error(_list_bytes([_record_v1([-3], 0, b'')]))
    assert err.expected.endswith('non-negative dims')
    err = _error(_list_bytes([_record_v23(V2, 0, -1, [])]))
    assert err.found == '-1'
    data = _list_bytes([struct.pack('<I', 0)], [b'\xff\xfe'])
    err = _error(data)
    assert 'UTF-8' in err.expected and err.offset == len(data) - 2


def test_writer_refuses_what_mxnet_cannot_hold():
    with pytest.raises(ValueError, match='0-d array'):
        encode_ndarray_list([np.array(1.0)], variant='v1')
    with pytest.raises(TypeError, match='complex128'):
        encode_ndarray_list([np.zeros(2, np.complex128)])
    with pytest.raises(ValueError, match='variant'):
        encode_ndarray_list([], variant='v4')
    with pytest.raises(ValueError, match='0 or 1 names'):
        encode_ndarray_list([np.zeros(1)], ['a', 'b'])


def test_as_dict_needs_unique_names():
    unnamed = decode_ndarray_list(encode_ndarray_list([np.zeros(1)]))
    with pytest.raises(ValueError, match='unnamed list of 1 arrays'):
        unnamed.as_dict()
    twice = decode_ndarray_list(
        encode_ndarray_list([np.zeros(1)] * 2, ['arg:a', 'arg:a']))
    with pytest.raises(ValueError, match=r"duplicates \['arg:a'\]"):
        twice.as_dict()


def test_load_names_the_file(tmp_path):
    path = tmp_path / 'fcis_coco-0000.params'
    path.write_bytes(_legacy_fixture()[:100])
    with pytest.raises(WeightFileError, match=str(path)):
        load_ndarray_list(str(path))
    path.write_bytes(_legacy_fixture())
    assert len(load_ndarray_list(str(path)).arrays) == 6
