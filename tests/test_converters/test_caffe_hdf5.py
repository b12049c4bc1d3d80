# Copyright (c) OpenMMLab. All rights reserved.
"""Caffe HDF5 weights: the signature check runs everywhere, the layout
round trip only where the optional h5py is installed."""
import sys

import numpy as np
import pytest

from mnc_mm.converters import WeightFileError, load_caffe_hdf5
from mnc_mm.converters.mxnet_ndarray import encode_ndarray_list


def test_non_hdf5_files_are_named(tmp_path):
    path = tmp_path / 'mnc_model.caffemodel.h5'
    path.write_bytes(encode_ndarray_list([np.zeros(1, np.float32)]))
    with pytest.raises(WeightFileError) as info:
        load_caffe_hdf5(str(path))
    assert str(info.value) == (
        f'{path}: at byte offset 0: expected the HDF5 signature 89 48 44 46 '
        f'0d 0a 1a 0a, found 12 01 00 00 00 00 00 00 (not an HDF5 file)')
    path.write_bytes(b'')
    with pytest.raises(WeightFileError, match='found an empty file'):
        load_caffe_hdf5(str(path))


def test_missing_h5py_says_how_to_get_it(tmp_path, monkeypatch):
    path = tmp_path / 'mnc_model.caffemodel.h5'
    path.write_bytes(b'\x89HDF\r\n\x1a\n' + bytes(100))
    monkeypatch.setitem(sys.modules, 'h5py', None)
    with pytest.raises(ImportError, match='pip install h5py'):
        load_caffe_hdf5(str(path))


def _h5py():
    return pytest.importorskip(
        'h5py', reason='h5py (optional, for Caffe HDF5 weights) is not '
        'installed')


def _write_caffe_h5(path, groups):
    """``/data/<layer>/<blob index>`` as Caffe's Net::ToHDF5 writes it."""
    with _h5py().File(path, 'w') as f:
        data = f.create_group('data')
        for name, blobs in groups.items():
            group = data.create_group(name)
            for key, blob in blobs.items():
                group.create_dataset(key, data=blob)


def test_caffe_layout_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    bias = rng.standard_normal(4).astype(np.float32)
    fc = rng.standard_normal((5, 36)).astype(np.float32)
    path = str(tmp_path / 'toy.caffemodel.h5')
    _write_caffe_h5(path, {
        'conv1_1': {'0': weight, '1': bias},
        'relu1_1': {},
        'fc6': {'1': fc[:, 0], '0': fc},
        'fc6_ext': {},
    })
    caffe_net = load_caffe_hdf5(path)
    assert caffe_net.format == 'hdf5' and caffe_net.source == path
    assert sorted(x.name for x in caffe_net.layers) == [
        'conv1_1', 'fc6', 'fc6_ext', 'relu1_1']
    params = caffe_net.params()
    assert sorted(params) == ['conv1_1', 'fc6']
    np.testing.assert_array_equal(params['conv1_1'][0], weight)
    np.testing.assert_array_equal(params['conv1_1'][1], bias)
    np.testing.assert_array_equal(params['fc6'][0], fc)
    np.testing.assert_array_equal(params['fc6'][1], fc[:, 0])
    assert params['fc6'][0].dtype == np.float32


@pytest.mark.parametrize('groups, where, found', [
    ({'fc6': {'0': np.zeros(2), '2': np.zeros(2)}}, 'group /data/fc6',
     "members ['0', '2']"),
    ({'fc6': {'0': np.zeros(2, np.int32)}}, 'group /data/fc6/0', 'int32'),
])
def test_corrupt_layouts(tmp_path, groups, where, found):
    path = str(tmp_path / 'bad.caffemodel.h5')
    _write_caffe_h5(path, groups)
    with pytest.raises(WeightFileError) as info:
        load_caffe_hdf5(path)
    assert info.value.offset == where and found in info.value.found


def test_file_without_data_group(tmp_path):
    path = str(tmp_path / 'other.h5')
    with _h5py().File(path, 'w') as f:
        f.create_dataset('weights', data=np.zeros(3))
    with pytest.raises(WeightFileError, match=r"'data'.*\['weights'\]"):
        load_caffe_hdf5(path)
