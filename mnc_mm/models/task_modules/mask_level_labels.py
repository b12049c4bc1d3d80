# Copyright (c) OpenMMLab. All rights reserved.
"""MNC's mask-level classification labels (mnc_spec §6.3, ``MaskLayer``)."""
import torch
from torch import Tensor
from torch.nn import functional as F


def predicted_mask_ious(mask_probs: Tensor, rois: Tensor, gt_masks: Tensor,
                        assigned_gt_inds: Tensor,
                        binarize_thr: float = 0.4) -> Tensor:
    """IoU of each RoI's predicted mask with its assigned gt mask.

    Each m x m mask is resized (half-pixel bilinear, as cv2 INTER_LINEAR)
    to its rounded RoI ``(x2 - x1 + 1, y2 - y1 + 1)``, binarised at
    ``>= binarize_thr`` and pasted at the RoI; the intersection counts gt
    pixels under it, the union is ``|pred| + |gt| - inter`` over the whole
    masks (``mask_overlap``).

    Args:
        mask_probs (Tensor): (P, m, m) soft masks in [0, 1].
        rois (Tensor): (P, 4) [x1, y1, x2, y2] in the gt masks' px.
        gt_masks (Tensor): (G, H, W) binary gt masks.
        assigned_gt_inds (Tensor): (P,) long, 0-based gt of each RoI.
        binarize_thr (float): binarisation threshold (0.4).

    Returns:
        Tensor: (P,) IoUs in [0, 1] (0 when the union is empty).
    """
    if mask_probs.dim() != 3 or rois.shape != (mask_probs.size(0), 4):
        raise ValueError('mask_probs must be (P, m, m) and rois (P, 4), got '
                         f'{tuple(mask_probs.shape)} and {tuple(rois.shape)}')
    if assigned_gt_inds.shape != (rois.size(0), ):
        raise ValueError(f'assigned_gt_inds must be ({rois.size(0)},), got '
                         f'{tuple(assigned_gt_inds.shape)}')
    if gt_masks.dim() != 3:
        raise ValueError(f'gt_masks must be (G, H, W), got '
                         f'{tuple(gt_masks.shape)}')
    height, width = gt_masks.shape[1:]
    boxes = torch.round(rois.detach()).long().tolist()
    ious = mask_probs.new_zeros(rois.size(0))
    gt_area = gt_masks.flatten(1).sum(1).float()
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        w, h = max(x2 - x1 + 1, 1), max(y2 - y1 + 1, 1)
        pred = F.interpolate(
            mask_probs[i][None, None].detach().float(), size=(h, w),
            mode='bilinear', align_corners=False)[0, 0] >= binarize_thr
        g = int(assigned_gt_inds[i])
        # the part of the pasted mask inside the image
        ox1, oy1 = max(x1, 0), max(y1, 0)
        ox2, oy2 = min(x1 + w, width), min(y1 + h, height)
        inter = 0.
        if ox2 > ox1 and oy2 > oy1:
            gt_crop = gt_masks[g, oy1:oy2, ox1:ox2] > 0
            pred_crop = pred[oy1 - y1:oy2 - y1, ox1 - x1:ox2 - x1]
            inter = float((gt_crop & pred_crop).sum())
        union = float(pred.sum()) + float(gt_area[g]) - inter
        if union > 0:
            ious[i] = inter / union
    return ious


def mask_level_labels(mask_probs: Tensor, rois: Tensor, gt_masks: Tensor,
                      assigned_gt_inds: Tensor, labels: Tensor,
                      iou_thr: float = 0.5,
                      binarize_thr: float = 0.4) -> Tensor:
    """Labels of the mask-level classifier of foreground RoIs: the RoI's
    class if its predicted mask has IoU >= ``iou_thr`` with its **assigned**
    gt (not the best-matching one), else 0 (background, never ignored).

    Args:
        mask_probs, rois, gt_masks, assigned_gt_inds, binarize_thr: see
            :func:`predicted_mask_ious`.
        labels (Tensor): (P,) long box-level labels (1-based classes).
        iou_thr (float): mask IoU needed for a positive (0.5).

    Returns:
        Tensor: (P,) long labels, 0 where the mask IoU is too low.
    """
    if labels.shape != (rois.size(0), ):
        raise ValueError(f'labels must be ({rois.size(0)},), got '
                         f'{tuple(labels.shape)}')
    ious = predicted_mask_ious(mask_probs, rois, gt_masks, assigned_gt_inds,
                               binarize_thr)
    return torch.where(ious >= iou_thr, labels, torch.zeros_like(labels))
