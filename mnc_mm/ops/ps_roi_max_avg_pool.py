# Copyright (c) OpenMMLab. All rights reserved.
"""PSRoIPool, Group_Max and the bin average fused in one op (the FCIS class
score), registered with ``torch.library`` as ``mnc_mm::ps_roi_max_avg_pool``
(backward ``mnc_mm::ps_roi_max_avg_pool_backward``).

Same maps, RoIs, bins and checks as :mod:`.ps_roi_pool`.
"""
import torch
from torch import Tensor

from .checks import register_float32_autocast, rois_as_maps_dtype
from .ext_loader import get_op
from .ps_roi_pool import (check_ps_params, grad_layout, ps_maps_rows,
                          ps_maps_view)

_MAX_AVG_OP = 'ps_roi_max_avg_pool'


def _scores_like(input: Tensor, rois: Tensor, groups: int) -> Tensor:
    return input.new_empty((rois.size(0), groups))


@torch.library.custom_op('mnc_mm::ps_roi_max_avg_pool', mutates_args=())
def _max_avg_op(input: Tensor, rois: Tensor, output_dim: int,
                channels_per_group: int, pooled_size: int, group_size: int,
                spatial_scale: float) -> Tensor:
    maps = ps_maps_view(input, group_size)
    output = _scores_like(input, rois, output_dim)
    get_op('ps_roi_max_avg_pool_forward')(maps, rois.contiguous(), output,
                                          channels_per_group, pooled_size,
                                          spatial_scale)
    return output


@_max_avg_op.register_fake
def _(input, rois, output_dim, channels_per_group, pooled_size, group_size,
      spatial_scale):
    return _scores_like(input, rois, output_dim)


@torch.library.custom_op('mnc_mm::ps_roi_max_avg_pool_backward',
                         mutates_args=())
def _max_avg_backward_op(grad_output: Tensor, input: Tensor, rois: Tensor,
                         channels_per_group: int, pooled_size: int,
                         group_size: int, spatial_scale: float) -> Tensor:
    grad_input = input.new_empty_strided(*grad_layout(input)).zero_()
    get_op('ps_roi_max_avg_pool_backward')(
        grad_output.contiguous(), ps_maps_view(input, group_size),
        rois.contiguous(), ps_maps_view(grad_input, group_size),
        channels_per_group, pooled_size, spatial_scale)
    return grad_input


@_max_avg_backward_op.register_fake
def _(grad_output, input, rois, channels_per_group, pooled_size, group_size,
      spatial_scale):
    return input.new_empty_strided(*grad_layout(input))


def _max_avg_setup(ctx, inputs, output) -> None:
    input, rois, _, *params = inputs
    ctx.save_for_backward(input, rois)
    ctx.params = params


def _max_avg_backward(ctx, grad_output: Tensor) -> tuple:
    input, rois = ctx.saved_tensors
    grad_input = None
    if ctx.needs_input_grad[0]:
        grad_input = _max_avg_backward_op(grad_output, input, rois,
                                          *ctx.params)
    return grad_input, None, None, None, None, None, None


_max_avg_op.register_autograd(_max_avg_backward,
                              setup_context=_max_avg_setup)
register_float32_autocast(_max_avg_op)


def ps_roi_max_avg_pool(input: Tensor, rois: Tensor, output_dim: int,
                        channels_per_group: int, pooled_size: int,
                        group_size: int, spatial_scale: float) -> Tensor:
    """PSRoIPool, Group_Max and the average over the bins in one pass: the
    FCIS class score, without assembling the (R, G * cig, P, P) maps.

    Equal to ``group_max(ps_roi_pool(input, rois, G * cig, P, k, s),
    G).mean(dim=(2, 3))`` (Group_Max of the official chain, a test
    reference in ``tests/test_ops/fcis_channel_ops.py``): the same per-bin
    averages and winners (strict ``>`` from -FLT_MAX, ties to the lowest
    channel, NaN never wins); the bins are summed in float64. Fastest when
    the G * cig values of one cell and position are contiguous (see the
    docstring of :mod:`.ps_roi_pool`).

    Args:
        input (Tensor): (N, G * cig * k * k, H, W) score maps, channel
            ``((g * cig + j) * k + gh) * k + gw``, or their (N, G * cig, k,
            k, H, W) view with any strides; dtypes as :func:`ps_roi_pool`.
        rois (Tensor): (R, 5) ``[batch_idx, x1, y1, x2, y2]`` image px, any
            floating dtype, cast to the dtype of ``input``.
        output_dim (int): G, groups (classes incl. background in FCIS).
        channels_per_group (int): cig (2: outside, inside).
        pooled_size (int): P (21).
        group_size (int): k (7).
        spatial_scale (float): feature cells per image pixel (1/16).

    Returns:
        Tensor: (R, G) scores in the dtype of ``input`` (float32 under
        autocast); differentiable w.r.t. ``input`` (each bin's share
        reaches its winning channel).
    """
    check_ps_params(_MAX_AVG_OP, pooled_size, group_size, spatial_scale,
                    output_dim=output_dim,
                    channels_per_group=channels_per_group)
    rows = ps_maps_rows(_MAX_AVG_OP, input, rois, group_size)
    if rows != output_dim * channels_per_group:
        raise ValueError(
            f'{_MAX_AVG_OP}: input must have output_dim * '
            f'channels_per_group * group_size ** 2 = '
            f'{output_dim * channels_per_group * group_size ** 2} channels, '
            f'got {rows * group_size ** 2}')
    return _max_avg_op(input, rois_as_maps_dtype(_MAX_AVG_OP, rois, input),
                       output_dim, channels_per_group, pooled_size,
                       group_size, float(spatial_scale))
