# Copyright (c) OpenMMLab. All rights reserved.
"""py-faster-rcnn's anchors (``generate_anchors``), used by both official
codes."""
from typing import Optional, Tuple, Union

import torch
from mmdet.models.task_modules.prior_generators import AnchorGenerator
from mmdet.registry import TASK_UTILS
from torch import Tensor


@TASK_UTILS.register_module()
class PyFasterRCNNAnchorGenerator(AnchorGenerator):
    """Anchors exactly as py-faster-rcnn makes them (msracver/FCIS
    lib/rpn/generate_anchor.py).

    From the base box ``(0, 0, base_size - 1, base_size - 1)``: for each
    ratio r (= h / w) ``ws = round(sqrt(base_size**2 / r))`` and
    ``hs = round(ws * r)`` (half to even), then each scale multiplies them
    around the centre ``(base_size - 1) / 2`` and the corners are
    ``ctr -+ 0.5 * (size - 1)``. Order: ratio-major, scale-minor; shifts
    ``(x * stride, y * stride)`` in (h, w, a) order. mmdet's
    ``LegacyAnchorGenerator`` does not round at the ratio step and gives
    different corners (e.g. x1 = -83 instead of -84 for ratio 0.5, scale
    8).

    Args:
        strides (list[int]): Feature strides, e.g. ``[16]``.
        ratios (list[float]): Height / width ratios, e.g. ``[0.5, 1., 2.]``.
        scales (list[float]): Scales of the base box, e.g. ``[8, 16, 32]``.
        base_size (int): Side of the base box in pixels (16).
    """

    def __init__(self, strides, ratios, scales,
                 base_size: Optional[int] = 16) -> None:
        super().__init__(strides=strides, ratios=ratios, scales=scales,
                         base_sizes=[base_size] * len(strides),
                         scale_major=True)

    def gen_single_level_base_anchors(
            self,
            base_size: Union[int, float],
            scales: Tensor,
            ratios: Tensor,
            center: Optional[Tuple[float]] = None) -> Tensor:
        """Base anchors (len(ratios) * len(scales), 4) of one level."""
        ctr = 0.5 * (base_size - 1)
        ratios = ratios.double()
        ws = torch.round(torch.sqrt(base_size * base_size / ratios))
        hs = torch.round(ws * ratios)
        ws = (ws[:, None] * scales.double()[None, :]).reshape(-1)
        hs = (hs[:, None] * scales.double()[None, :]).reshape(-1)
        anchors = torch.stack([ctr - 0.5 * (ws - 1), ctr - 0.5 * (hs - 1),
                               ctr + 0.5 * (ws - 1), ctr + 0.5 * (hs - 1)],
                              dim=-1)
        return anchors.float()
