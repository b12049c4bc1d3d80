# Copyright (c) OpenMMLab. All rights reserved.
from .mnc_roi_head import MNCRoIHead
from .stage_bridge import bridge_boxes

__all__ = ['MNCRoIHead', 'bridge_boxes']
