# Copyright (c) OpenMMLab. All rights reserved.
from .mnc_mask_head import MNCMaskHead

__all__ = ['MNCMaskHead']
