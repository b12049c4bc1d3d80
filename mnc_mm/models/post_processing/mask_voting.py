# Copyright (c) OpenMMLab. All rights reserved.
"""Mask voting: per-class NMS, then each kept box's mask is the score-
weighted vote of the masks of all boxes overlapping it.

One implementation of the official GPU voting of both methods
(``lib/mask/mask_transform.py`` +
``mv_kernel.cu`` of msracver/FCIS, the same
files of daijifeng001/MNC). The two differ only in the switches collected in
:data:`VOTING_PRESETS`.
"""
from typing import Tuple

import torch
import torch.nn.functional as F
from mmcv.ops import batched_nms, bbox_overlaps
from mmdet.registry import TASK_UTILS
from torch import Tensor

from mnc_mm.ops.checks import (check_float_tensors, check_img_shape,
                               check_positive_int, check_shape)
from ..layers.separable_sampling import (CONVENTIONS, AxisWeights,
                                         PixelTable, axis_weights,
                                         grid_to_pixels, sample_separable,
                                         sample_separable_sum)

#: The switches of the two official kernels (the other options, NMS 0.3,
#: 100 per class and per image, merge IoU 0.5 and threshold 0.4, are shared).
#: FCIS: half-pixel rendering of rounded boxes, binarise every candidate
#: before the weighted sum, tight box at >= 0.4, global score floor 1e-3,
#: degenerate results dropped. MNC: top-left rendering of the float boxes
#: with the last-cell nearest rule, soft weighted average, tight box at
#: > 0.4, no score floor, nothing dropped.
VOTING_PRESETS = dict(
    fcis=dict(
        render='half_pixel',
        binarize_before_vote=True,
        strict_tight_box=False,
        score_floor=1e-3,
        drop_degenerate=True),
    mnc=dict(
        render='top_left',
        binarize_before_vote=False,
        strict_tight_box=True,
        score_floor=0.,
        drop_degenerate=False))


def _select_detections(boxes: Tensor, fg_scores: Tensor, nms_thr: float,
                       max_per_class: int, max_per_img: int,
                       score_floor: float) -> Tuple[Tensor, Tensor]:
    """Per-class greedy NMS over all boxes (mmcv's ``batched_nms`` with the
    +1 IoU, one NMS per class), at most ``max_per_class`` per class, then
    the global cut ``score >= max(max_per_img-th highest kept score,
    score_floor)``.

    Entries below ``score_floor`` are dropped before the NMS: they come
    after every other entry of their class, so they change neither its
    NMS nor its cap, and the cut removes them.

    Args:
        boxes (Tensor): (N, 4) inclusive-end boxes.
        fg_scores (Tensor): (N, C - 1) foreground class scores.

    Returns:
        tuple: box indices (K,) and 0-based labels (K,), ordered by label,
        then by descending score (the official per-class result lists).
    """
    inds, labels = (fg_scores >= score_floor).nonzero(as_tuple=True)
    empty = inds.new_zeros((0, ))
    if inds.numel() == 0:
        return empty, empty
    scores = fg_scores[inds, labels]
    # split_thr=0: one NMS per class, not the coordinate-offset trick,
    # whose large coordinates would round the IoUs; mmcv's CPU NMS takes
    # float32 only
    _, keep = batched_nms(
        boxes[inds].float(), scores.float(), labels,
        dict(type='nms', iou_threshold=nms_thr, offset=1, split_thr=0))
    # keep is in descending score order: rank within the class, then cap
    labels_kept = labels[keep]
    one_hot = F.one_hot(labels_kept, fg_scores.size(1))
    rank = (one_hot.cumsum(0) * one_hot).sum(1)
    keep = keep[rank <= max_per_class]
    kept_scores = scores[keep]
    thresh = kept_scores.topk(min(kept_scores.numel(),
                                  max_per_img)).values[-1]
    keep = keep[kept_scores >= max(float(thresh), score_floor)]
    # by label, then by descending score (a stable sort keeps the order)
    keep = keep[labels[keep].sort(stable=True).indices]
    return inds[keep], labels[keep]


def _first_last(flags: Tensor, fallback: int) -> Tuple[Tensor, Tensor]:
    """First and last True index along dim 1 of (K, L) ``flags``;
    ``fallback`` for rows with none."""
    length = flags.size(1)
    index = torch.arange(length, device=flags.device)
    first = torch.where(flags, index, length).amin(1)
    last = torch.where(flags, index, -1).amax(1)
    found = flags.any(1)
    return (torch.where(found, first, fallback),
            torch.where(found, last, fallback))


def _window(weights: AxisWeights, k: int, length: int) -> AxisWeights:
    """Weights of detection ``k`` over the first ``length`` columns."""
    if weights.last is None:
        return AxisWeights(weights.linear[k:k + 1, :, :length])
    return AxisWeights(weights.linear[k:k + 1, :, :length],
                       weights.nearest_minus_linear[k:k + 1, :, :length],
                       weights.last[k:k + 1], weights.end[k:k + 1, :length])


def _vote_masks(boxes: Tensor, masks: Tensor, is_candidate: Tensor,
                weights: Tensor, img_shape: Tuple[int, int], mask_thr: float,
                render: str, binarize_before_vote: bool,
                strict_tight_box: bool) -> Tuple[Tensor, Tensor]:
    """Vote, find the tight boxes and resample the voted masks.

    Args:
        boxes (Tensor): (N, 4) boxes in px.
        masks (Tensor): (N, M, M).
        is_candidate (Tensor): (K, N) bool, the voters of each detection.
        weights (Tensor): (K, N) vote weights, 0 off the candidates.

    Returns:
        tuple: tight boxes (K, 4) (int-valued) and voted masks (K, M, M).
    """
    height, width = img_shape
    mask_size = masks.size(-1)
    if render == 'half_pixel':
        # FCIS renders np.round(box) (halves to even, like torch.round).
        edges = boxes.round()
        pix_lo, pix_hi = edges[:, :2], edges[:, 2:]
    else:
        # MNC renders the float box: pixels with x1 <= x <= x2.
        edges = boxes
        pix_lo, pix_hi = boxes[:, :2].ceil(), boxes[:, 2:].floor()
    # Each vote is zero outside its candidates' boxes, so it is computed on
    # the union of their pixels inside the image only.
    voters = is_candidate.unsqueeze(-1)
    last_pixel = pix_lo.new_tensor([width - 1, height - 1])
    lo = torch.where(voters, pix_lo, float('inf')).amin(1)
    lo = torch.minimum(lo.clamp(min=0), last_pixel)
    hi = torch.where(voters, pix_hi, -float('inf')).amax(1)
    hi = torch.maximum(torch.minimum(hi, last_pixel), lo)
    windows = torch.cat([lo, hi], dim=1).long().tolist()
    # Render weights of the voting boxes, tabulated once.
    used = is_candidate.any(0).nonzero()[:, 0]
    slot = torch.full_like(is_candidate[0], -1, dtype=torch.long)
    slot[used] = torch.arange(used.numel(), device=used.device)
    table_x, table_y = (PixelTable(edges[used, a], edges[used, a + 2],
                                   pix_lo[used, a], pix_hi[used, a], size,
                                   mask_size, render)
                        for a, size in ((0, width), (1, height)))
    # Per detection: its voters' masks, weights and table rows.
    counts = is_candidate.sum(1).tolist()
    voter_inds = is_candidate.nonzero()[:, 1]
    voter_slots = slot[voter_inds]
    per_det = zip(masks[voter_inds].split(counts),
                  weights[is_candidate].split(counts),
                  table_y.row_bounds(voter_slots).split(counts),
                  table_x.row_bounds(voter_slots).split(counts), windows)

    num_dets = len(counts)
    votes = []
    device = boxes.device
    row_on = torch.zeros(num_dets, height, dtype=torch.bool, device=device)
    col_on = torch.zeros(num_dets, width, dtype=torch.bool, device=device)
    above = torch.gt if strict_tight_box else torch.ge
    for k, (voter_masks, voter_weights, rows_y, rows_x,
            (x0, y0, x1, y1)) in enumerate(per_det):
        wy = table_y.weights(rows_y, y0, y1)
        wx = table_x.weights(rows_x, x0, x1)
        if binarize_before_vote:
            rendered = sample_separable(voter_masks, wy, wx)
            rendered.ge_(mask_thr)  # 1. where >= mask_thr, else 0.
            vote = torch.tensordot(voter_weights, rendered, dims=1)
        else:
            vote = sample_separable_sum(voter_masks, wy, wx, voter_weights)
        row_on[k, y0:y1 + 1] = above(vote.amax(1), mask_thr)
        col_on[k, x0:x1 + 1] = above(vote.amax(0), mask_thr)
        votes.append(vote)

    # Tight box of the thresholded vote; none -> the image centre point.
    tx1, tx2 = _first_last(col_on, width // 2)
    ty1, ty2 = _first_last(row_on, height // 2)
    tight = torch.stack([tx1, ty1, tx2, ty2], dim=1).to(boxes.dtype)
    # The soft vote resampled to M x M inside the tight box, with weights
    # over each vote's window.
    starts = lo.long()
    lengths = (hi - lo + 1).long()
    max_lengths = lengths.amax(0).tolist()
    wx, wy = (axis_weights(
        grid_to_pixels(mask_size, tight[:, a], tight[:, a + 2], render),
        size,
        render,
        start=starts[:, a:a + 1],
        length=max_lengths[a]) for a, size in ((0, width), (1, height)))
    voted_masks = masks.new_empty((num_dets, mask_size, mask_size))
    for k, (vote, (x0, y0, x1, y1)) in enumerate(zip(votes, windows)):
        voted_masks[k] = sample_separable(vote[None],
                                          _window(wy, k, y1 - y0 + 1),
                                          _window(wx, k, x1 - x0 + 1))[0]
    return tight, voted_masks


def _check_options(render, max_per_class, max_per_img, mask_thr):
    if render not in CONVENTIONS:
        raise ValueError(f'mask_voting: render must be one of {CONVENTIONS}, '
                         f'got {render!r}')
    check_positive_int('mask_voting', 'max_per_class', max_per_class)
    check_positive_int('mask_voting', 'max_per_img', max_per_img)
    if not mask_thr > 0:
        # A threshold <= 0 would switch on pixels outside every box.
        raise ValueError(f'mask_voting: mask_thr must be > 0, got '
                         f'{mask_thr!r}')


def mask_voting(boxes: Tensor,
                masks: Tensor,
                scores: Tensor,
                img_shape: Tuple[int, int],
                *,
                nms_thr: float = 0.3,
                max_per_class: int = 100,
                max_per_img: int = 100,
                score_floor: float = 1e-3,
                merge_iou_thr: float = 0.5,
                mask_thr: float = 0.4,
                render: str = 'half_pixel',
                binarize_before_vote: bool = True,
                strict_tight_box: bool = False,
                drop_degenerate: bool = True
                ) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """Official mask voting; the defaults are FCIS's, see
    :data:`VOTING_PRESETS` for MNC's.

    1. For every foreground class c, greedy NMS over all N boxes by
       ``scores[:, c]`` (IoU with +1 areas ``> nms_thr`` suppressed, no score
       threshold), at most ``max_per_class`` kept. Of all kept (box, class)
       pairs keep those with ``score >= max(the max_per_img-th highest,
       score_floor)`` (ties can let more through).
    2. For each kept pair (k, c): the candidates are all N boxes with IoU
       ``>= merge_iou_thr`` to box k (any class, k included), weighted by
       ``scores[i, c]`` normalised over the candidates.
    3. Each candidate mask is rendered into its box in the image
       (``render``: ``'half_pixel'`` into the rounded box, ``'top_left'``
       into the float box, see
       :mod:`mnc_mm.models.layers.separable_sampling`), optionally binarised
       at ``>= mask_thr``, and the weighted sum is the vote.
    4. The tight box is the extent of the vote ``>= mask_thr`` (``>`` if
       ``strict_tight_box``), or the point (W // 2, H // 2) if empty; the
       soft vote is resampled into it at M x M with the same convention.
    5. With ``drop_degenerate``, results with x2 <= x1 or y2 <= y1 go.

    Args:
        boxes (Tensor): (N, 4) [x1, y1, x2, y2] in image px, inclusive ends.
        masks (Tensor): (N, M, M) foreground probabilities of each box's
            own (argmax) class.
        scores (Tensor): (N, C) class probabilities, background at column 0.
        img_shape (tuple[int, int]): (H, W) of the image of the boxes.

    Returns:
        tuple: ``det_boxes`` (K, 4) tight boxes (int-valued floats) in px,
        ``det_scores`` (K,) the kept pair's score ``scores[k, c]``,
        ``det_labels`` (K,) long, 0-based foreground label ``c - 1``, and
        ``det_masks`` (K, M, M) soft voted masks; ordered by label, then
        by descending score. Computed in the inputs' promoted dtype (at
        least float32) on their device.
    """
    op = 'mask_voting'
    height, width = check_img_shape(op, img_shape)
    dtype = check_float_tensors(op, boxes=boxes, masks=masks, scores=scores)
    check_shape(op, 'boxes', boxes, (None, 4), '(N, 4)')
    num_boxes = boxes.size(0)
    check_shape(op, 'masks', masks, (num_boxes, None, None),
                f'(N, M, M) with N = {num_boxes} (from boxes)')
    if masks.size(1) != masks.size(2) or masks.size(1) == 0:
        raise ValueError(f'{op}: masks must be (N, M, M) with M >= 1, got '
                         f'shape {tuple(masks.shape)}')
    check_shape(op, 'scores', scores, (num_boxes, None),
                f'(N, C) with N = {num_boxes} (from boxes)')
    if scores.size(1) < 2:
        raise ValueError(f'{op}: scores must have C >= 2 columns (background '
                         f'first), got shape {tuple(scores.shape)}')
    _check_options(render, max_per_class, max_per_img, mask_thr)
    boxes, masks, scores = (t.to(dtype) for t in (boxes, masks, scores))

    mask_size = masks.size(-1)
    empty = (boxes.new_zeros((0, 4)), scores.new_zeros((0, )),
             torch.zeros(0, dtype=torch.long, device=boxes.device),
             masks.new_zeros((0, mask_size, mask_size)))
    if num_boxes == 0:
        return empty
    det_inds, det_labels = _select_detections(boxes, scores[:, 1:], nms_thr,
                                              max_per_class, max_per_img,
                                              score_floor)
    if det_inds.numel() == 0:
        return empty
    det_scores = scores[det_inds, det_labels + 1]

    is_candidate = bbox_overlaps(boxes[det_inds], boxes,
                                 offset=1) >= merge_iou_thr  # (K, N)
    # Official: w = scores[cand, c] / sum(scores[cand, c]), the denominator
    # summing over the candidates only (not over all N boxes). An all-zero
    # candidate set (only possible without a score floor) gets zero weights
    # instead of the official 0 / 0.
    weights = torch.where(is_candidate, scores[:, det_labels + 1].t(), 0)
    weights = weights / weights.sum(1, keepdim=True).clamp(
        min=torch.finfo(dtype).tiny)
    det_boxes, det_masks = _vote_masks(boxes, masks, is_candidate, weights,
                                       (height, width), mask_thr, render,
                                       binarize_before_vote,
                                       strict_tight_box)
    if drop_degenerate:
        keep = (det_boxes[:, 2] > det_boxes[:, 0]) & (
            det_boxes[:, 3] > det_boxes[:, 1])
        return (det_boxes[keep], det_scores[keep], det_labels[keep],
                det_masks[keep])
    return det_boxes, det_scores, det_labels, det_masks


@TASK_UTILS.register_module()
class MaskVoting:
    """Config-friendly :func:`mask_voting`.

    ``dict(type='MaskVoting', preset='mnc')`` gives MNC's switches,
    ``preset='fcis'`` (default) FCIS's (:data:`VOTING_PRESETS`); any
    :func:`mask_voting` keyword given as well overrides the preset.

    Args:
        preset (str): ``'fcis'`` or ``'mnc'``.
        **options: keywords of :func:`mask_voting`.
    """

    def __init__(self, preset: str = 'fcis', **options) -> None:
        if preset not in VOTING_PRESETS:
            raise ValueError(f'MaskVoting: preset must be one of '
                             f'{tuple(VOTING_PRESETS)}, got {preset!r}')
        self.options = {**VOTING_PRESETS[preset], **options}
        # Fail at build time, not at the first image.
        mask_voting(
            torch.zeros(0, 4), torch.zeros(0, 1, 1), torch.zeros(0, 2),
            (1, 1), **self.options)

    def __call__(self, boxes: Tensor, masks: Tensor, scores: Tensor,
                 img_shape: Tuple[int, int]
                 ) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """See :func:`mask_voting`."""
        return mask_voting(boxes, masks, scores, img_shape, **self.options)

    def __repr__(self) -> str:
        options = ', '.join(f'{k}={v!r}' for k, v in self.options.items())
        return f'{type(self).__name__}({options})'
