# Copyright (c) OpenMMLab. All rights reserved.
"""FCIS's mask loss (msracver/FCIS fcis/symbols/resnet_v1_101_fcis.py;
apache/mxnet src/operator/softmax_output-inl.h)."""
from typing import Optional

import torch
import torch.nn.functional as F
from mmdet.models.losses.utils import weight_reduce_loss
from mmdet.registry import MODELS
from torch import Tensor, nn


def fcis_mask_loss(seg_logits: Tensor, mask_targets: Tensor) -> Tensor:
    """Per-RoI mask loss (R,).

    The 2-way (outside/inside) cross-entropy of every pixel, summed over
    the valid pixels and divided by all ``m * m`` pixels (MXNet's 'null'
    normalisation: ignored pixels count as 0, so background RoIs, whose
    targets are all -1, give 0).

    Args:
        seg_logits (Tensor): (R, 2, m, m) outside/inside logits of each
            RoI's label (Label_Pick).
        mask_targets (Tensor): (R, m, m) in {0, 1}, -1 = ignored pixel.
    """
    if seg_logits.dim() != 4 or seg_logits.size(1) != 2 or \
            mask_targets.shape != (seg_logits.size(0), *seg_logits.shape[2:]):
        raise ValueError('seg_logits must be (R, 2, m, m) and mask_targets '
                         f'(R, m, m), got {tuple(seg_logits.shape)} and '
                         f'{tuple(mask_targets.shape)}')
    num_rois = seg_logits.size(0)
    if num_rois == 0:
        return seg_logits.new_zeros((0, ))
    valid = mask_targets >= 0
    pixel_ce = F.cross_entropy(seg_logits, mask_targets.clamp(min=0).long(),
                               reduction='none')
    pixel_ce = torch.where(valid, pixel_ce, pixel_ce.new_zeros(()))
    return pixel_ce.reshape(num_rois, -1).sum(1) / valid[0].numel()


@MODELS.register_module()
class FCISMaskLoss(nn.Module):
    """:func:`fcis_mask_loss` as an mmdet loss module.

    Args:
        reduction (str): ``'none'`` (per RoI), ``'mean'`` or ``'sum'``.
        loss_weight (float): weight of the loss (FCIS: 10).
    """

    def __init__(self, reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        self.reduction = reduction
        self.loss_weight = loss_weight

    def forward(self,
                seg_logits: Tensor,
                mask_targets: Tensor,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None) -> Tensor:
        """Weighted, reduced :func:`fcis_mask_loss`; ``weight`` is (R,)."""
        reduction = reduction_override or self.reduction
        loss = fcis_mask_loss(seg_logits, mask_targets)
        return self.loss_weight * weight_reduce_loss(loss, weight, reduction,
                                                     avg_factor)
