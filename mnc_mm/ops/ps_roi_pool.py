# Copyright (c) OpenMMLab. All rights reserved.
"""Position-sensitive RoI pooling of FCIS (``PSROIPooling``); its fused
form with Group_Max and the bin average (the FCIS class score) is
:mod:`.ps_roi_max_avg_pool`.

The exact recipe of the official MXNet kernel (msracver/FCIS
``fcis/operator_cxx/psroi_pooling.cu``, ``PSROIPoolForwardKernel`` and
``PSROIPoolBackwardAccKernel``): RoI corners rounded half away from zero
*before* scaling, +1 on the end corner, extent at least 0.1 cell, integer
bins from floor/ceil of the float limits clamped to [0, H] x [0, W], plain
average (0 for an empty bin), input channel ``(d * k + gh) * k + gw`` with
``g = floor(p * k / P)``. The FCIS paper describes the assembling as
"pooling" without these details; the code is followed. torchvision's
``ps_roi_pool`` is a different op (no +1, no rounding, other bin limits).

The maps may come in the official layout (N, D * k * k, H, W) or as a
(N, D, k, k, H, W) view with any strides, e.g. channels-last with the D
values of one cell and position contiguous (what the FCIS head makes, so
that :func:`ps_roi_max_avg_pool` adds whole vectors per cell).

The op is registered with ``torch.library`` as ``mnc_mm::ps_roi_pool``
(backward ``mnc_mm::ps_roi_pool_backward``), so ``torch.compile``,
``torch.export`` and autocast see it as an op. The helpers on the maps'
layout are shared with :mod:`.ps_roi_max_avg_pool`.

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
from typing import List, Optional, Tuple

import torch
from torch import Tensor, nn

from .checks import (check_positive_int, check_roi_inputs,
                     check_spatial_scale, register_float32_autocast,
                     rois_as_maps_dtype)
from .ext_loader import get_op

_OP = 'ps_roi_pool'


def check_ps_params(op: str, pooled_size: int, group_size: int,
                    spatial_scale: float, **dims: int) -> None:
    """Positive int sizes (``dims``, P, k) and a positive finite scale."""
    for name, value in (*dims.items(), ('pooled_size', pooled_size),
                        ('group_size', group_size)):
        check_positive_int(op, name, value)
    check_spatial_scale(op, spatial_scale)


def ps_maps_rows(op: str, input: Tensor, rois: Tensor,
                 group_size: int) -> int:
    """Check ``input``, (N, D * k * k, H, W) maps in the official channel
    order or their (N, D, k, k, H, W) view, against ``rois``; return D."""
    if isinstance(input, Tensor) and input.dim() == 6:
        if input.shape[2:4] != (group_size, group_size):
            raise ValueError(
                f'{op}: a 6-D input must be (N, D, group_size, group_size, '
                f'H, W) with group_size {group_size}, got shape '
                f'{tuple(input.shape)}')
        check_roi_inputs(op, input[:, :, 0, 0], rois)
        return input.size(1)
    check_roi_inputs(op, input, rois)
    k2 = group_size * group_size
    if input.size(1) % k2:
        raise ValueError(f'{op}: input must have a multiple of group_size '
                         f'** 2 = {k2} channels, got {input.size(1)}')
    return input.size(1) // k2


def ps_maps_view(input: Tensor, group_size: int) -> Tensor:
    """The (N, D, k, k, H, W) view the kernels read (``input`` itself if
    6-D; splitting the channel dimension is a view for any strides)."""
    if input.dim() == 6:
        return input
    n, c, h, w = input.shape
    k = group_size
    return input.view(n, c // (k * k), k, k, h, w)


def grad_layout(input: Tensor) -> Tuple[List[int], List[int]]:
    """Size and strides of the zero gradient of ``input``: its own strides
    when they are dense (so the backward kernels write in the order the
    forward read), else contiguous ones."""
    expected = 1
    for size, stride in sorted(zip(input.shape, input.stride()),
                               key=lambda d: d[1]):
        if size != 1 and stride != expected:
            return list(input.shape), _contiguous_strides(input.shape)
        expected *= size
    return list(input.shape), list(input.stride())


def _contiguous_strides(shape) -> List[int]:
    strides, step = [], 1
    for size in reversed(shape):
        strides.append(step)
        step *= size
    return strides[::-1]


# --------------------------------------------------------------------------
# PSRoIPool as the torch op mnc_mm::ps_roi_pool.
# --------------------------------------------------------------------------
def _pooled_like(input: Tensor, rois: Tensor, output_dim: int,
                 pooled_size: int) -> Tensor:
    return input.new_empty(
        (rois.size(0), output_dim, pooled_size, pooled_size))


@torch.library.custom_op('mnc_mm::ps_roi_pool', mutates_args=())
def _ps_roi_pool_op(input: Tensor, rois: Tensor,
                    channel_start: Optional[Tensor], output_dim: int,
                    pooled_size: int, group_size: int,
                    spatial_scale: float) -> Tensor:
    maps = ps_maps_view(input, group_size)
    if channel_start is None:
        channel_start = rois.new_empty(0, dtype=torch.int64)
    else:
        _check_channel_start_values(maps, channel_start, output_dim)
    output = _pooled_like(input, rois, output_dim, pooled_size)
    get_op('ps_roi_pool_forward')(maps, rois.contiguous(),
                                  channel_start.contiguous(), output,
                                  output_dim, pooled_size, spatial_scale)
    return output


@_ps_roi_pool_op.register_fake
def _(input, rois, channel_start, output_dim, pooled_size, group_size,
      spatial_scale):
    return _pooled_like(input, rois, output_dim, pooled_size)


@torch.library.custom_op('mnc_mm::ps_roi_pool_backward', mutates_args=())
def _ps_roi_pool_backward_op(grad_output: Tensor, rois: Tensor,
                             channel_start: Optional[Tensor],
                             input_size: List[int], input_stride: List[int],
                             output_dim: int, pooled_size: int,
                             group_size: int,
                             spatial_scale: float) -> Tensor:
    grad_input = grad_output.new_empty_strided(input_size,
                                               input_stride).zero_()
    if channel_start is None:
        channel_start = rois.new_empty(0, dtype=torch.int64)
    get_op('ps_roi_pool_backward')(grad_output.contiguous(),
                                   rois.contiguous(),
                                   channel_start.contiguous(),
                                   ps_maps_view(grad_input, group_size),
                                   output_dim, pooled_size, spatial_scale)
    return grad_input


@_ps_roi_pool_backward_op.register_fake
def _(grad_output, rois, channel_start, input_size, input_stride,
      output_dim, pooled_size, group_size, spatial_scale):
    return grad_output.new_empty_strided(input_size, input_stride)


def _ps_roi_pool_setup(ctx, inputs, output) -> None:
    input, rois, channel_start, *params = inputs
    ctx.save_for_backward(rois, channel_start)
    ctx.layout = grad_layout(input)
    ctx.params = params


def _ps_roi_pool_backward(ctx, grad_output: Tensor) -> tuple:
    rois, channel_start = ctx.saved_tensors
    grad_input = None
    if ctx.needs_input_grad[0]:
        grad_input = _ps_roi_pool_backward_op(grad_output, rois,
                                              channel_start, *ctx.layout,
                                              *ctx.params)
    return grad_input, None, None, None, None, None, None


_ps_roi_pool_op.register_autograd(_ps_roi_pool_backward,
                                  setup_context=_ps_roi_pool_setup)
register_float32_autocast(_ps_roi_pool_op)


def _check_channel_start(rois: Tensor, start: Tensor, rows: int,
                         output_dim: int) -> None:
    """(R,) int64 on the device of ``rois``; ``output_dim <= rows``."""
    if not isinstance(start, Tensor) or start.dtype != torch.int64 or \
            start.shape != (rois.size(0), ) or start.device != rois.device:
        raise ValueError(
            f'{_OP}: channel_start must be a ({rois.size(0)},) int64 tensor '
            f'on {rois.device}, got {getattr(start, "shape", start)!r} '
            f'{getattr(start, "dtype", "")}')
    if output_dim > rows:
        raise ValueError(f'{_OP}: output_dim ({output_dim}) must not exceed '
                         f'the maps\' {rows} channel rows')


def _check_channel_start_values(maps: Tensor, start: Tensor,
                                output_dim: int) -> None:
    """``0 <= start <= rows - output_dim``: a ValueError on CPU; on CUDA a
    device-side assert (no host sync; the failure surfaces at the next
    synchronisation), as the CUDA kernels check the RoI values."""
    rows = maps.size(1)
    bad = (start < 0) | (start > rows - output_dim)
    message = (f'{_OP}: channel_start must lie in [0, {rows - output_dim}] '
               f'(the maps have {rows} channel rows, output_dim '
               f'{output_dim})')
    if start.is_cuda:
        torch._assert_async(~bad.any(), message)
    elif bool(bad.any()):
        raise ValueError(f'{message}, got {int(start[bad][0])}')


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
            D_in = output_dim unless ``channel_start`` is given. float32 or
            float64 (also float16 and bfloat16 where the extension was
            built with them).
        rois (Tensor): (R, 5) rows ``[batch_idx, x1, y1, x2, y2]`` in input
            image pixels (inclusive ends), on the device of ``input``; any
            floating dtype, cast to the dtype of ``input`` (see
            :func:`~mnc_mm.ops.checks.rois_as_maps_dtype`).
        output_dim (int): D, output channels.
        pooled_size (int): P, output bins per side (21 in FCIS).
        group_size (int): k, position-sensitive maps per side (7 in FCIS).
        spatial_scale (float): feature cells per image pixel (1/16).
        channel_start (Tensor, optional): (R,) int64; RoI n pools channel
            rows ``channel_start[n] + d``, d < output_dim, of the D_in rows
            (FCIS Label_Pick / Score_Pick of one class without assembling
            the others).

    Returns:
        Tensor: (R, D, P, P) bin averages in the dtype of ``input``
        (float32 under autocast); differentiable w.r.t. ``input``.
    """
    check_ps_params(_OP, pooled_size, group_size, spatial_scale,
                    output_dim=output_dim)
    rows = ps_maps_rows(_OP, input, rois, group_size)
    if channel_start is None:
        if rows != output_dim:
            raise ValueError(
                f'{_OP}: input must have output_dim * group_size ** 2 = '
                f'{output_dim * group_size ** 2} channels, got '
                f'{rows * group_size ** 2}')
    else:
        _check_channel_start(rois, channel_start, rows, output_dim)
    return _ps_roi_pool_op(input, rois_as_maps_dtype(_OP, rois, input),
                           channel_start, output_dim, pooled_size,
                           group_size, float(spatial_scale))


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
        check_ps_params(_OP, pooled_size, group_size, spatial_scale,
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
