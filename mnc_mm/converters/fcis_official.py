# Copyright (c) OpenMMLab. All rights reserved.
"""The official FCIS release (msracver/FCIS, MXNet): its parameters.

Names and shapes follow ``fcis/symbols/resnet_v1_101_fcis.py``
(converters_spec §4.1): ``arg:`` arrays are weights, biases and BN
gamma/beta, ``aux:`` arrays are BN moving statistics. Backbone convs have no
bias; every head conv has one. All arrays are float32.
"""
from typing import Dict, List, Tuple

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
# adds the de-normalised box regressor (converters_spec §4.7).
TEST_BBOX_KEYS = ('arg:fcis_bbox_weight_test', 'arg:fcis_bbox_bias_test')


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
