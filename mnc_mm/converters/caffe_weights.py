# Copyright (c) OpenMMLab. All rights reserved.
"""Read either Caffe weight format, chosen by the file's first bytes."""
from .caffe_hdf5 import HDF5_SIGNATURE, load_caffe_hdf5
from .caffe_net import CaffeNet
from .caffe_protobuf import load_caffemodel


def load_caffe_weights(path: str) -> CaffeNet:
    """A ``.caffemodel.h5`` (HDF5, needs h5py) or a binary ``.caffemodel``
    (protobuf), whatever the file name says."""
    with open(path, 'rb') as f:
        head = f.read(len(HDF5_SIGNATURE))
    if head == HDF5_SIGNATURE:
        return load_caffe_hdf5(path)
    return load_caffemodel(path)
