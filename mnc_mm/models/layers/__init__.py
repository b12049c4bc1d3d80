# Copyright (c) OpenMMLab. All rights reserved.
"""Small building blocks of both heads: box-gradient shaping (MNC), mask
resizing and the separable sampling behind mask pasting and voting."""
from .box_grad import clip_grad, official_warp_coord_grad
from .mask_resize import resize_masks_top_left

__all__ = [
    'clip_grad', 'official_warp_coord_grad', 'resize_masks_top_left'
]
