# Copyright (c) OpenMMLab. All rights reserved.
"""The last step of both methods: per-RoI masks and scores of one image
become its instances (fcis_spec §6, mnc_spec §9)."""
from typing import Callable

import torch
from mmengine.structures import InstanceData
from torch import Tensor

from ..task_modules import clip_boxes, to_exclusive
from .mask_paste import paste_masks


def vote_and_paste(boxes: Tensor,
                   masks: Tensor,
                   scores: Tensor,
                   img_meta: dict,
                   mask_voting: Callable,
                   rescale: bool = True,
                   mask_thr: float = 0.4,
                   binarize_first: bool = False) -> InstanceData:
    """Rescale, clip, vote, paste: one image's instances.

    Args:
        boxes (Tensor): (n, 4) RoIs in network-input px, inclusive ends.
        masks (Tensor): (n, m, m) soft foreground masks, one per RoI.
        scores (Tensor): (n, C) class probabilities, background at 0.
        img_meta (dict): ``img_shape``, ``ori_shape``, ``scale_factor``.
        mask_voting (callable): a :class:`MaskVoting`.
        rescale (bool): give the instances in the original image (else in
            the network input).
        mask_thr (float): pasting threshold (0.4).
        binarize_first (bool): binarise the m x m masks before the resize
            too (MNC).

    Returns:
        InstanceData: ``bboxes`` (K, 4) with mmdet's exclusive ends,
        ``scores`` (K,), ``labels`` (K,) 0-based, ``masks`` (K, H, W) bool.
    """
    # Voting and pasting compare against thresholds in float32 (at least):
    # outside autocast, which would run their matmuls in float16/bfloat16.
    with torch.autocast(boxes.device.type, enabled=False):
        return _vote_and_paste(boxes, masks, scores, img_meta, mask_voting,
                               rescale, mask_thr, binarize_first)


def _vote_and_paste(boxes, masks, scores, img_meta, mask_voting, rescale,
                    mask_thr, binarize_first) -> InstanceData:
    if rescale:
        scale = boxes.new_tensor(img_meta['scale_factor']).repeat(2)
        boxes = boxes / scale
        shape = img_meta['ori_shape'][:2]
    else:
        shape = img_meta['img_shape'][:2]
    boxes, scores, labels, masks = mask_voting(
        clip_boxes(boxes, shape), masks, scores, shape)
    return InstanceData(
        bboxes=to_exclusive(boxes),
        scores=scores,
        labels=labels,
        masks=paste_masks(masks, boxes, shape, mask_thr=mask_thr,
                          binarize_first=binarize_first))
