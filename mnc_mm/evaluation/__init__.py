# Copyright (c) OpenMMLab. All rights reserved.
from .coco_voc_mask_metric import CocoVOCMaskAPMetric
from .voc_mask_ap import VOCMaskAPMetric, sds_ap, voc07_ap

__all__ = ['CocoVOCMaskAPMetric', 'VOCMaskAPMetric', 'sds_ap', 'voc07_ap']
