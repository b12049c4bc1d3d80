# Copyright (c) OpenMMLab. All rights reserved.
"""Box IoU with py-faster-rcnn's +1 areas (both official codes)."""
from mmcv.ops import bbox_overlaps
from mmdet.registry import TASK_UTILS
from torch import Tensor


@TASK_UTILS.register_module()
class BboxOverlaps2DPlusOne:
    """mmdet IoU calculator with +1 areas (``area = (x2 - x1 + 1) * (y2 -
    y1 + 1)``, mmcv's ``bbox_overlaps(..., offset=1)``), for
    ``MaxIoUAssigner``'s ``iou_calculator``."""

    def __call__(self, bboxes1, bboxes2, mode: str = 'iou',
                 is_aligned: bool = False) -> Tensor:
        if mode != 'iou':
            raise ValueError(f"only mode='iou' is supported, got {mode!r}")
        bboxes1 = getattr(bboxes1, 'tensor', bboxes1)[..., :4]
        bboxes2 = getattr(bboxes2, 'tensor', bboxes2)[..., :4]
        return bbox_overlaps(bboxes1, bboxes2, aligned=is_aligned, offset=1)

    def __repr__(self) -> str:
        return self.__class__.__name__ + '()'
