# Copyright (c) OpenMMLab. All rights reserved.
"""Conversions between mmdet's box ends and py-faster-rcnn's, used at the
boundary of the FCIS and MNC heads."""
import torch
from torch import Tensor


def to_inclusive(boxes: Tensor) -> Tensor:
    """mmdet boxes (exclusive ends, ``x2 = x + w``) to py-faster-rcnn boxes
    (inclusive ends, ``x2 = x + max(w - 1, 0)``)."""
    return torch.cat([boxes[:, :2], torch.max(boxes[:, 2:] - 1, boxes[:, :2])],
                     dim=1)


def to_exclusive(boxes: Tensor) -> Tensor:
    """Inclusive-end boxes back to mmdet's exclusive ends."""
    return torch.cat([boxes[:, :2], boxes[:, 2:] + 1], dim=1)
