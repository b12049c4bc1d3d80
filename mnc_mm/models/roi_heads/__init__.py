# Copyright (c) OpenMMLab. All rights reserved.
from .bbox_heads import MNCClsHead
from .fcis_roi_head import FCISRoIHead
from .mask_heads import FCISHead, MNCMaskHead
from .mnc_roi_head import MNCRoIHead
from .roi_extractors import RoIWarpExtractor

__all__ = [
    'FCISHead', 'FCISRoIHead', 'MNCClsHead', 'MNCMaskHead', 'MNCRoIHead',
    'RoIWarpExtractor'
]
