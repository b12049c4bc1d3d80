# Copyright (c) OpenMMLab. All rights reserved.
"""MNC's mask-level classification labels (daijifeng001/MNC
lib/pylayer/mask_layer.py, ``MaskLayer``)."""
import torch
from torch import Tensor

from ..layers.mask_resize import box_row_chunks, resize_box_rows


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

    No per-RoI loop and two host syncs: the masks are resized in groups of
    bounded size (:func:`box_row_chunks`), and the gt masks are read from
    one bool copy of them on a canvas that spans the image and all RoIs.
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
    num_rois = rois.size(0)
    if num_rois == 0:
        return mask_probs.new_zeros(0)
    num_gts, height, width = gt_masks.shape
    boxes = torch.round(rois.detach()).long()
    x1, y1 = boxes[:, 0], boxes[:, 1]
    widths = (boxes[:, 2] - x1 + 1).clamp(min=1)
    heights = (boxes[:, 3] - y1 + 1).clamp(min=1)
    probs = mask_probs.detach().float()
    gt_inds = assigned_gt_inds.long()
    # The binary gt masks on a zero canvas that holds every RoI, so that
    # each row of a pasted mask sits on one contiguous run of it.
    left, top, right, bottom = torch.cat([
        boxes[:, :2].amin(0).clamp(max=0),
        torch.stack([x1 + widths, y1 + heights], 1).amax(0).clamp(
            min=torch.tensor([width, height], device=boxes.device))
    ]).tolist()
    canvas_w = right - left
    # (one more row: the padding of a row may run past the last one)
    canvas = gt_masks.new_zeros(
        (num_gts * (bottom - top) + 1) * canvas_w, dtype=torch.bool)
    canvas[:-canvas_w].view(num_gts, bottom - top, canvas_w)[
        :, -top:height - top, -left:width - left] = gt_masks > 0
    # where each RoI's first row starts on the canvas
    first = (gt_inds * (bottom - top) + y1 - top) * canvas_w + x1 - left
    pred_area = boxes.new_zeros(num_rois)
    inter = boxes.new_zeros(num_rois)
    # All RoIs at once, in groups bounded in memory: the rows of each mask
    # resized to its box, padded to the group's widest box.
    for index, num_rows, win_w in box_row_chunks(heights, widths):
        values, box, row = resize_box_rows(probs[index], heights[index],
                                           widths[index], num_rows, win_w)
        pred = values >= binarize_thr
        pred &= torch.arange(win_w, device=boxes.device) < widths[index][
            box, None]
        pred = pred.view(torch.uint8)
        index_rows = index[box]
        pred_area.index_add_(0, index_rows,
                             pred.sum(1, dtype=torch.int32).long())
        # the gt under each row: win_w canvas pixels from its first one
        gt_rows = canvas.unfold(0, win_w, 1).index_select(
            0, first[index_rows] + row * canvas_w)
        pred &= gt_rows.view(torch.uint8)
        inter.index_add_(0, index_rows,
                         pred.sum(1, dtype=torch.int32).long())
    gt_area = gt_masks.flatten(1).sum(1).float()[gt_inds]
    # float64, as the Python floats of the former per-RoI loop
    inter = inter.double()
    union = pred_area.double() + gt_area.double() - inter
    ious = inter / torch.where(union > 0, union, 1.)
    return ious.to(mask_probs.dtype)


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
