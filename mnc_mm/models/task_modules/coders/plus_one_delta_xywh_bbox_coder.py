# Copyright (c) OpenMMLab. All rights reserved.
"""The py-faster-rcnn box coder used by both official codes (+1 widths)."""
from typing import Optional, Sequence

import torch
from mmdet.models.task_modules.coders import LegacyDeltaXYWHBBoxCoder
from mmdet.registry import TASK_UTILS
from torch import Tensor


@TASK_UTILS.register_module()
class PlusOneDeltaXYWHBBoxCoder(LegacyDeltaXYWHBBoxCoder):
    """Delta (dx, dy, dw, dh) coder with py-faster-rcnn's conventions.

    Boxes are ``(x1, y1, x2, y2)`` with inclusive pixel ends (width
    ``x2 - x1 + 1``). The encode is mmdet's ``LegacyDeltaXYWHBBoxCoder``'s;
    the decode is overridden because py-faster-rcnn's ``bbox_transform_inv``
    puts the ends at ``cx +- 0.5 * (w - 1)``, clamps neither dw/dh nor
    (without ``max_shape``) the boxes, and stays differentiable in both
    inputs (msracver/FCIS lib/bbox/bbox_transform.py). Deltas are
    normalised as ``(t - means) / stds``.

    Args:
        target_means (Sequence[float]): Means of the 4 deltas.
        target_stds (Sequence[float]): Stds of the 4 deltas; FCIS uses
            (0.2, 0.2, 0.5, 0.5) for its RoI head, 1 for the RPN.
    """

    def __init__(self,
                 target_means: Sequence[float] = (0., 0., 0., 0.),
                 target_stds: Sequence[float] = (1., 1., 1., 1.),
                 **kwargs) -> None:
        if len(target_means) != 4 or len(target_stds) != 4:
            raise ValueError('target_means and target_stds need 4 values '
                             f'each, got {len(target_means)} and '
                             f'{len(target_stds)}')
        if any(s <= 0 for s in target_stds):
            raise ValueError(f'target_stds must be > 0, got {target_stds}')
        super().__init__(
            target_means=tuple(float(m) for m in target_means),
            target_stds=tuple(float(s) for s in target_stds),
            **kwargs)

    def decode(self,
               bboxes: Tensor,
               pred_bboxes: Tensor,
               max_shape: Optional[Sequence[int]] = None,
               **kwargs) -> Tensor:
        """Apply normalised deltas (..., 4) to ``bboxes`` (..., 4).

        Args:
            max_shape: ``(H, W)`` of the image: boxes are then clipped to
                ``[0, W - 1] x [0, H - 1]``.

        Returns:
            Tensor: boxes (..., 4); differentiable w.r.t. both inputs.
        """
        bboxes = getattr(bboxes, 'tensor', bboxes)
        if pred_bboxes.size(-1) != 4 or bboxes.size(-1) != 4:
            raise ValueError('bboxes and pred_bboxes must end in 4 values, '
                             f'got {tuple(bboxes.shape)} and '
                             f'{tuple(pred_bboxes.shape)}')
        deltas = (pred_bboxes * pred_bboxes.new_tensor(self.stds) +
                  pred_bboxes.new_tensor(self.means))
        w = bboxes[..., 2] - bboxes[..., 0] + 1.0
        h = bboxes[..., 3] - bboxes[..., 1] + 1.0
        cx = bboxes[..., 0] + 0.5 * (w - 1)
        cy = bboxes[..., 1] + 0.5 * (h - 1)
        pcx = deltas[..., 0] * w + cx
        pcy = deltas[..., 1] * h + cy
        pw = torch.exp(deltas[..., 2]) * w
        ph = torch.exp(deltas[..., 3]) * h
        boxes = torch.stack([pcx - 0.5 * (pw - 1), pcy - 0.5 * (ph - 1),
                             pcx + 0.5 * (pw - 1), pcy + 0.5 * (ph - 1)],
                            dim=-1)
        if max_shape is not None:
            boxes = clip_boxes(boxes, max_shape[:2])
        return boxes


def clip_boxes(boxes: Tensor, img_shape: Sequence[int]) -> Tensor:
    """Clip boxes (..., 4) to ``[0, W - 1] x [0, H - 1]`` for
    ``img_shape = (H, W)`` (py-faster-rcnn ``clip_boxes``)."""
    h, w = float(img_shape[0]), float(img_shape[1])
    x = boxes[..., 0::2].clamp(0, w - 1)
    y = boxes[..., 1::2].clamp(0, h - 1)
    return torch.stack([x[..., 0], y[..., 0], x[..., 1], y[..., 1]], dim=-1)


def select_class_deltas(bbox_pred: Tensor, labels: Tensor) -> Tensor:
    """The 4 deltas of each row's class.

    Args:
        bbox_pred (Tensor): (R, 4K) deltas of K classes (background at 0),
            or (R, 4) class-agnostic deltas, returned as they are.
        labels (Tensor): (R,) long class of each row.

    Returns:
        Tensor: (R, 4), differentiable w.r.t. ``bbox_pred``.
    """
    num, cols = bbox_pred.shape
    if cols == 4:
        return bbox_pred
    if cols % 4 or labels.shape != (num, ):
        raise ValueError(f'bbox_pred must be (R, 4K) and labels (R,), got '
                         f'{tuple(bbox_pred.shape)} and '
                         f'{tuple(labels.shape)}')
    rows = torch.arange(num, device=bbox_pred.device)
    return bbox_pred.view(num, cols // 4, 4)[rows, labels]
