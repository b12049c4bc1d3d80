# Copyright (c) OpenMMLab. All rights reserved.
"""The per-stage heads of MNC."""
from .mnc_cls_head import MNCClsHead
from .mnc_mask_head import MNCMaskHead
from .mnc_rpn_head import MNCRPNHead

__all__ = ['MNCClsHead', 'MNCMaskHead', 'MNCRPNHead']
