# Copyright (c) OpenMMLab. All rights reserved.
"""FCIS's online hard example mining (msracver/FCIS fcis/operator_py/
box_annotator_ohem.py): after all RoIs went forward, keep the hardest."""
import torch
from torch import Tensor


def ohem_select(losses: Tensor, image_of_roi: Tensor, num_imgs: int,
                num_per_img: int) -> Tensor:
    """The RoIs OHEM keeps: per image the ``num_per_img`` with the largest
    loss (all of them if it has fewer).

    Unlike mmdet's ``OHEMSampler``, which runs the head again inside the
    sampler, this ranks the losses the head computed for every RoI anyway
    (FCIS ranks by the sum of the weighted per-RoI losses).

    Args:
        losses (Tensor): (R,) loss of each RoI (not differentiated).
        image_of_roi (Tensor): (R,) long image index of each RoI.
        num_imgs (int): images in the batch.
        num_per_img (int): RoIs kept per image (FCIS: 128).

    Returns:
        Tensor: (R,) bool.
    """
    if losses.dim() != 1 or image_of_roi.shape != losses.shape:
        raise ValueError('losses and image_of_roi must both be (R,), got '
                         f'{tuple(losses.shape)} and '
                         f'{tuple(image_of_roi.shape)}')
    rank = losses.detach()
    keep = torch.zeros_like(rank, dtype=torch.bool)
    for i in range(num_imgs):
        idx = (image_of_roi == i).nonzero(as_tuple=True)[0]
        top = rank[idx].topk(min(num_per_img, idx.numel()))[1]
        keep[idx[top]] = True
    return keep
