# Copyright (c) OpenMMLab. All rights reserved.
"""Readers of the official FCIS (MXNet) and MNC (Caffe) weight files.

numpy only (h5py for Caffe HDF5 files); nothing here unpickles anything.
One module per file format, one per official release.
"""
from .binary_reader import WeightFileError
from .caffe_hdf5 import load_caffe_hdf5
from .caffe_net import CaffeLayer, CaffeNet
from .caffe_protobuf import decode_caffemodel, load_caffemodel
from .mxnet_ndarray import (NDArrayList, decode_ndarray_list,
                            encode_ndarray_dict, encode_ndarray_list,
                            load_ndarray_list, ndarray_list_nbytes)

__all__ = [
    'WeightFileError', 'load_caffe_hdf5', 'CaffeLayer', 'CaffeNet',
    'decode_caffemodel', 'load_caffemodel', 'NDArrayList',
    'decode_ndarray_list', 'encode_ndarray_dict', 'encode_ndarray_list',
    'load_ndarray_list', 'ndarray_list_nbytes'
]
