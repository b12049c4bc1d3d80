# Copyright (c) OpenMMLab. All rights reserved.
"""MNC's RoI sampler (daijifeng001/MNC lib/pylayer/proposal_target_layer.py):
fg quota, split background, no fill-up."""
from typing import Sequence, Tuple

import torch
from mmdet.models.task_modules.assigners import AssignResult
from mmdet.models.task_modules.samplers import BaseSampler
from mmdet.registry import TASK_UTILS
from torch import Tensor


def _random_subset(inds: Tensor, num: int) -> Tensor:
    """At most ``num`` of ``inds``, drawn without replacement."""
    if inds.numel() <= num:
        return inds
    return inds[torch.randperm(inds.numel(), device=inds.device)[:num]]


@TASK_UTILS.register_module()
class MNCRoISampler(BaseSampler):
    """Sample RoIs as MNC's ProposalTargetLayer does.

    Foreground (assigned to a gt, i.e. IoU >= the assigner's positive
    threshold, 0.5): at most ``int(num * pos_fraction)`` (19 of 64).
    Background budget ``B = num - n_fg``, split over IoU ranges of the
    unassigned candidates: ``round(frac * B)`` from each ``[lo, hi)`` of
    ``neg_iou_ranges`` (85 % from [0.1, 0.5), 15 % from [0, 0.1)). A range
    that is short is **not** filled up from the other, so fewer than
    ``num`` RoIs may come out. The official ranges are closed on both ends
    (a RoI with IoU exactly 0.1 or 0.5 can be drawn twice); half-open
    ranges keep the draws disjoint. The gt boxes are prepended as
    candidates when ``add_gt_as_proposals``.

    Args:
        num (int): RoIs per image (64).
        pos_fraction (float): fg fraction (0.3).
        neg_iou_ranges (Sequence[tuple[float, float]]): ``[lo, hi)`` IoU
            ranges of the background draws.
        neg_fractions (Sequence[float]): share of the background budget of
            each range.
        add_gt_as_proposals (bool): use the gt boxes as candidates.
    """

    def __init__(self,
                 num: int = 64,
                 pos_fraction: float = 0.3,
                 neg_iou_ranges: Sequence[Tuple[float, float]] = (
                     (0.1, 0.5), (0.0, 0.1)),
                 neg_fractions: Sequence[float] = (0.85, 0.15),
                 add_gt_as_proposals: bool = True,
                 **kwargs) -> None:
        super().__init__(num, pos_fraction, neg_pos_ub=-1,
                         add_gt_as_proposals=add_gt_as_proposals)
        if len(neg_iou_ranges) != len(neg_fractions):
            raise ValueError('neg_iou_ranges and neg_fractions must have the '
                             f'same length, got {len(neg_iou_ranges)} and '
                             f'{len(neg_fractions)}')
        for lo, hi in neg_iou_ranges:
            if not 0 <= lo < hi:
                raise ValueError('each neg_iou_range must be [lo, hi) with '
                                 f'0 <= lo < hi, got {(lo, hi)}')
        self.neg_iou_ranges = tuple(tuple(r) for r in neg_iou_ranges)
        self.neg_fractions = tuple(neg_fractions)

    def _sample_pos(self, assign_result: AssignResult, num_expected: int,
                    **kwargs) -> Tensor:
        """Indices of at most ``num_expected`` random fg candidates."""
        inds = torch.nonzero(assign_result.gt_inds > 0).flatten()
        return _random_subset(inds, num_expected)

    def _sample_neg(self, assign_result: AssignResult, num_expected: int,
                    **kwargs) -> Tensor:
        """Indices of the background draws of every IoU range."""
        neg = assign_result.gt_inds == 0
        ious = assign_result.max_overlaps
        picked = []
        for (lo, hi), frac in zip(self.neg_iou_ranges, self.neg_fractions):
            inds = torch.nonzero(neg & (ious >= lo) & (ious < hi)).flatten()
            picked.append(_random_subset(inds, round(frac * num_expected)))
        return torch.cat(picked)
