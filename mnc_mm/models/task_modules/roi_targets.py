# Copyright (c) OpenMMLab. All rights reserved.
"""Targets of sampled RoIs, shared by FCIS and MNC (msracver/FCIS
fcis/core/rcnn.py ``sample_rois``; daijifeng001/MNC
lib/pylayer/proposal_target_layer.py)."""
from typing import Dict

from mmdet.models.task_modules.samplers import SamplingResult
from torch import Tensor

from .mask_target import crop_mask_targets


def sampled_roi_targets(sampling_result: SamplingResult, gt_bboxes: Tensor,
                        gt_masks: Tensor, bbox_coder, mask_size: int,
                        mask_thr: float) -> Dict[str, Tensor]:
    """Labels of all sampled RoIs of one image, box and mask targets of
    its foreground RoIs (which the samplers put first).

    Args:
        sampling_result (SamplingResult): RoIs (``priors``) with inclusive
            ends, assigned to ``gt_bboxes``.
        gt_bboxes (Tensor): (G, 4) gt boxes, inclusive ends.
        gt_masks (Tensor): (G, H, W) gt masks at the input resolution.
        bbox_coder: encodes RoIs onto their gt boxes.
        mask_size (int): side m of the mask targets.
        mask_thr (float): binarisation threshold of the mask targets.

    Returns:
        dict: ``labels`` (R,) long, 0 = background, class + 1 otherwise;
        ``bbox_targets`` (P, 4) and ``mask_targets`` (P, m, m) of the P
        foreground RoIs, in their order.
    """
    pos_boxes = sampling_result.pos_priors.detach()
    pos_labels = sampling_result.pos_gt_labels + 1
    labels = pos_labels.new_zeros(sampling_result.priors.size(0))
    labels[:pos_labels.numel()] = pos_labels
    return dict(
        labels=labels,
        bbox_targets=bbox_coder.encode(pos_boxes,
                                       sampling_result.pos_gt_bboxes),
        mask_targets=crop_mask_targets(
            pos_boxes, gt_masks, gt_bboxes,
            sampling_result.pos_assigned_gt_inds, mask_size, mask_thr))
