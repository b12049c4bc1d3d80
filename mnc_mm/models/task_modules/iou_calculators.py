# Copyright (c) OpenMMLab. All rights reserved.
"""Box IoU with py-faster-rcnn's +1 areas (both official codes)."""
import torch
from mmdet.registry import TASK_UTILS
from torch import Tensor


def bbox_overlaps_plus_one(bboxes1: Tensor, bboxes2: Tensor,
                           is_aligned: bool = False) -> Tensor:
    """IoU of inclusive-end boxes: ``area = (x2 - x1 + 1) * (y2 - y1 + 1)``.

    Args:
        bboxes1 (Tensor): (N, 4) boxes in px.
        bboxes2 (Tensor): (M, 4) boxes in px, or (N, 4) if ``is_aligned``.

    Returns:
        Tensor: (N, M) IoUs, or (N,) if ``is_aligned``.
    """
    if bboxes1.size(-1) != 4 or bboxes2.size(-1) != 4:
        raise ValueError('boxes must be (N, 4), got '
                         f'{tuple(bboxes1.shape)} and {tuple(bboxes2.shape)}')
    if not is_aligned:
        bboxes1, bboxes2 = bboxes1[:, None, :], bboxes2[None, :, :]
    area1 = ((bboxes1[..., 2] - bboxes1[..., 0] + 1) *
             (bboxes1[..., 3] - bboxes1[..., 1] + 1))
    area2 = ((bboxes2[..., 2] - bboxes2[..., 0] + 1) *
             (bboxes2[..., 3] - bboxes2[..., 1] + 1))
    lt = torch.max(bboxes1[..., :2], bboxes2[..., :2])
    rb = torch.min(bboxes1[..., 2:], bboxes2[..., 2:])
    wh = (rb - lt + 1).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    return inter / (area1 + area2 - inter)


@TASK_UTILS.register_module()
class BboxOverlaps2DPlusOne:
    """mmdet IoU calculator with +1 areas, for ``MaxIoUAssigner``'s
    ``iou_calculator``."""

    def __call__(self, bboxes1, bboxes2, mode: str = 'iou',
                 is_aligned: bool = False) -> Tensor:
        if mode != 'iou':
            raise ValueError(f"only mode='iou' is supported, got {mode!r}")
        bboxes1 = getattr(bboxes1, 'tensor', bboxes1)[..., :4]
        bboxes2 = getattr(bboxes2, 'tensor', bboxes2)[..., :4]
        return bbox_overlaps_plus_one(bboxes1, bboxes2, is_aligned)

    def __repr__(self) -> str:
        return self.__class__.__name__ + '()'
