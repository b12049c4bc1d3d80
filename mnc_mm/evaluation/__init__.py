# Copyright (c) OpenMMLab. All rights reserved.
from .voc_mask_ap import VOCMaskAPMetric, sds_ap

__all__ = ['VOCMaskAPMetric', 'sds_ap']
