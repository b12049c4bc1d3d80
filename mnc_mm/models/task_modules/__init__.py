# Copyright (c) OpenMMLab. All rights reserved.
"""Task modules that mmdet lacks: the +1 box coder and IoU, py-faster-rcnn
anchors, the targets of sampled RoIs shared by FCIS and MNC, the test-time
best class, OHEM; MNC's RoI sampler and mask-level labels."""
from .best_class import best_class, regress_by_best_class
from .box_ends import to_exclusive, to_inclusive
from .coders import (PlusOneDeltaXYWHBBoxCoder, clip_boxes,
                     select_class_deltas)
from .iou_calculators import BboxOverlaps2DPlusOne
from .mask_level_labels import mask_level_labels, predicted_mask_ious
from .mask_target import crop_mask_targets
from .prior_generators import PyFasterRCNNAnchorGenerator
from .roi_targets import sampled_roi_targets
from .samplers import MNCRoISampler, ohem_select

__all__ = [
    'best_class', 'regress_by_best_class', 'to_exclusive', 'to_inclusive',
    'PlusOneDeltaXYWHBBoxCoder', 'clip_boxes', 'select_class_deltas',
    'BboxOverlaps2DPlusOne', 'crop_mask_targets',
    'PyFasterRCNNAnchorGenerator', 'sampled_roi_targets', 'MNCRoISampler',
    'ohem_select', 'mask_level_labels', 'predicted_mask_ious'
]
