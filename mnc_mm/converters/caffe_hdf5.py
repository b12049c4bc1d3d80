# Copyright (c) OpenMMLab. All rights reserved.
"""Caffe HDF5 weights (``Net::ToHDF5``; MNC's ``mnc_model.caffemodel.h5``).

Layout (daijifeng001/caffe-mnc ``src/caffe/net.cpp`` ``Net::ToHDF5``)::

    /data/<layer name>/0   weight, float32, the blob's shape
    /data/<layer name>/1   bias
    /data/<layer name>     an empty group for a layer without parameters,
                           or one that shares its owner's blobs (``*_ext``)

Reading needs ``h5py``, an optional dependency (``pip install h5py``); the
HDF5 signature is checked first, so a wrong file fails clearly without it.
"""
import numpy as np

from .binary_reader import WeightFileError
from .caffe_net import CaffeLayer, CaffeNet

HDF5_SIGNATURE = b'\x89HDF\r\n\x1a\n'


def check_hdf5_signature(path: str) -> None:
    """Raise :class:`WeightFileError` unless ``path`` starts like HDF5."""
    with open(path, 'rb') as f:
        head = f.read(len(HDF5_SIGNATURE))
    if head != HDF5_SIGNATURE:
        raise WeightFileError(
            path, 0, f'the HDF5 signature {HDF5_SIGNATURE.hex(" ")}',
            f'{head.hex(" ") or "an empty file"} (not an HDF5 file)')


def _import_h5py():
    try:
        import h5py
    except ImportError:
        raise ImportError('reading Caffe HDF5 weights (*.caffemodel.h5) '
                          'needs h5py, an optional dependency of the '
                          'converters: pip install h5py') from None
    return h5py


def load_caffe_hdf5(path: str) -> CaffeNet:
    """Read every layer group of a Caffe HDF5 weight file.

    Returns:
        CaffeNet: layers in h5py's (name) order; layers without datasets have
        no blobs; layer types are not recorded (``''``).

    Raises:
        WeightFileError: not an HDF5 file, no ``data`` group, or a layer
            group whose members are not the datasets ``0 .. n-1`` of floats.
        ImportError: h5py is not installed.
    """
    check_hdf5_signature(path)
    h5py = _import_h5py()
    layers = []
    with h5py.File(path, 'r') as f:
        data = f.get('data')
        if not isinstance(data, h5py.Group):
            raise WeightFileError(
                path, 'the root group', "a group 'data' with one group per "
                'layer (Caffe Net::ToHDF5)', f'members {sorted(f)}')
        for name, group in data.items():
            where = f'group /data/{name}'
            if not isinstance(group, h5py.Group):
                raise WeightFileError(path, where, 'a group of blobs',
                                      f'a {type(group).__name__}')
            expected = [str(i) for i in range(len(group))]
            if sorted(group) != sorted(expected):
                raise WeightFileError(path, where, f'datasets {expected}',
                                      f'members {sorted(group)}')
            blobs = []
            for key in expected:
                blob = group[key]
                if not isinstance(blob, h5py.Dataset) or \
                        blob.dtype.kind != 'f':
                    raise WeightFileError(
                        path, f'{where}/{key}', 'a float dataset',
                        f'{getattr(blob, "dtype", type(blob).__name__)}')
                blobs.append(np.asarray(blob[()]))
            layers.append(CaffeLayer(name, '', blobs))
    return CaffeNet('', layers, 'hdf5', path)


__all__ = ['HDF5_SIGNATURE', 'check_hdf5_signature', 'load_caffe_hdf5']
