# Copyright (c) OpenMMLab. All rights reserved.
"""The class a RoI is taken to be at test time, and its regressed box:
shared by FCIS's second pass and MNC's stage bridge."""
from typing import Sequence

import torch
from torch import Tensor

from .coders import select_class_deltas

_NEG_FLT_MAX = -torch.finfo(torch.float32).max


def best_class(scores: Tensor, with_bg: bool = False) -> Tensor:
    """The best class (R,) of class scores (R, C), background at 0.

    The rule of the official ``Score_Pick`` (msracver/FCIS
    fcis/operator_cxx/channel_operator.cu): a strict ``>`` scan from
    -FLT_MAX, so ties go to the lowest class and NaN never wins. Over the
    foreground columns (the result is in [1, C)), or over all of them with
    ``with_bg`` (MNC's official test bridge, in [0, C)); -1 for a row
    where no score beats -FLT_MAX. Not differentiated.
    """
    if scores.dim() != 2 or scores.size(1) < 2:
        raise ValueError('scores must be (R, C) with C >= 2 (background '
                         f'and a class), got {tuple(scores.shape)}')
    first = 0 if with_bg else 1
    cand = scores.detach()[:, first:]
    cand = torch.where(cand > _NEG_FLT_MAX, cand,
                       cand.new_full((), -float('inf')))
    index = cand.argmax(dim=1)  # the first maximum
    best = cand.gather(1, index[:, None])[:, 0]
    return torch.where(best > -float('inf'), index + first, -1)


def regress_by_best_class(rois: Tensor,
                          bbox_pred: Tensor,
                          scores: Tensor,
                          bbox_coder,
                          img_shape: Sequence[int],
                          with_bg: bool = False) -> Tensor:
    """Regress each RoI with the deltas of its :func:`best_class`.

    A row without a best class (all-NaN scores) takes class 1 (0 with
    ``with_bg``). The choice is not differentiated; the boxes are
    differentiable w.r.t. ``rois`` and ``bbox_pred``.

    Args:
        rois (Tensor): (R, 4) [x1, y1, x2, y2] in input-image px.
        bbox_pred (Tensor): (R, 4C) deltas of every class, or (R, 4)
            class-agnostic deltas, normalised by the coder's stds.
        scores (Tensor): (R, C) scores or logits, background at column 0.
        bbox_coder: has ``decode(boxes, deltas, max_shape)``.
        img_shape (Sequence[int]): ``(H, W)``; boxes are clipped to
            ``[0, W - 1] x [0, H - 1]``.
        with_bg (bool): let the background column win.

    Returns:
        Tensor: (R, 4) boxes in input-image px.
    """
    num, cols = scores.shape
    if rois.shape != (num, 4) or bbox_pred.shape not in ((num, 4),
                                                         (num, 4 * cols)):
        raise ValueError(
            'rois (R, 4), bbox_pred (R, 4) or (R, 4C) and scores (R, C) '
            f'must agree, got {tuple(rois.shape)}, '
            f'{tuple(bbox_pred.shape)} and {tuple(scores.shape)}')
    labels = best_class(scores, with_bg).clamp(min=0 if with_bg else 1)
    deltas = select_class_deltas(bbox_pred, labels)
    return bbox_coder.decode(rois, deltas, max_shape=img_shape[:2])
