# Copyright (c) OpenMMLab. All rights reserved.
"""Position-sensitive RoI pooling of FCIS (``PSROIPooling``), and its fused
form with Group_Max and the bin average (the FCIS class score).

The exact recipe of the official MXNet kernel (fcis_spec.md §1.2-1.3): RoI
corners rounded half away from zero *before* scaling, +1 on the end corner,
extent at least 0.1 cell, integer bins from floor/ceil of the float limits
clamped to [0, H] x [0, W], plain average (0 for an empty bin), input
channel ``(d * k + gh) * k + gw`` with ``g = floor(p * k / P)``. The FCIS
paper describes the assembling as "pooling" without these details; the code
is followed. torchvision's ``ps_roi_pool`` is a different op (§1.5).

The maps may come in the official layout (N, D * k * k, H, W) or as a
(N, D, k, k, H, W) view with any strides, e.g. channels-last with the D
values of one cell and position contiguous (what ``FCISRoIHead`` makes, so
that :func:`ps_roi_max_avg_pool` adds whole vectors per cell).

Differences from the MXNet op, all outside its normal use: the scale is cast
to the tensor dtype (MXNet passes a float32 scale, the same for 1/16);
``group_size`` must be positive (MXNet maps 0 to ``pooled_size``); invalid
RoIs raise instead of reading out of bounds; the gradient is summed in a
fixed order on CPU (the official atomics are order-free).

Determinism: the CPU backward is deterministic (each task owns its
channels and sums in a fixed order). The CUDA backward adds with atomics in
an order the hardware picks, so it calls torch's ``alertNotDeterministic``
(an error under ``torch.use_deterministic_algorithms(True)``), as
torchvision's ``roi_align`` does.
"""
from typing import Optional, Tuple

import torch
from torch import Tensor, nn
from torch.autograd import Function
from torch.autograd.function import once_differentiable

from .checks import check_positive_int, check_roi_inputs, check_spatial_scale
from .ext_loader import get_op

_OP = 'ps_roi_pool'
_MAX_AVG_OP = 'ps_roi_max_avg_pool'


def _check_params(op: str, pooled_size: int, group_size: int,
                  spatial_scale: float, **dims: int) -> None:
    for name, value in (*dims.items(), ('pooled_size', pooled_size),
                        ('group_size', group_size)):
        check_positive_int(op, name, value)
    check_spatial_scale(op, spatial_scale)


def _maps_view(op: str, input: Tensor, rois: Tensor,
               group_size: int) -> Tensor:
    """The (N, D, k, k, H, W) view of ``input``: (N, D * k * k, H, W) maps
    in the official channel order, or that view itself (any strides)."""
    if isinstance(input, Tensor) and input.dim() == 6:
        if input.shape[2:4] != (group_size, group_size):
            raise ValueError(
                f'{op}: a 6-D input must be (N, D, group_size, group_size, '
                f'H, W) with group_size {group_size}, got shape '
                f'{tuple(input.shape)}')
        check_roi_inputs(op, input[:, :, 0, 0], rois)
        return input
    check_roi_inputs(op, input, rois)
    k2 = group_size * group_size
    if input.size(1) % k2:
        raise ValueError(f'{op}: input must have a multiple of group_size '
                         f'** 2 = {k2} channels, got {input.size(1)}')
    n, c, h, w = input.shape
    return input.view(n, c // k2, group_size, group_size, h, w)


def _maps_layout(maps: Tensor) -> tuple:
    """Shape and strides (None unless dense) for :func:`_zero_maps`."""
    expected = 1
    for size, stride in sorted(zip(maps.shape, maps.stride()),
                               key=lambda d: d[1]):
        if size != 1 and stride != expected:
            return maps.shape, None
        expected *= size
    return maps.shape, maps.stride()


def _zero_maps(like: Tensor, layout: tuple) -> Tensor:
    """A zero gradient in the layout the forward read, so that the backward
    kernels write in the same order."""
    shape, stride = layout
    if stride is None:
        return like.new_zeros(shape)
    return like.new_empty_strided(shape, stride).zero_()


def _check_channel_start(maps: Tensor, rois: Tensor, start: Tensor,
                         output_dim: int) -> None:
    """(R,) int64 starts with start + output_dim <= the maps' rows."""
    if not isinstance(start, Tensor) or start.dtype != torch.int64 or \
            start.shape != (rois.size(0), ) or start.device != rois.device:
        raise ValueError(
            f'{_OP}: channel_start must be a ({rois.size(0)},) int64 tensor '
            f'on {rois.device}, got {getattr(start, "shape", start)!r} '
            f'{getattr(start, "dtype", "")}')
    rows = maps.size(1)
    bad = (start < 0) | (start > rows - output_dim)
    if start.numel() and bool(bad.any()):
        raise ValueError(
            f'{_OP}: channel_start must lie in [0, {rows - output_dim}] '
            f'(the maps have {rows} channel rows, output_dim {output_dim}), '
            f'got {int(start[bad][0])}')


class PSRoIPoolFunction(Function):
    """Autograd function of :func:`ps_roi_pool`; no gradient to ``rois``."""

    @staticmethod
    def forward(ctx, input: Tensor, rois: Tensor, output_dim: int,
                pooled_size: int, group_size: int, spatial_scale: float,
                channel_start: Optional[Tensor] = None) -> Tensor:
        _check_params(_OP, pooled_size, group_size, spatial_scale,
                      output_dim=output_dim)
        maps = _maps_view(_OP, input, rois, group_size)
        if channel_start is None:
            if maps.size(1) != output_dim:
                raise ValueError(
                    f'{_OP}: input must have output_dim * group_size ** 2 = '
                    f'{output_dim * group_size ** 2} channels, got '
                    f'{maps.size(1) * group_size ** 2}')
            channel_start = rois.new_empty(0, dtype=torch.int64)
        else:
            _check_channel_start(maps, rois, channel_start, output_dim)
        ctx.params = (output_dim, pooled_size, float(spatial_scale))
        ctx.input_shape = input.shape
        ctx.layout = _maps_layout(maps)
        rois, channel_start = rois.contiguous(), channel_start.contiguous()
        ctx.save_for_backward(rois, channel_start)
        output = input.new_empty(
            (rois.size(0), output_dim, pooled_size, pooled_size))
        if rois.size(0) > 0:
            get_op('ps_roi_pool_forward')(maps, rois, channel_start, output,
                                          *ctx.params)
        return output

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output: Tensor) -> tuple:
        rois, channel_start = ctx.saved_tensors
        grad_maps = _zero_maps(grad_output, ctx.layout)
        if rois.size(0) > 0:
            get_op('ps_roi_pool_backward')(grad_output.contiguous(), rois,
                                           channel_start, grad_maps,
                                           *ctx.params)
        return (grad_maps.view(ctx.input_shape), None, None, None, None, None,
                None)


def ps_roi_pool(input: Tensor,
                rois: Tensor,
                output_dim: int,
                pooled_size: int,
                group_size: int,
                spatial_scale: float,
                channel_start: Optional[Tensor] = None) -> Tensor:
    """FCIS position-sensitive RoI pooling.

    Args:
        input (Tensor): (N, D_in * group_size ** 2, H, W) score maps,
            channel ``(d * group_size + gh) * group_size + gw``, or their
            (N, D_in, group_size, group_size, H, W) view with any strides;
            D_in = output_dim unless ``channel_start`` is given.
        rois (Tensor): (R, 5) rows ``[batch_idx, x1, y1, x2, y2]`` in input
            image pixels (inclusive ends), same dtype and device as input.
        output_dim (int): D, output channels.
        pooled_size (int): P, output bins per side (21 in FCIS).
        group_size (int): k, position-sensitive maps per side (7 in FCIS).
        spatial_scale (float): feature cells per image pixel (1/16).
        channel_start (Tensor, optional): (R,) int64; RoI n pools channel
            rows ``channel_start[n] + d``, d < output_dim, of the D_in rows
            (FCIS Label_Pick / Score_Pick of one class without assembling
            the others).

    Returns:
        Tensor: (R, D, P, P) bin averages; differentiable w.r.t. ``input``.
    """
    return PSRoIPoolFunction.apply(input, rois, output_dim, pooled_size,
                                   group_size, spatial_scale, channel_start)


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
        _check_params(_OP, pooled_size, group_size, spatial_scale,
                      output_dim=output_dim)
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


class PSRoIMaxAvgPoolFunction(Function):
    """Autograd function of :func:`ps_roi_max_avg_pool`; no gradient to
    ``rois``. The backward recomputes the winners instead of storing them."""

    @staticmethod
    def forward(ctx, input: Tensor, rois: Tensor, output_dim: int,
                channels_per_group: int, pooled_size: int, group_size: int,
                spatial_scale: float) -> Tensor:
        _check_params(_MAX_AVG_OP, pooled_size, group_size, spatial_scale,
                      output_dim=output_dim,
                      channels_per_group=channels_per_group)
        maps = _maps_view(_MAX_AVG_OP, input, rois, group_size)
        rows = output_dim * channels_per_group
        if maps.size(1) != rows:
            raise ValueError(
                f'{_MAX_AVG_OP}: input must have output_dim * '
                f'channels_per_group * group_size ** 2 = '
                f'{rows * group_size ** 2} channels, got '
                f'{maps.size(1) * group_size ** 2}')
        ctx.params = (channels_per_group, pooled_size, float(spatial_scale))
        ctx.input_shape = input.shape
        rois = rois.contiguous()
        ctx.layout = _maps_layout(maps)
        ctx.save_for_backward(maps, rois)
        output = input.new_empty((rois.size(0), output_dim))
        if rois.size(0) > 0:
            get_op('ps_roi_max_avg_pool_forward')(maps, rois, output,
                                                  *ctx.params)
        return output

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output: Tensor) -> tuple:
        maps, rois = ctx.saved_tensors
        grad_maps = _zero_maps(maps, ctx.layout)
        if rois.size(0) > 0:
            get_op('ps_roi_max_avg_pool_backward')(grad_output.contiguous(),
                                                   maps, rois, grad_maps,
                                                   *ctx.params)
        return (grad_maps.view(ctx.input_shape), None, None, None, None, None,
                None)


def ps_roi_max_avg_pool(input: Tensor, rois: Tensor, output_dim: int,
                        channels_per_group: int, pooled_size: int,
                        group_size: int, spatial_scale: float) -> Tensor:
    """PSRoIPool, Group_Max and the average over the bins in one pass: the
    FCIS class score, without assembling the (R, G * cig, P, P) maps.

    Equal to ``group_max(ps_roi_pool(input, rois, G * cig, P, k, s),
    G).mean(dim=(2, 3))``: the same per-bin averages and winners (strict
    ``>`` from -FLT_MAX, ties to the lowest channel, NaN never wins); the
    bins are summed in float64. Fastest when the G * cig values of one cell
    and position are contiguous (see the module docstring).

    Args:
        input (Tensor): (N, G * cig * k * k, H, W) score maps, channel
            ``((g * cig + j) * k + gh) * k + gw``, or their (N, G * cig, k,
            k, H, W) view with any strides.
        rois (Tensor): (R, 5) ``[batch_idx, x1, y1, x2, y2]`` image px.
        output_dim (int): G, groups (classes incl. background in FCIS).
        channels_per_group (int): cig (2: outside, inside).
        pooled_size (int): P (21).
        group_size (int): k (7).
        spatial_scale (float): feature cells per image pixel (1/16).

    Returns:
        Tensor: (R, G) scores; differentiable w.r.t. ``input`` (each bin's
        share reaches its winning channel).
    """
    return PSRoIMaxAvgPoolFunction.apply(input, rois, output_dim,
                                         channels_per_group, pooled_size,
                                         group_size, spatial_scale)
