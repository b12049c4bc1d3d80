# Copyright (c) OpenMMLab. All rights reserved.
"""Per-RoI mask targets shared by FCIS and MNC (msracver/FCIS
fcis/operator_py/proposal_annotator.py, daijifeng001/MNC
lib/pylayer/proposal_target_layer.py)."""
from typing import Tuple

import torch
from torch import Tensor

from ..layers.mask_resize import half_pixel_source, linear_taps


def _canvas_taps(start: Tensor, size: Tensor,
                 out: int) -> Tuple[Tensor, Tensor, Tensor]:
    """The cv2 INTER_LINEAR taps of ``out`` cells resampling a length-
    ``size`` axis that starts at ``start`` (both (R,)): the absolute low
    and high neighbours (R, out) and the weight of the high one."""
    dst = torch.arange(out, dtype=start.dtype, device=start.device)
    low, high, frac = linear_taps(half_pixel_source(dst, size[:, None], out),
                                  size[:, None])
    return start[:, None] + low, start[:, None] + high, frac


def crop_mask_targets(rois: Tensor,
                      gt_masks: Tensor,
                      gt_boxes: Tensor,
                      assigned_gt_inds: Tensor,
                      mask_size: int = 21,
                      binarize_thr: float = 0.4) -> Tensor:
    """Mask targets of foreground RoIs, as both official codes make them.

    For each RoI: round the RoI and its gt box (half to even, like
    ``np.round``); copy the gt mask inside ``RoI ∩ gt box`` into a zero
    canvas the size of the RoI; resize the canvas to ``mask_size`` squared
    with half-pixel bilinear sampling and edge clamping (cv2 INTER_LINEAR
    without anti-aliasing); binarise at ``>= binarize_thr``. Disjoint RoI
    and gt box give all zeros.

    Args:
        rois (Tensor): (R, 4) [x1, y1, x2, y2] in the masks' pixel frame.
        gt_masks (Tensor): (G, H, W) gt masks, binary or soft, any dtype.
        gt_boxes (Tensor): (G, 4) gt boxes in the same frame.
        assigned_gt_inds (Tensor): (R,) long, 0-based gt index of each RoI.
        mask_size (int): Side m of the target (21 in both codes).
        binarize_thr (float): Binarisation threshold (0.4).

    Returns:
        Tensor: (R, m, m) float targets in {0, 1}.
    """
    if rois.dim() != 2 or rois.size(1) != 4:
        raise ValueError(f'rois must be (R, 4), got {tuple(rois.shape)}')
    if gt_masks.dim() != 3 or gt_boxes.shape != (gt_masks.size(0), 4):
        raise ValueError('gt_masks must be (G, H, W) and gt_boxes (G, 4), '
                         f'got {tuple(gt_masks.shape)} and '
                         f'{tuple(gt_boxes.shape)}')
    if assigned_gt_inds.shape != (rois.size(0), ):
        raise ValueError('assigned_gt_inds must be (R,) = '
                         f'({rois.size(0)},), got '
                         f'{tuple(assigned_gt_inds.shape)}')
    num_rois, m = rois.size(0), mask_size
    if num_rois == 0:
        return rois.new_zeros((0, m, m))
    _, height, width = gt_masks.shape
    ex = torch.round(rois.detach().float())
    gt = torch.round(gt_boxes.float()[assigned_gt_inds])
    inter_lt = torch.max(ex[:, :2], gt[:, :2])
    inter_rb = torch.min(ex[:, 2:], gt[:, 2:])
    x0, x1, fx = _canvas_taps(ex[:, 0], ex[:, 2] - ex[:, 0] + 1, m)
    y0, y1, fy = _canvas_taps(ex[:, 1], ex[:, 3] - ex[:, 1] + 1, m)
    # The gt masks stay (G * H * W,): each canvas sample is gathered from
    # its RoI's gt mask by a flat index, so memory is O(R m^2), with no
    # per-RoI copy of a full mask.
    masks = gt_masks.reshape(-1)
    # first element of each RoI's gt mask, (R, 1, 1)
    base = (assigned_gt_inds.long() * (height * width))[:, None, None]

    def canvas(x: Tensor, y: Tensor) -> Tensor:
        """Canvas values (R, m, m) at integer rows y (R, m), cols x (R, m):
        the gt mask inside ``RoI ∩ gt box``, 0 elsewhere."""
        inside_x = (x >= inter_lt[:, 0:1]) & (x <= inter_rb[:, 0:1])
        inside_y = (y >= inter_lt[:, 1:2]) & (y <= inter_rb[:, 1:2])
        inside_x &= (x >= 0) & (x < width)
        inside_y &= (y >= 0) & (y < height)
        xi = x.clamp(0, width - 1).long()
        yi = y.clamp(0, height - 1).long()
        flat = base + yi[:, :, None] * width + xi[:, None, :]
        values = masks[flat].float()
        inside = inside_y[:, :, None] & inside_x[:, None, :]
        return values * inside

    # the high neighbour never leaves the canvas: its weight is 0 then
    wx, wy = fx[:, None, :], fy[:, :, None]
    target = ((1 - wy) * ((1 - wx) * canvas(x0, y0) + wx * canvas(x1, y0)) +
              wy * ((1 - wx) * canvas(x0, y1) + wx * canvas(x1, y1)))
    return (target >= binarize_thr).to(rois.dtype)
