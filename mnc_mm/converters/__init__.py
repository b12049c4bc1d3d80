# Copyright (c) OpenMMLab. All rights reserved.
"""Readers of the official FCIS (MXNet) and MNC (Caffe) weight files.

numpy only (h5py for Caffe HDF5 files); nothing here unpickles anything.
One module per file format, one per official release.
"""
from .binary_reader import WeightFileError
from .mxnet_ndarray import (NDArrayList, decode_ndarray_list,
                            encode_ndarray_dict, encode_ndarray_list,
                            load_ndarray_list, ndarray_list_nbytes)

__all__ = [
    'WeightFileError', 'NDArrayList', 'decode_ndarray_list',
    'encode_ndarray_dict', 'encode_ndarray_list', 'load_ndarray_list',
    'ndarray_list_nbytes'
]
