# Copyright (c) OpenMMLab. All rights reserved.
"""The official MNC release (daijifeng001/MNC, Caffe): its parameters.

Layer names and blob shapes follow ``models/VGG16/mnc_5stage/train.prototxt``
(converters_spec §5.1). The released ``mnc_model.caffemodel.h5`` holds the
25 owner layers below; every ``*_ext`` layer shares its owner's blobs and is
an empty group, as are the layers without parameters.
"""
from typing import Dict, List, Tuple

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
