# Copyright (c) OpenMMLab. All rights reserved.
"""Synthetic stand-ins for the weight files the configs start from: the
real files' key names and shapes, zero-filled (``np.zeros``/``torch.zeros``
are allocated lazily, so a full-size VGG-16 costs no touched memory)."""
from typing import Dict, List, Tuple

import numpy as np

from mnc_mm.converters.caffe_net import CaffeLayer, CaffeNet
from mnc_mm.converters.mnc_official import FC_HIDDEN, vgg16_conv_params

Shape = Tuple[int, ...]
# ImageNet VGG-16 (VGG_ILSVRC_16_layers): pool5 is 512 x 7 x 7.
VGG16_FC_PARAMS = {
    'fc6': [(FC_HIDDEN, 512 * 7 * 7), (FC_HIDDEN, )],
    'fc7': [(FC_HIDDEN, FC_HIDDEN), (FC_HIDDEN, )],
    'fc8': [(1000, FC_HIDDEN), (1000, )],
}


def vgg16_mask_params() -> Dict[str, List[Shape]]:
    """Layers of daijifeng001/MNC ``data/imagenet_models/
    VGG16.mask.caffemodel``: ImageNet VGG-16 (13 convs, fc6-fc8) plus
    fc6_mask/fc7_mask, the copies of fc6/fc7 the train prototxt loads by
    name into the mask pathway."""
    params = dict(vgg16_conv_params(), **VGG16_FC_PARAMS)
    params['fc6_mask'] = params['fc6']
    params['fc7_mask'] = params['fc7']
    return params


def legacy_shape(shape: Shape) -> Shape:
    """The 4-D blob shape old (V1) Caffe wrote: leading 1s."""
    return (1, ) * (4 - len(shape)) + tuple(shape)


def synthetic_caffe_net(params: Dict[str, List[Shape]],
                        name: str = 'VGG_ILSVRC_16_layers') -> CaffeNet:
    """A V1 CaffeNet with zero blobs of ``params``' shapes (legacy 4-D)."""
    layers = [
        CaffeLayer(layer, 'Convolution' if layer.startswith('conv') else
                   'InnerProduct',
                   [np.zeros(legacy_shape(s), np.float32) for s in shapes])
        for layer, shapes in params.items()
    ]
    return CaffeNet(name, layers, 'protobuf-v1', f'<synthetic {name}>')
