# Copyright (c) OpenMMLab. All rights reserved.
from .checked_coco import CheckedCocoDataset, segmentation_error
from .sbd import VOC_CLASSES, load_sbd_instances, sbd_to_coco
from .synthetic_shapes import SHAPES_CLASSES, make_shapes_dataset

__all__ = [
    'CheckedCocoDataset', 'segmentation_error', 'VOC_CLASSES',
    'load_sbd_instances', 'sbd_to_coco', 'SHAPES_CLASSES',
    'make_shapes_dataset'
]
