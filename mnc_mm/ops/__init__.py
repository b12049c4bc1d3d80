# Copyright (c) OpenMMLab. All rights reserved.
"""Compiled ops of mnc_mm, registered as torch ops ``torch.ops.mnc_mm.*``.
Importable with torch alone (no mmcv/mmdet)."""
from .ext_loader import ext_available, get_op, load_ext
from .onnx_symbolics import register_onnx_symbolics
from .ps_roi_max_avg_pool import ps_roi_max_avg_pool
from .ps_roi_pool import PSRoIPool, ps_roi_pool
from .roi_warp import RoIWarp, RoIWarpPool, roi_warp

__all__ = [
    'ext_available', 'get_op', 'load_ext',
    'PSRoIPool', 'ps_roi_pool', 'ps_roi_max_avg_pool',
    'RoIWarp', 'RoIWarpPool', 'roi_warp',
]

register_onnx_symbolics()
