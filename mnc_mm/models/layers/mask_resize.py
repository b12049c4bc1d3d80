# Copyright (c) OpenMMLab. All rights reserved.
"""caffe-mnc's MaskResize (mnc_spec §3.5): top-left aligned bilinear."""
import torch
from torch import Tensor

from mnc_mm.ops import roi_warp


def resize_masks_top_left(masks: Tensor, size: int) -> Tensor:
    """Resize square masks with the official MaskResize rule.

    Output cell ``(i, j)`` samples the input at ``(i * m / size,
    j * m / size)`` (e.g. 0, 1.5, ..., 19.5 for 21 -> 14): neither
    ``align_corners`` mode of ``F.interpolate``, but exactly the sampling
    (and border rules) of :func:`mnc_mm.ops.roi_warp` with the box
    ``(0, 0, m, m)`` at scale 1, which computes it. The gradient is the
    exact adjoint.

    Args:
        masks (Tensor): (R, m, m) float masks.
        size (int): output side.

    Returns:
        Tensor: (R, size, size).
    """
    if masks.dim() != 3 or masks.size(1) != masks.size(2):
        raise ValueError('masks must be (R, m, m), got '
                         f'{tuple(masks.shape)}')
    num, m = masks.size(0), masks.size(1)
    if num == 0:
        return masks.new_zeros((0, size, size))
    boxes = masks.new_tensor([0., 0., m, m]).expand(num, 4)
    index = torch.arange(num, dtype=masks.dtype, device=masks.device)
    rois = torch.cat([index[:, None], boxes], dim=1)
    return roi_warp(masks[:, None], rois, size, 1.0)[:, 0]
