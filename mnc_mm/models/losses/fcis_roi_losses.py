# Copyright (c) OpenMMLab. All rights reserved.
"""Per-RoI FCIS losses, shared by OHEM ranking and the final losses
(fcis_spec §5.4-5.5)."""
from typing import Dict

import torch
import torch.nn.functional as F
from torch import Tensor


def fcis_per_roi_losses(cls_score: Tensor, seg_logits: Tensor,
                        bbox_pred: Tensor, labels: Tensor,
                        mask_targets: Tensor, bbox_targets: Tensor,
                        bbox_weights: Tensor,
                        bbox_beta: float = 1.0) -> Dict[str, Tensor]:
    """Unweighted loss of every RoI.

    Args:
        cls_score (Tensor): (R, C) class logits, background at column 0.
        seg_logits (Tensor): (R, 2, m, m) outside/inside logits of the
            RoI's label (Label_Pick).
        bbox_pred (Tensor): (R, 4) normalised deltas of the foreground slot.
        labels (Tensor): (R,) long, 0 = background.
        mask_targets (Tensor): (R, m, m) in {0, 1}, -1 = ignored pixel.
        bbox_targets (Tensor): (R, 4) normalised deltas.
        bbox_weights (Tensor): (R, 4), 1 on foreground RoIs.
        bbox_beta (float): smooth-L1 beta (1 / sigma**2; FCIS: 1).

    Returns:
        dict: ``cls`` (R,) cross-entropy; ``mask`` (R,) the 2-way
        cross-entropy summed over the valid pixels and divided by all
        ``m * m`` pixels (MXNet's 'null' normalisation: ignored pixels count
        as 0, so background RoIs give 0); ``bbox`` (R,) the sum of the
        weighted smooth-L1 over the 4 deltas.
    """
    num_rois = cls_score.size(0)
    cls = F.cross_entropy(cls_score, labels, reduction='none')
    valid = mask_targets >= 0
    pixel_ce = F.cross_entropy(seg_logits, mask_targets.clamp(min=0).long(),
                               reduction='none')
    mask = torch.where(valid, pixel_ce, pixel_ce.new_zeros(()))
    mask = mask.reshape(num_rois, -1).sum(1) / valid[0].numel() \
        if num_rois else pixel_ce.new_zeros((0, ))
    bbox = (bbox_weights * F.smooth_l1_loss(
        bbox_pred, bbox_targets, beta=bbox_beta, reduction='none')).sum(1)
    return dict(cls=cls, mask=mask, bbox=bbox)
