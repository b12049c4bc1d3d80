# Copyright (c) OpenMMLab. All rights reserved.
"""The official FCIS release (msracver/FCIS, MXNet): its parameters and
their names in our FCIS model.

Names and shapes follow ``fcis/symbols/resnet_v1_101_fcis.py``: ``arg:`` arrays
are weights, biases and BN gamma/beta, ``aux:`` arrays are BN moving
statistics. Backbone convs have no bias; every head conv has one. All arrays
are float32.

Name map (msracver/FCIS fcis/symbols/resnet_v1_101_fcis.py), the one table of
this conversion:

==============================  ==========================================
official                        ours
==============================  ==========================================
conv1, bn_conv1                 backbone.conv1, backbone.bn1
res{S}{b}_branch2{a,b,c}        backbone.layer{S-1}.{i}.conv{1,2,3}
bn{S}{b}_branch2{a,b,c}         backbone.layer{S-1}.{i}.bn{1,2,3}
res{S}a_branch1, bn{S}a_branch1 backbone.layer{S-1}.0.downsample.{0,1}
rpn_conv_3x3                    rpn_head.rpn_conv
rpn_cls_score                   rpn_head.rpn_cls (2, A) -> (A, 2), fg first
rpn_bbox_pred                   rpn_head.rpn_reg
conv_new_1                      neck.convs.0.conv
fcis_cls_seg                    roi_head.mask_head.conv_cls_seg (official)
fcis_bbox (or fcis_bbox_*_test) roi_head.mask_head.conv_bbox (official)
==============================  ==========================================

BN: gamma, beta, moving_mean, moving_var -> weight, bias, running_mean,
running_var; ``num_batches_tracked`` is set to 0. Block index i: ``a`` -> 0,
``b``/``c`` -> 1/2 (stages 2, 5) and ``b<k>`` -> k (stages 3, 4).
"""
from typing import Dict, List, Mapping, Optional, Tuple

import numpy as np
import torch

from .mapping import rename_arrays
from .rpn_layout import rpn_cls_official_to_mmdet_softmax

Shape = Tuple[int, ...]

# (stage S of res{S}, number of bottlenecks, bottleneck width)
RESNET_V1_101_STAGES = ((2, 3, 64), (3, 4, 128), (4, 23, 256), (5, 3, 512))
RESNET_EXPANSION = 4
STEM_CHANNELS = 64
# The released COCO model and the VOC yaml: classes incl. background (C)
# and anchors per position (A = 3 ratios x 4 or 3 scales).
FCIS_COCO = dict(num_classes=81, num_anchors=12)
FCIS_VOC = dict(num_classes=21, num_anchors=9)
PS_GRID = 7  # k: position-sensitive score maps per side
NUM_REG_CLASSES = 2  # CLASS_AGNOSTIC: true -> (background, foreground)
RPN_CHANNELS = 512
C4_CHANNELS = 1024
C5_CHANNELS = 2048
REDUCED_CHANNELS = 1024  # conv_new_1 output
# Present only if the release was saved with FCIS's do_checkpoint, which
# adds the de-normalised box regressor (msracver/FCIS fcis/core/callback.py
# (do_checkpoint)).
TEST_BBOX_KEYS = ('arg:fcis_bbox_weight_test', 'arg:fcis_bbox_bias_test')
# The ImageNet classifier the init file resnet_v1_101-0000.params may hold.
IMAGENET_CLASSIFIER_KEYS = ('arg:fc1000_weight', 'arg:fc1000_bias')


def resnet_v1_block_names(stage: int, num_blocks: int) -> List[str]:
    """``res2a, res2b, res2c`` for stages 2 and 5; ``res3a, res3b1, ...``
    for stages 3 and 4."""
    if stage in (3, 4):
        return [f'res{stage}a'] + [f'res{stage}b{i}'
                                   for i in range(1, num_blocks)]
    return [f'res{stage}{chr(ord("a") + i)}' for i in range(num_blocks)]


def _conv_bn(params: Dict[str, Shape], conv: str, bn: str,
             shape: Shape) -> None:
    params[f'arg:{conv}_weight'] = shape
    for name in ('gamma', 'beta'):
        params[f'arg:{bn}_{name}'] = (shape[0], )
    for name in ('moving_mean', 'moving_var'):
        params[f'aux:{bn}_{name}'] = (shape[0], )


def resnet_v1_101_params() -> Dict[str, Shape]:
    """The backbone's 104 convs and 104 BNs: ``{'arg:conv1_weight': (64,
    3, 7, 7), 'aux:bn_conv1_moving_mean': (64,), ...}`` (416 arrays). Also
    the content of the ImageNet init ``resnet_v1_101-0000.params``, which
    may add the classifier ``fc1000``."""
    params: Dict[str, Shape] = {}
    _conv_bn(params, 'conv1', 'bn_conv1', (STEM_CHANNELS, 3, 7, 7))
    in_channels = STEM_CHANNELS
    for stage, num_blocks, width in RESNET_V1_101_STAGES:
        out_channels = width * RESNET_EXPANSION
        for i, block in enumerate(resnet_v1_block_names(stage, num_blocks)):
            bn = 'bn' + block[len('res'):]
            block_in = in_channels if i == 0 else out_channels
            _conv_bn(params, f'{block}_branch2a', f'{bn}_branch2a',
                     (width, block_in, 1, 1))
            _conv_bn(params, f'{block}_branch2b', f'{bn}_branch2b',
                     (width, width, 3, 3))
            _conv_bn(params, f'{block}_branch2c', f'{bn}_branch2c',
                     (out_channels, width, 1, 1))
            if i == 0:
                _conv_bn(params, f'{block}_branch1', f'{bn}_branch1',
                         (out_channels, in_channels, 1, 1))
        in_channels = out_channels
    return params


def fcis_head_shapes(num_classes: int, num_anchors: int) -> Dict[str, Shape]:
    """Weight shapes of the RPN and FCIS head convs, by layer name."""
    cells = PS_GRID * PS_GRID
    return {
        'rpn_conv_3x3': (RPN_CHANNELS, C4_CHANNELS, 3, 3),
        'rpn_cls_score': (2 * num_anchors, RPN_CHANNELS, 1, 1),
        'rpn_bbox_pred': (4 * num_anchors, RPN_CHANNELS, 1, 1),
        'conv_new_1': (REDUCED_CHANNELS, C5_CHANNELS, 1, 1),
        'fcis_cls_seg': (cells * 2 * num_classes, REDUCED_CHANNELS, 1, 1),
        'fcis_bbox': (cells * 4 * NUM_REG_CLASSES, REDUCED_CHANNELS, 1, 1),
    }


def fcis_official_params(num_classes: int = 81,
                         num_anchors: int = 12,
                         with_test_bbox: bool = False) -> Dict[str, Shape]:
    """Every array of an official FCIS ``.params`` file: 532 names.

    Args:
        num_classes: C, including the background (COCO 81, VOC 21).
        num_anchors: A (COCO 12, VOC 9).
        with_test_bbox: add the two ``fcis_bbox_*_test`` arrays.
    """
    params = resnet_v1_101_params()
    for layer, shape in fcis_head_shapes(num_classes, num_anchors).items():
        params[f'arg:{layer}_weight'] = shape
        params[f'arg:{layer}_bias'] = (shape[0], )
    if with_test_bbox:
        weight, bias = TEST_BBOX_KEYS
        params[weight] = params['arg:fcis_bbox_weight']
        params[bias] = params['arg:fcis_bbox_bias']
    return params


BN_PARAMS = (('arg', 'gamma', 'weight'), ('arg', 'beta', 'bias'),
             ('aux', 'moving_mean', 'running_mean'),
             ('aux', 'moving_var', 'running_var'))
HEADS = {
    'rpn_conv_3x3': 'rpn_head.rpn_conv',
    'rpn_cls_score': 'rpn_head.rpn_cls',
    'rpn_bbox_pred': 'rpn_head.rpn_reg',
    'conv_new_1': 'neck.convs.0.conv',
    'fcis_cls_seg': 'roi_head.mask_head.conv_cls_seg',
    'fcis_bbox': 'roi_head.mask_head.conv_bbox',
}
# --bbox-weights: the normalised regressor with the official test-time
# stds (as the official evaluation), or the ``_test`` copy with stds 1.
BBOX_TARGET_STDS = {
    'normalised': (0.2, 0.2, 0.5, 0.5),
    'test': (1.0, 1.0, 1.0, 1.0),
}


def _map_conv_bn(names: Dict[str, str], conv: str, bn: str,
                 conv_key: str, bn_key: str) -> None:
    names[f'arg:{conv}_weight'] = f'{conv_key}.weight'
    for kind, official, ours in BN_PARAMS:
        names[f'{kind}:{bn}_{official}'] = f'{bn_key}.{ours}'


def resnet_v1_101_name_map(prefix: str = 'backbone.') -> Dict[str, str]:
    """Official backbone array name -> mmdet ``ResNet`` state-dict key."""
    names: Dict[str, str] = {}
    _map_conv_bn(names, 'conv1', 'bn_conv1', f'{prefix}conv1',
                 f'{prefix}bn1')
    for stage, num_blocks, _ in RESNET_V1_101_STAGES:
        for i, block in enumerate(resnet_v1_block_names(stage, num_blocks)):
            bn = 'bn' + block[len('res'):]
            layer = f'{prefix}layer{stage - 1}.{i}'
            for j, branch in enumerate('abc', start=1):
                _map_conv_bn(names, f'{block}_branch2{branch}',
                             f'{bn}_branch2{branch}', f'{layer}.conv{j}',
                             f'{layer}.bn{j}')
            if i == 0:
                _map_conv_bn(names, f'{block}_branch1', f'{bn}_branch1',
                             f'{layer}.downsample.0',
                             f'{layer}.downsample.1')
    return names


def fcis_name_map() -> Dict[str, str]:
    """Official ``.params`` name -> our FCIS state-dict key (532 entries;
    the box regressor from the normalised ``fcis_bbox_*`` arrays)."""
    names = resnet_v1_101_name_map()
    for layer, module in HEADS.items():
        for param in ('weight', 'bias'):
            names[f'arg:{layer}_{param}'] = f'{module}.{param}'
    return names


def bn_num_batches_tracked(name_map: Mapping[str, str]
                           ) -> Dict[str, torch.Tensor]:
    """``{'<bn>.num_batches_tracked': 0}`` for every BN of ``name_map``, so
    that strict loading finds them."""
    suffix = '.running_mean'
    return {key[:-len(suffix)] + '.num_batches_tracked':
            torch.tensor(0, dtype=torch.long)
            for key in name_map.values() if key.endswith(suffix)}


def convert_fcis_arrays(arrays: Mapping[str, Optional[np.ndarray]],
                        bbox_weights: str = 'normalised',
                        source: str = '<params>'
                        ) -> Tuple[Dict[str, torch.Tensor], Dict]:
    """Our FCIS state dict from the arrays of an official ``.params`` file.

    Args:
        arrays: ``{'arg:conv1_weight': array, ...}`` as in the file.
        bbox_weights: ``'normalised'`` takes ``fcis_bbox_{weight,bias}``
            (use box coder stds (0.2, 0.2, 0.5, 0.5)); ``'test'`` takes the
            de-normalised ``fcis_bbox_{weight,bias}_test`` (stds 1).
        source: the file name used in error messages.

    Returns:
        tuple: the state dict (float32 tensors, plus ``num_batches_tracked``)
        and a report ``dict(test_bbox_keys_found, bbox_weights,
        bbox_target_stds)``.
    """
    if bbox_weights not in BBOX_TARGET_STDS:
        raise ValueError(f'bbox_weights must be one of '
                         f'{tuple(BBOX_TARGET_STDS)}, found {bbox_weights!r}')
    found = [key for key in TEST_BBOX_KEYS if key in arrays]
    if len(found) == 1:
        raise KeyError(f'{source}: expected both or neither of '
                       f'{TEST_BBOX_KEYS}, found only {found[0]!r}')
    names = fcis_name_map()
    if bbox_weights == 'test':
        if not found:
            raise KeyError(f'{source}: --bbox-weights test needs '
                           f'{TEST_BBOX_KEYS}, which the file does not hold; '
                           f'use the normalised weights (the default)')
        for key in TEST_BBOX_KEYS:
            names[key] = names.pop(key[:-len('_test')])
        ignored = [key[:-len('_test')] for key in TEST_BBOX_KEYS]
    else:
        ignored = found
    state_dict = rename_arrays(
        arrays, names,
        {'arg:rpn_cls_score_weight': rpn_cls_official_to_mmdet_softmax,
         'arg:rpn_cls_score_bias': rpn_cls_official_to_mmdet_softmax},
        ignored, source)
    state_dict.update(bn_num_batches_tracked(names))
    report = dict(test_bbox_keys_found=bool(found),
                  bbox_weights=bbox_weights,
                  bbox_target_stds=BBOX_TARGET_STDS[bbox_weights])
    return state_dict, report


def convert_resnet_v1_101_arrays(arrays: Mapping[str, Optional[np.ndarray]],
                                 source: str = '<params>'
                                 ) -> Tuple[Dict[str, torch.Tensor], Dict]:
    """An mmdet ``ResNet`` state dict (no ``backbone.`` prefix, for a
    backbone's ``init_cfg=dict(type='Pretrained', checkpoint=...)``) from
    the ImageNet init ``resnet_v1_101-0000.params``.

    Returns:
        tuple: the state dict and ``dict(classifier_keys_found)``; the
        ImageNet classifier ``fc1000`` is not converted.
    """
    names = resnet_v1_101_name_map(prefix='')
    state_dict = rename_arrays(arrays, names, ignored=IMAGENET_CLASSIFIER_KEYS,
                               source=source)
    state_dict.update(bn_num_batches_tracked(names))
    found = [key for key in IMAGENET_CLASSIFIER_KEYS if key in arrays]
    return state_dict, dict(classifier_keys_found=bool(found))
