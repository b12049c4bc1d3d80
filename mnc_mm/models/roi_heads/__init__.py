# Copyright (c) OpenMMLab. All rights reserved.
from .bbox_heads import MNCClsHead
from .fcis_roi_head import FCISRoIHead
from .mask_heads import MNCMaskHead
from .mnc_roi_head import MNCRoIHead
from .roi_extractors import RoIWarpExtractor
from .stage_bridge import bridge_boxes

__all__ = [
    'FCISRoIHead', 'MNCClsHead', 'MNCMaskHead', 'MNCRoIHead',
    'RoIWarpExtractor', 'bridge_boxes'
]
