# Copyright (c) OpenMMLab. All rights reserved.
from .fcis_roi_head import FCISRoIHead
from .mnc_roi_head import MNCRoIHead
from .stage_bridge import bridge_boxes

__all__ = ['FCISRoIHead', 'MNCRoIHead', 'bridge_boxes']
