# Copyright (c) OpenMMLab. All rights reserved.
"""Gradient shaping on the box-coordinate path of MNC (daijifeng001/MNC
models/VGG16/mnc_5stage/train.prototxt (propagate_down); daijifeng001/caffe-mnc
src/caffe/layers/roi_warping_layer.cu (ROIWarpingBackwardCoordinate)).

Both functions are the identity in the forward pass; they only change the
gradient that flows back through them.
"""
from typing import Optional

import torch
from torch import Tensor
from torch.autograd import Function


class _ClipGrad(Function):
    """Identity whose incoming gradient is clamped to ``[-bound, bound]``."""

    @staticmethod
    def forward(ctx, x: Tensor, bound: float) -> Tensor:
        ctx.bound = bound
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor):
        return grad.clamp(-ctx.bound, ctx.bound), None


def clip_grad(x: Tensor, bound: Optional[float]) -> Tensor:
    """Identity on ``x``; its gradient is clamped element-wise to
    ``[-bound, bound]`` (the official ``clip_base 512`` gives 1/512).

    Args:
        x (Tensor): any shape.
        bound (float, optional): positive bound; None leaves the gradient
            unchanged.

    Returns:
        Tensor: ``x`` (a view), differentiable with the clamped gradient.
    """
    if bound is None:
        return x
    if not bound > 0:
        raise ValueError(f'bound must be positive or None, got {bound!r}')
    return _ClipGrad.apply(x, float(bound))


def _round_half_away(x: Tensor) -> Tensor:
    return torch.sign(x) * torch.floor(x.abs() + 0.5)


class _OfficialWarpRatio(Function):
    """See :func:`official_warp_coord_grad`."""

    @staticmethod
    def forward(ctx, rois: Tensor, spatial_scale: float,
                quantize: bool) -> Tensor:
        ends = rois[:, 1:].detach() * spatial_scale
        if quantize:
            ends = _round_half_away(ends)
        length = ends[:, 2:] - ends[:, :2]  # (R, 2): x, y in feature px
        ratio = length.clamp(min=0) / (length + 1)
        ctx.save_for_backward(torch.where(length + 1 > 0, ratio,
                                          torch.zeros_like(ratio)))
        return rois.view_as(rois)

    @staticmethod
    def backward(ctx, grad: Tensor):
        ratio, = ctx.saved_tensors
        grad = grad.clone()
        g_lo, g_hi = grad[:, 1:3].clone(), grad[:, 3:5].clone()
        grad[:, 1:3] = g_lo + g_hi * (1 - ratio)
        grad[:, 3:5] = g_hi * ratio
        return grad, None, None


def official_warp_coord_grad(rois: Tensor, spatial_scale: float,
                             quantize: bool = True) -> Tensor:
    """Identity on ``rois`` whose box gradient becomes the official
    ROIWarping coordinate gradient's "+1 ratio" (daijifeng001/caffe-mnc
    src/caffe/layers/roi_warping_layer.cu (ROIWarpingBackwardCoordinate)).

    The exact gradient of a warp sample ``x = a1 + (j / P) * L`` weighs
    ``x2`` by ``r = j / P``; caffe-mnc uses ``r * L / (L + 1)``
    (``L = x2q - x1q`` in feature cells). Since the exact per-RoI gradients
    are ``g1 = sum(G (1 - r))`` and ``g2 = sum(G r)``, the official ones are
    ``g1 + (1 - k) g2`` and ``k g2`` with ``k = max(L, 0) / (L + 1)``; this
    function applies that map (per axis) to the gradient coming from
    :func:`mnc_mm.ops.roi_warp`. Only for parity experiments.

    Args:
        rois (Tensor): (R, 5) ``[batch_idx, x1, y1, x2, y2]`` in image px.
        spatial_scale (float): feature cells per image pixel (1/16).
        quantize (bool): the warp rounds the scaled corners.

    Returns:
        Tensor: ``rois`` (a view) with the modified gradient.
    """
    if rois.dim() != 2 or rois.size(1) != 5:
        raise ValueError(f'rois must be (R, 5), got {tuple(rois.shape)}')
    return _OfficialWarpRatio.apply(rois, float(spatial_scale),
                                    bool(quantize))
