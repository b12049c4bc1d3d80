# Copyright (c) OpenMMLab. All rights reserved.
"""The official MNC release (daijifeng001/MNC, Caffe): its parameters and
their names in our MNC model.

Layer names and blob shapes follow ``models/VGG16/mnc_5stage/train.prototxt``.
The released ``mnc_model.caffemodel.h5`` holds the 25 owner layers below; every
``*_ext`` layer shares its owner's blobs and is an empty group, as are the
layers without parameters. An array is named ``<layer>/<blob index>`` (0
weight, 1 bias) as in the HDF5 file.

Name map (open-mmlab/mmcv mmcv/cnn/vgg.py (VGG); daijifeng001/MNC
models/VGG16/mnc_5stage/train.prototxt), the one table of this conversion:

=============================  ============================================
official layer                 ours (``.weight`` / ``.bias``)
=============================  ============================================
conv1_1 ... conv5_3            backbone.features.{0, 2, 5, ..., 28}
rpn_conv_3x3                   rpn_head.rpn_conv
rpn_cls_score                  rpn_head.rpn_cls, (2, A) -> (A, 2), fg first
rpn_bbox_pred                  rpn_head.rpn_reg
fc6_maskest, mask_pred         roi_head.mask_head.fc_mask, .mask_pred
fc6, fc7                       roi_head.bbox_head.box_fcs.0, .box_fcs.2
fc6_mask, fc7_mask             roi_head.bbox_head.mask_fcs.0, .mask_fcs.2
cls_score, seg_cls_score       roi_head.bbox_head.fc_cls, .fc_seg_cls
bbox_pred                      roi_head.bbox_head.fc_reg, rows / stds
=============================  ============================================

Both sides concatenate the pathways as [mask, box] (``[fc7_mask, fc7]``)
and put the background in row 0, so the classifiers copy unchanged. The
released ``bbox_pred`` is de-normalised (``snapshot()`` multiplied row
``4c + j`` by ``BBOX_STDS[j]``, means 0); dividing it again gives the
normalised regressor that our box coder (stds (0.1, 0.1, 0.2, 0.2))
expects. Old V1 protobuf blobs with 4-D legacy dims (e.g. an fc weight
(1, 1, N, K)) are reshaped to their plain shape.
"""
from functools import partial
from typing import Dict, List, Mapping, Optional, Tuple

import numpy as np
import torch

from .caffe_net import CaffeNet
from .mapping import rename_arrays
from .rpn_layout import rpn_cls_official_to_mmdet_softmax

Shape = Tuple[int, ...]

# (layer, output channels, input channels) of VGG16's 3x3 convs.
VGG16_CONVS = (
    ('conv1_1', 64, 3), ('conv1_2', 64, 64),
    ('conv2_1', 128, 64), ('conv2_2', 128, 128),
    ('conv3_1', 256, 128), ('conv3_2', 256, 256), ('conv3_3', 256, 256),
    ('conv4_1', 512, 256), ('conv4_2', 512, 512), ('conv4_3', 512, 512),
    ('conv5_1', 512, 512), ('conv5_2', 512, 512), ('conv5_3', 512, 512),
)
MNC_VOC = dict(num_classes=21, num_anchors=9)
CONV5_CHANNELS = 512
MASK_EST_POOL = 14  # 28 x 28 RoI warp, then a 2 x 2 max-pool
BOX_POOL = 7  # a further 2 x 2 max-pool
MASK_EST_HIDDEN = 256
MASK_SIZE = 21  # mask_pred: 21 x 21 logits, row-major
FC_HIDDEN = 4096
# Layers that share their owner's blobs (empty groups in the HDF5 file).
SHARED_LAYERS = ('fc6_maskest_ext', 'mask_pred_ext', 'fc6_ext', 'fc7_ext',
                 'fc6_mask_ext', 'fc7_mask_ext', 'cls_score_ext',
                 'seg_cls_score_ext', 'bbox_pred_ext')


def vgg16_conv_params() -> Dict[str, List[Shape]]:
    """``{'conv1_1': [(64, 3, 3, 3), (64,)], ...}``: the 13 backbone convs."""
    return {name: [(out, cin, 3, 3), (out, )]
            for name, out, cin in VGG16_CONVS}


def mnc_official_params(num_classes: int = 21,
                        num_anchors: int = 9) -> Dict[str, List[Shape]]:
    """Blob shapes [weight, bias] of the 25 owner layers of the release.

    Args:
        num_classes: classes including the background (VOC: 21).
        num_anchors: anchors per position (9).
    """
    params = vgg16_conv_params()
    fc_in = CONV5_CHANNELS * BOX_POOL * BOX_POOL
    joint = 2 * FC_HIDDEN  # concat [fc7_mask, fc7]
    layers = {
        'rpn_conv_3x3': (CONV5_CHANNELS, CONV5_CHANNELS, 3, 3),
        'rpn_cls_score': (2 * num_anchors, CONV5_CHANNELS, 1, 1),
        'rpn_bbox_pred': (4 * num_anchors, CONV5_CHANNELS, 1, 1),
        'fc6_maskest': (MASK_EST_HIDDEN,
                        CONV5_CHANNELS * MASK_EST_POOL * MASK_EST_POOL),
        'mask_pred': (MASK_SIZE * MASK_SIZE, MASK_EST_HIDDEN),
        'fc6': (FC_HIDDEN, fc_in),
        'fc7': (FC_HIDDEN, FC_HIDDEN),
        'fc6_mask': (FC_HIDDEN, fc_in),
        'fc7_mask': (FC_HIDDEN, FC_HIDDEN),
        'cls_score': (num_classes, joint),
        'seg_cls_score': (num_classes, joint),
        'bbox_pred': (4 * num_classes, joint),
    }
    params.update({name: [shape, (shape[0], )]
                   for name, shape in layers.items()})
    return params


# Official head layer -> our module.
HEADS = {
    'rpn_conv_3x3': 'rpn_head.rpn_conv',
    'rpn_cls_score': 'rpn_head.rpn_cls',
    'rpn_bbox_pred': 'rpn_head.rpn_reg',
    'fc6_maskest': 'roi_head.mask_head.fc_mask',
    'mask_pred': 'roi_head.mask_head.mask_pred',
    'fc6': 'roi_head.bbox_head.box_fcs.0',
    'fc7': 'roi_head.bbox_head.box_fcs.2',
    'fc6_mask': 'roi_head.bbox_head.mask_fcs.0',
    'fc7_mask': 'roi_head.bbox_head.mask_fcs.2',
    'cls_score': 'roi_head.bbox_head.fc_cls',
    'seg_cls_score': 'roi_head.bbox_head.fc_seg_cls',
    'bbox_pred': 'roi_head.bbox_head.fc_reg',
}
CONV_LAYERS = ('rpn_conv_3x3', 'rpn_cls_score', 'rpn_bbox_pred')
# BBOX_NORMALIZE_STDS of experiments/cfgs/VGG16/mnc_5stage.yml (means 0).
BBOX_STDS = (0.1, 0.1, 0.2, 0.2)
# The ImageNet init VGG16.mask.caffemodel: the convs and fc6/fc7, and the
# copies fc6_mask/fc7_mask for the mask pathway if it holds them.
IMAGENET_FC_LAYERS = ('fc6', 'fc7')
IMAGENET_MASK_FC_LAYERS = ('fc6_mask', 'fc7_mask')


def vgg16_feature_indices() -> Dict[str, int]:
    """``{'conv1_1': 0, 'conv1_2': 2, 'conv2_1': 5, ...}``: the index of each
    conv in mmcv ``VGG.features`` (conv + ReLU per block, a max-pool after
    each stage)."""
    indices, index, stage = {}, 0, '1'
    for name, _, _ in VGG16_CONVS:
        if name[len('conv')] != stage:  # a new stage: skip the pool
            stage, index = name[len('conv')], index + 1
        indices[name] = index
        index += 2
    return indices


def mnc_name_map() -> Dict[str, str]:
    """Official ``<layer>/<blob>`` -> our MNC state-dict key (50 entries)."""
    modules = {name: f'backbone.features.{index}'
               for name, index in vgg16_feature_indices().items()}
    modules.update(HEADS)
    return {f'{layer}/{blob}': f'{module}.{param}'
            for layer, module in modules.items()
            for blob, param in enumerate(('weight', 'bias'))}


def plain_shape(array: np.ndarray, ndim: int) -> np.ndarray:
    """Drop the leading 1s of a legacy 4-D Caffe blob down to ``ndim``
    dims (an fc weight (1, 1, N, K) -> (N, K), a bias (1, 1, 1, N) ->
    (N,)); other arrays are returned as they are."""
    extra = array.ndim - ndim
    if extra > 0 and all(d == 1 for d in array.shape[:extra]):
        return array.reshape(array.shape[extra:])
    return array


def normalise_bbox_pred(array: np.ndarray) -> np.ndarray:
    """Divide each row ``4c + j`` of the released (de-normalised)
    ``bbox_pred`` weight (4C, K) or bias (4C,) by ``BBOX_STDS[j]``."""
    if array.shape[0] % 4:
        raise ValueError(f'bbox_pred: expected 4C rows, found shape '
                         f'{array.shape}')
    stds = np.tile(np.asarray(BBOX_STDS, array.dtype), array.shape[0] // 4)
    return array / stds.reshape(-1, *([1] * (array.ndim - 1)))


def official_to_ours(name: str, array: np.ndarray) -> np.ndarray:
    """The layout change of the official array ``name`` (``layer/blob``):
    plain shape, then the RPN order or the box regressor's stds."""
    layer, blob = name.split('/')
    if blob == '1':
        ndim = 1
    elif layer.startswith('conv') or layer in CONV_LAYERS:
        ndim = 4
    else:
        ndim = 2
    array = plain_shape(array, ndim)
    if layer == 'rpn_cls_score':
        array = rpn_cls_official_to_mmdet_softmax(array)
    elif layer == 'bbox_pred':
        array = normalise_bbox_pred(array)
    return array


def caffe_arrays(net: CaffeNet) -> Dict[str, np.ndarray]:
    """``{'<layer>/<blob index>': blob}`` of the layers with blobs."""
    return {f'{layer}/{i}': blob
            for layer, blobs in net.params().items()
            for i, blob in enumerate(blobs)}


def convert_mnc_arrays(arrays: Mapping[str, Optional[np.ndarray]],
                       source: str = '<caffemodel>'
                       ) -> Tuple[Dict[str, torch.Tensor], Dict]:
    """Our MNC state dict from the arrays of the official weights.

    Args:
        arrays: ``{'conv1_1/0': weight, ...}`` (see :func:`caffe_arrays`);
            blobs of the ``*_ext`` layers (copies of their owners' in a
            protobuf snapshot) are ignored.

    Returns:
        tuple: the state dict and ``dict(bbox_pred_divided_by=BBOX_STDS)``.
    """
    ignored = [f'{layer}/{i}' for layer in SHARED_LAYERS for i in (0, 1)]
    names = mnc_name_map()
    return (_rename(arrays, names, ignored, source),
            dict(bbox_pred_divided_by=BBOX_STDS))


def _rename(arrays, names, ignored, source):
    transforms = {name: partial(official_to_ours, name) for name in names}
    return rename_arrays(arrays, names, transforms, ignored, source)


def convert_vgg16_imagenet_arrays(arrays: Mapping[str, Optional[np.ndarray]],
                                  source: str = '<caffemodel>'
                                  ) -> Tuple[Dict[str, torch.Tensor], Dict]:
    """The part of our MNC state dict that the official ImageNet init
    (``VGG16.mask.caffemodel``) holds: the 13 convs, fc6/fc7 (box pathway)
    and, if present, fc6_mask/fc7_mask (mask pathway). Meant for
    ``load_from``; the heads the file lacks keep their initialisation.

    Returns:
        tuple: the state dict and ``dict(mask_pathway_converted,
        not_converted)`` (the file's other layers, e.g. ``fc8``).
    """
    layers = [name for name, _, _ in VGG16_CONVS] + list(IMAGENET_FC_LAYERS)
    layers += [layer for layer in IMAGENET_MASK_FC_LAYERS
               if f'{layer}/0' in arrays]
    names = {name: key for name, key in mnc_name_map().items()
             if name.split('/')[0] in layers}
    others = set(arrays) - set(names)
    state_dict = _rename(arrays, names, others, source)
    return state_dict, dict(
        mask_pathway_converted=IMAGENET_MASK_FC_LAYERS[0] in layers,
        not_converted=sorted({name.split('/')[0] for name in others}))
