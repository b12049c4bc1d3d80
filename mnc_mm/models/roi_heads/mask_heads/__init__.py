# Copyright (c) OpenMMLab. All rights reserved.
from .fcis_head import FCISHead
from .mnc_mask_head import MNCMaskHead

__all__ = ['FCISHead', 'MNCMaskHead']
