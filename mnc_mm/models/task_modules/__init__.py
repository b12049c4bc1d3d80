# Copyright (c) OpenMMLab. All rights reserved.
"""Task modules that mmdet lacks: the +1 box coder and IoU, py-faster-rcnn
anchors, and the per-RoI mask targets shared by FCIS and MNC; MNC's RoI
sampler and mask-level labels."""
from .box_ends import to_exclusive, to_inclusive
from .coders import (PlusOneDeltaXYWHBBoxCoder, clip_boxes,
                     select_class_deltas)
from .iou_calculators import BboxOverlaps2DPlusOne
from .mask_level_labels import mask_level_labels, predicted_mask_ious
from .mask_target import crop_mask_targets
from .prior_generators import PyFasterRCNNAnchorGenerator
from .samplers import MNCRoISampler

__all__ = [
    'to_exclusive', 'to_inclusive',
    'PlusOneDeltaXYWHBBoxCoder', 'clip_boxes', 'select_class_deltas',
    'BboxOverlaps2DPlusOne', 'crop_mask_targets',
    'PyFasterRCNNAnchorGenerator', 'MNCRoISampler', 'mask_level_labels',
    'predicted_mask_ious'
]
