# Copyright (c) OpenMMLab. All rights reserved.
"""The last step of both methods: per-RoI masks and scores of one image
become its instances (msracver/FCIS fcis/core/tester.py,
fcis/operator_py/box_parser.py, daijifeng001/MNC
lib/caffeWrapper/TesterWrapper.py (_segmentation_forward))."""
from typing import Callable, List, Optional

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


def vote_and_paste_passes(boxes: List[List[Tensor]],
                          masks: List[Tensor],
                          scores: List[Tensor],
                          img_metas: List[dict],
                          mask_voting: Callable,
                          rescale: bool = True,
                          mask_thr: float = 0.4,
                          binarize_first: bool = False,
                          min_size: Optional[float] = None
                          ) -> List[InstanceData]:
    """The instances of every image from several prediction passes over
    its RoIs (FCIS: the RoIs and their regressed boxes; MNC: the stage
    pairs).

    Args:
        boxes (list[list[Tensor]]): per pass, per image (n_i, 4) RoIs in
            network-input px, inclusive ends.
        masks (list[Tensor]): per pass (sum n_i, m, m) soft masks.
        scores (list[Tensor]): per pass (sum n_i, C) class probabilities.
        img_metas (list[dict]): per image.
        min_size (float, optional): drop the RoIs whose width or height
            (``x2 - x1 + 1``) is below it before voting.
        Others: as :func:`vote_and_paste`.

    Returns:
        list[InstanceData]: per image, see :func:`vote_and_paste`.
    """
    sizes = [b.size(0) for b in boxes[0]]
    masks = [m.split(sizes) for m in masks]
    scores = [s.split(sizes) for s in scores]
    results = []
    for i, meta in enumerate(img_metas):
        img_boxes = torch.cat([b[i] for b in boxes])
        img_masks = torch.cat([m[i] for m in masks])
        img_scores = torch.cat([s[i] for s in scores])
        if min_size is not None:
            keep = ((img_boxes[:, 2:] - img_boxes[:, :2] + 1) >=
                    min_size).all(dim=1)
            img_boxes, img_masks, img_scores = (img_boxes[keep],
                                                img_masks[keep],
                                                img_scores[keep])
        results.append(
            vote_and_paste(img_boxes, img_masks, img_scores, meta,
                           mask_voting, rescale, mask_thr, binarize_first))
    return results
