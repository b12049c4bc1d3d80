# Copyright (c) OpenMMLab. All rights reserved.
"""MNC's stage bridge (mnc_spec §7): stage-3 regressed boxes become the RoIs
of stages 4/5."""
from typing import Sequence

from torch import Tensor

from ..task_modules import select_class_deltas


def bridge_boxes(rois: Tensor,
                 bbox_pred: Tensor,
                 seg_cls_score: Tensor,
                 bbox_coder,
                 img_shape: Sequence[int],
                 with_bg: bool = False) -> Tensor:
    """Regress each RoI with the deltas of its top mask-level class.

    The class is the argmax of ``seg_cls_score`` (the mask-level
    classifier, not ``cls_score``) over the foreground columns, or over
    all columns when ``with_bg`` (the official test graph, whose background
    regressor is never trained, §13.12). The choice is not differentiated;
    the boxes are differentiable w.r.t. ``rois`` and ``bbox_pred``.

    Args:
        rois (Tensor): (R, 4) [x1, y1, x2, y2] in input-image px.
        bbox_pred (Tensor): (R, 4(N+1)) deltas, normalised by the coder's
            stds (a coder with stds 1 applies them raw, as the official
            training graph does, §13.11).
        seg_cls_score (Tensor): (R, N+1) scores or logits, background at
            column 0.
        bbox_coder: has ``decode(boxes, deltas, max_shape)``.
        img_shape (Sequence[int]): ``(H, W)``; boxes are clipped to
            ``[0, W - 1] x [0, H - 1]``.
        with_bg (bool): let the background column win the argmax.

    Returns:
        Tensor: (R, 4) boxes in input-image px.
    """
    num, cols = seg_cls_score.shape
    if rois.shape != (num, 4) or bbox_pred.shape != (num, 4 * cols):
        raise ValueError(
            f'rois (R, 4), bbox_pred (R, 4(N+1)) and seg_cls_score (R, N+1) '
            f'must agree, got {tuple(rois.shape)}, {tuple(bbox_pred.shape)} '
            f'and {tuple(seg_cls_score.shape)}')
    scores = seg_cls_score.detach()
    if with_bg:
        labels = scores.argmax(1)
    else:
        labels = scores[:, 1:].argmax(1) + 1
    deltas = select_class_deltas(bbox_pred, labels)
    return bbox_coder.decode(rois, deltas, max_shape=img_shape[:2])
