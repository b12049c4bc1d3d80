# Copyright (c) OpenMMLab. All rights reserved.
"""Small differentiable building blocks of the MNC cascade."""
from .box_grad import clip_grad, official_warp_coord_grad
from .mask_resize import resize_masks_top_left

__all__ = [
    'clip_grad', 'official_warp_coord_grad', 'resize_masks_top_left'
]
