# Copyright (c) OpenMMLab. All rights reserved.
"""Position-sensitive RoI pooling of FCIS (``PSROIPooling``).

The exact recipe of the official MXNet kernel (fcis_spec.md §1.2-1.3): RoI
corners rounded half away from zero *before* scaling, +1 on the end corner,
extent at least 0.1 cell, integer bins from floor/ceil of the float limits
clamped to [0, H] x [0, W], plain average (0 for an empty bin), input
channel ``(d * k + gh) * k + gw`` with ``g = floor(p * k / P)``. The FCIS
paper describes the assembling as "pooling" without these details; the code
is followed. torchvision's ``ps_roi_pool`` is a different op (§1.5).

Differences from the MXNet op, all outside its normal use: the scale is cast
to the tensor dtype (MXNet passes a float32 scale, the same for 1/16);
``group_size`` must be positive (MXNet maps 0 to ``pooled_size``); invalid
RoIs raise instead of reading out of bounds; the gradient is summed in a
fixed order on CPU (the official atomics are order-free).
"""
from typing import Tuple

from torch import Tensor, nn
from torch.autograd import Function
from torch.autograd.function import once_differentiable

from .checks import check_positive_int, check_roi_inputs, check_spatial_scale
from .ext_loader import get_op

_OP = 'ps_roi_pool'


def _check_params(output_dim: int, pooled_size: int, group_size: int,
                  spatial_scale: float) -> None:
    for name, value in (('output_dim', output_dim),
                        ('pooled_size', pooled_size),
                        ('group_size', group_size)):
        check_positive_int(_OP, name, value)
    check_spatial_scale(_OP, spatial_scale)


def _check_tensors(input: Tensor, rois: Tensor, output_dim: int,
                   group_size: int) -> None:
    check_roi_inputs(_OP, input, rois)
    channels = output_dim * group_size * group_size
    if input.size(1) != channels:
        raise ValueError(
            f'{_OP}: input must have output_dim * group_size ** 2 = '
            f'{output_dim} * {group_size} ** 2 = {channels} channels, '
            f'got {input.size(1)}')


class PSRoIPoolFunction(Function):
    """Autograd function of :func:`ps_roi_pool`; no gradient to ``rois``."""

    @staticmethod
    def forward(ctx, input: Tensor, rois: Tensor, output_dim: int,
                pooled_size: int, group_size: int,
                spatial_scale: float) -> Tensor:
        _check_params(output_dim, pooled_size, group_size, spatial_scale)
        _check_tensors(input, rois, output_dim, group_size)
        ctx.params = (output_dim, pooled_size, group_size,
                      float(spatial_scale))
        ctx.input_shape = input.shape
        rois = rois.contiguous()
        ctx.save_for_backward(rois)
        output = input.new_empty(
            (rois.size(0), output_dim, pooled_size, pooled_size))
        if rois.size(0) > 0:
            get_op('ps_roi_pool_forward')(input.contiguous(), rois, output,
                                          *ctx.params)
        return output

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output: Tensor) -> tuple:
        rois, = ctx.saved_tensors
        grad_input = grad_output.new_zeros(ctx.input_shape)
        if rois.size(0) > 0:
            get_op('ps_roi_pool_backward')(grad_output.contiguous(), rois,
                                           grad_input, *ctx.params)
        return grad_input, None, None, None, None, None


def ps_roi_pool(input: Tensor, rois: Tensor, output_dim: int,
                pooled_size: int, group_size: int,
                spatial_scale: float) -> Tensor:
    """FCIS position-sensitive RoI pooling.

    Args:
        input (Tensor): (N, output_dim * group_size ** 2, H, W) score maps,
            channel ``(d * group_size + gh) * group_size + gw``.
        rois (Tensor): (R, 5) rows ``[batch_idx, x1, y1, x2, y2]`` in input
            image pixels (inclusive ends), same dtype and device as input.
        output_dim (int): D, output channels.
        pooled_size (int): P, output bins per side (21 in FCIS).
        group_size (int): k, position-sensitive maps per side (7 in FCIS).
        spatial_scale (float): feature cells per image pixel (1/16).

    Returns:
        Tensor: (R, D, P, P) bin averages; differentiable w.r.t. ``input``.
    """
    return PSRoIPoolFunction.apply(input, rois, output_dim, pooled_size,
                                   group_size, spatial_scale)


class PSRoIPool(nn.Module):
    """Module form of :func:`ps_roi_pool`.

    Accepts ``spatial_scale`` as a keyword and exposes ``output_size``
    (``(P, P)``), so the class can be the ``roi_layer.type`` of mmdet's
    ``SingleRoIExtractor`` (which calls ``cls(spatial_scale=1 / s, **cfg)``
    and allocates ``(R, out_channels, *output_size)``).
    """

    def __init__(self, output_dim: int, pooled_size: int, group_size: int,
                 spatial_scale: float):
        super().__init__()
        _check_params(output_dim, pooled_size, group_size, spatial_scale)
        self.output_dim = output_dim
        self.pooled_size = pooled_size
        self.group_size = group_size
        self.spatial_scale = float(spatial_scale)

    @property
    def output_size(self) -> Tuple[int, int]:
        return (self.pooled_size, self.pooled_size)

    def forward(self, input: Tensor, rois: Tensor) -> Tensor:
        """input: (N, D * k * k, H, W); rois: (R, 5). Returns (R, D, P, P)."""
        return ps_roi_pool(input, rois, self.output_dim, self.pooled_size,
                           self.group_size, self.spatial_scale)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(output_dim={self.output_dim}, '
                f'pooled_size={self.pooled_size}, '
                f'group_size={self.group_size}, '
                f'spatial_scale={self.spatial_scale})')
