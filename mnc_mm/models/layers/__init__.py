# Copyright (c) OpenMMLab. All rights reserved.
"""Small building blocks of both heads: box-gradient shaping (MNC) and the
mask resampling every mask path goes through."""
from .box_grad import clip_grad, official_warp_coord_grad
from .mask_resampling import resize_masks_top_left

__all__ = [
    'clip_grad', 'official_warp_coord_grad', 'resize_masks_top_left'
]
