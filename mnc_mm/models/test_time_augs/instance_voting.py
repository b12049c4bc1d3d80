# Copyright (c) OpenMMLab. All rights reserved.
"""Mask voting over the instances of several test views of one image.

As in the multi-scale testing of the FCIS paper's COCO experiments (Li et
al., CVPR 2017, arXiv 1611.07709), all views' candidates are voted
together. Here the candidates are the views' final instances (image-size
masks), so the merge needs no head internals: per class, greedy box NMS;
each kept instance's mask is the score-weighted average of the same-class
candidates overlapping it, binarised.
"""
from typing import Tuple

import torch
from mmcv.ops import bbox_overlaps
from torch import Tensor

from mnc_mm.ops.checks import check_positive_int, check_shape
from ..post_processing.mask_voting import _first_last, _select_detections
from ..task_modules import to_inclusive


def _check_candidates(boxes: Tensor, scores: Tensor, labels: Tensor,
                      masks: Tensor) -> None:
    op = 'vote_instances'
    check_shape(op, 'boxes', boxes, (None, 4), '(N, 4)')
    num = boxes.size(0)
    check_shape(op, 'scores', scores, (num, ), f'(N,) with N = {num}')
    check_shape(op, 'labels', labels, (num, ), f'(N,) with N = {num}')
    check_shape(op, 'masks', masks, (num, None, None),
                f'(N, H, W) with N = {num}')
    if masks.dtype != torch.bool:
        raise TypeError(f'{op}: masks must be bool (N, H, W), got '
                        f'{masks.dtype}')
    if labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise TypeError(f'{op}: labels must be an integer tensor, got '
                        f'{labels.dtype}')
    if num and int(labels.min()) < 0:
        raise ValueError(f'{op}: labels must be >= 0 (0-based), got '
                         f'{int(labels.min())}')


def vote_instances(boxes: Tensor,
                   scores: Tensor,
                   labels: Tensor,
                   masks: Tensor,
                   *,
                   nms_thr: float = 0.3,
                   merge_iou_thr: float = 0.5,
                   mask_thr: float = 0.4,
                   max_per_img: int = 100
                   ) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """Merge the instances of all views of one image by mask voting.

    1. Per class, greedy NMS by score over the boxes (IoU with +1 areas
       ``> nms_thr`` suppressed); of all kept, the ``max_per_img`` highest
       scores (ties can let more through), as in :func:`mask_voting`.
    2. For each kept instance k of class c, the candidates are the class-c
       instances with box IoU ``>= merge_iou_thr`` to k (k included),
       weighted by their scores normalised over the candidates.
    3. The voted mask is the weighted average of the candidates' binary
       masks, on where ``>= mask_thr``; the box is its tight box. Instances
       whose voted mask is empty are dropped.

    Args:
        boxes (Tensor): (N, 4) mmdet boxes (exclusive ends) in image px.
        scores (Tensor): (N,) scores.
        labels (Tensor): (N,) 0-based labels.
        masks (Tensor): (N, H, W) bool masks in the same image.

    Returns:
        tuple: ``boxes`` (K, 4) tight boxes of the voted masks (exclusive
        ends), ``scores`` (K,) the kept instances' scores, ``labels`` (K,),
        ``masks`` (K, H, W) bool; ordered by label, then by descending
        score.
    """
    _check_candidates(boxes, scores, labels, masks)
    check_positive_int('vote_instances', 'max_per_img', max_per_img)
    if not mask_thr > 0:
        # A threshold <= 0 would switch on every pixel of the image.
        raise ValueError(f'vote_instances: mask_thr must be > 0, got '
                         f'{mask_thr!r}')
    height, width = masks.shape[1:]
    boxes, scores = boxes.float(), scores.float()
    if boxes.size(0) == 0:
        return (boxes.new_zeros((0, 4)), scores.new_zeros((0, )),
                labels.new_zeros((0, )), masks.new_zeros((0, height, width)))
    inclusive = to_inclusive(boxes)
    # One column per class: the instance's score in its own class, -1 (below
    # the score floor 0, so never kept nor voting) in the others.
    num_classes = int(labels.max()) + 1
    own_class = labels[:, None] == torch.arange(num_classes,
                                                device=labels.device)
    class_scores = torch.where(own_class, scores[:, None], -1.)
    kept, kept_labels = _select_detections(
        inclusive, class_scores, nms_thr, max_per_class=boxes.size(0),
        max_per_img=max_per_img, score_floor=0.)
    # box IoU with +1 areas, as the NMS
    iou = bbox_overlaps(inclusive[kept], inclusive, offset=1)  # (K, N)
    same_class = labels[None, :] == kept_labels[:, None]
    is_candidate = (iou >= merge_iou_thr) & same_class
    weights = torch.where(is_candidate, scores[None, :], 0.)
    weights = weights / weights.sum(1, keepdim=True).clamp(
        min=torch.finfo(weights.dtype).tiny)
    voted = torch.stack([
        torch.tensordot(w[c], masks[c].float(), dims=1) >= mask_thr
        for w, c in zip(weights, is_candidate)
    ]) if kept.numel() else masks.new_zeros((0, height, width))
    x1, x2 = _first_last(voted.any(1), -1)
    y1, y2 = _first_last(voted.any(2), -1)
    tight = torch.stack([x1, y1, x2 + 1, y2 + 1], dim=1).to(boxes.dtype)
    keep = x1 >= 0
    return (tight[keep], scores[kept][keep], labels[kept][keep],
            voted[keep])
