# Copyright (c) OpenMMLab. All rights reserved.
"""Argument checks shared by the RoI ops, run before calling the extension.

Every message starts with the op's name and says what was expected and
what was found.
"""
import math

import torch
from torch import Tensor

SUPPORTED_DTYPES = {
    'cpu': (torch.float32, torch.float64),
    'cuda': (torch.float16, torch.float32, torch.float64),
}


def check_positive_int(op: str, name: str, value) -> int:
    """``value`` must be a positive int (bool is refused)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f'{op}: {name} must be an int, got '
                        f'{type(value).__name__} {value!r}')
    if value <= 0:
        raise ValueError(f'{op}: {name} must be positive, got {value}')
    return value


def check_spatial_scale(op: str, spatial_scale) -> float:
    """``spatial_scale`` (feature cells per image pixel) must be > 0."""
    if isinstance(spatial_scale, bool) or not isinstance(
            spatial_scale, (int, float)):
        raise TypeError(f'{op}: spatial_scale must be a float, got '
                        f'{type(spatial_scale).__name__} {spatial_scale!r}')
    if not (math.isfinite(spatial_scale) and spatial_scale > 0):
        raise ValueError(f'{op}: spatial_scale must be positive and finite, '
                         f'got {spatial_scale!r}')
    return float(spatial_scale)


def check_roi_inputs(op: str, input: Tensor, rois: Tensor) -> None:
    """``input`` (N, C, H, W) and ``rois`` (R, 5) ``[batch_idx, x1, y1, x2,
    y2]``: same device and dtype, finite, integer batch indices in [0, N)."""
    for name, t in (('input', input), ('rois', rois)):
        if not isinstance(t, Tensor):
            raise TypeError(f'{op}: {name} must be a torch.Tensor, got '
                            f'{type(t).__name__}')
    if input.dim() != 4:
        raise ValueError(f'{op}: input must be 4-D (N, C, H, W), got shape '
                         f'{tuple(input.shape)}')
    if input.shape[2] < 1 or input.shape[3] < 1:
        raise ValueError(f'{op}: input must have H, W >= 1, got shape '
                         f'{tuple(input.shape)}')
    if rois.dim() != 2 or rois.shape[1] != 5:
        raise ValueError(f'{op}: rois must be (R, 5) rows [batch_idx, x1, '
                         f'y1, x2, y2], got shape {tuple(rois.shape)}')
    if rois.device != input.device:
        raise ValueError(f'{op}: rois must be on the device of input '
                         f'({input.device}), got {rois.device}')
    supported = SUPPORTED_DTYPES.get(input.device.type)
    if supported is None:
        raise ValueError(f'{op}: input must be on a CPU or CUDA device, got '
                         f'{input.device}')
    if input.dtype not in supported:
        raise TypeError(f'{op}: input dtype must be one of '
                        f'{[str(d) for d in supported]} on '
                        f'{input.device.type}, got {input.dtype}')
    if rois.dtype != input.dtype:
        raise TypeError(f'{op}: rois dtype must match input dtype '
                        f'({input.dtype}), got {rois.dtype}')
    if rois.shape[0] == 0:
        return
    idx = rois[:, 0]
    not_finite = ~torch.isfinite(rois).all(1)
    bad_idx = (idx != idx.floor()) | (idx < 0) | (idx >= input.shape[0])
    # One host sync for both value checks.
    any_not_finite, any_bad_idx = torch.stack(
        [not_finite.any(), bad_idx.any()]).tolist()
    if any_not_finite:
        row = int(not_finite.nonzero()[0])
        raise ValueError(f'{op}: rois must be finite, got row {row}: '
                         f'{rois[row].tolist()}')
    if any_bad_idx:
        raise ValueError(f'{op}: rois[:, 0] (batch index) must be an integer '
                         f'in [0, {input.shape[0]}), got '
                         f'{idx[bad_idx][0].item()}')
