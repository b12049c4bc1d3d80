# Copyright (c) OpenMMLab. All rights reserved.
"""mmcv's NMS as the torch op ``mnc_mm::masked_nms``, so that
``torch.compile`` and ``torch.export`` trace the RPN's proposal selection
through it instead of breaking the graph at mmcv's pybind call.

The op keeps only the boxes a boolean mask marks valid, so a caller can
filter boxes by a mask of fixed size instead of indexing them with a
``nonzero`` (a data-dependent size) first. Its output size (the number of
kept boxes) depends on the data: the fake kernel returns an unbacked size.
"""
import torch
from mmcv.ops import nms
from torch import Tensor


@torch.library.custom_op('mnc_mm::masked_nms', mutates_args=())
def masked_nms(boxes: Tensor, scores: Tensor, valid: Tensor,
               iou_threshold: float, offset: int) -> Tensor:
    """NMS (mmcv's ``nms``) of the boxes marked ``valid``.

    Args:
        boxes (Tensor): (n, 4) ``[x1, y1, x2, y2]``.
        scores (Tensor): (n, ).
        valid (Tensor): (n, ) bool, the boxes taking part.
        iou_threshold (float): a box is dropped if its IoU with a kept box
            of higher score exceeds this.
        offset (int): 0 or 1, box width ``x2 - x1 + offset`` (1: the
            py-faster-rcnn convention).

    Returns:
        Tensor: (k, ) int64 indices into ``boxes`` of the kept valid boxes,
        by descending score (mmcv's order).
    """
    if valid.dtype != torch.bool or valid.shape != scores.shape:
        raise ValueError(
            f'masked_nms: valid must be a bool tensor of the shape of scores '
            f'{tuple(scores.shape)}, got {valid.dtype} {tuple(valid.shape)}')
    inds = valid.nonzero(as_tuple=False).squeeze(1)
    _, keep = nms(boxes[inds], scores[inds], iou_threshold, offset=offset)
    return inds[keep]


@masked_nms.register_fake
def _(boxes, scores, valid, iou_threshold, offset):
    num = torch.library.get_ctx().new_dynamic_size()
    return boxes.new_empty((num, ), dtype=torch.int64)
