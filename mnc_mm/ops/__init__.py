# Copyright (c) OpenMMLab. All rights reserved.
"""Compiled ops of mnc_mm. Importable with torch alone (no mmcv/mmdet)."""
from .ext_loader import ext_available, get_op, load_ext
from .roi_warp import RoIWarp, RoIWarpFunction, RoIWarpPool, roi_warp

__all__ = ['ext_available', 'get_op', 'load_ext']
__all__ += ['RoIWarp', 'RoIWarpFunction', 'RoIWarpPool', 'roi_warp']
