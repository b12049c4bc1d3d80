# Copyright (c) OpenMMLab. All rights reserved.
"""Argument checks shared by the RoI ops (run before calling the
extension) and the post-processing functions.

The RoI ops' checks here read shapes, dtypes and devices only, never tensor
values: no device-to-host sync, nothing for ``torch.compile`` to break on.
The value checks (finite RoIs, batch index an integer in [0, N)) run in the
C++ kernels (``TORCH_CHECK_VALUE`` on CPU, a device-side check on CUDA).

Every message starts with the op's (function's) name and says what was
expected and what was found. Needs torch only (no mmcv/mmdet), so the ops
can use it.
"""
import math
import operator
from typing import Sequence, Tuple

import torch
from torch import Tensor

SUPPORTED_DTYPES = {
    'cpu': (torch.float16, torch.bfloat16, torch.float32, torch.float64),
    'cuda': (torch.float16, torch.bfloat16, torch.float32, torch.float64),
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
    """``spatial_scale`` (feature cells per image pixel) must be > 0 and
    finite.

    The range is tested by comparisons, not ``math.isfinite``: under
    ``torch.compile(dynamic=True)`` dynamo reads a float attribute of a
    module (``self.spatial_scale``) as a symbolic ``SymFloat``, and
    ``math.isfinite`` of one does not trace (a graph break at every op
    call), while ``0 < s < inf`` (False for nan and inf alike) becomes a
    guard. The op call then specialises the graph on the value; the C++
    op checks it again.
    """
    if isinstance(spatial_scale, bool) or not isinstance(
            spatial_scale, (int, float)):
        raise TypeError(f'{op}: spatial_scale must be a float, got '
                        f'{type(spatial_scale).__name__} {spatial_scale!r}')
    if not 0 < spatial_scale < math.inf:
        raise ValueError(f'{op}: spatial_scale must be positive and finite, '
                         f'got {spatial_scale!r}')
    return float(spatial_scale)


def check_tensor(op: str, name: str, value) -> None:
    """``value`` must be a tensor."""
    if not isinstance(value, Tensor):
        raise TypeError(f'{op}: {name} must be a torch.Tensor, got '
                        f'{type(value).__name__}')


def check_same_device(op: str, name: str, tensor: Tensor, ref_name: str,
                      ref: Tensor) -> None:
    """``tensor`` must be on the device of ``ref``."""
    if tensor.device != ref.device:
        raise ValueError(f'{op}: {name} must be on the device of {ref_name} '
                         f'({ref.device}), got {tensor.device}')


def check_roi_inputs(op: str, input: Tensor, rois: Tensor) -> None:
    """``input`` (N, C, H, W) in a supported dtype and ``rois`` (R, 5)
    ``[batch_idx, x1, y1, x2, y2]``, floating point, on the same device.

    Checks shapes, dtypes and devices only: it reads no tensor values, so
    it costs no device-to-host sync and traces under ``torch.compile``.
    """
    for name, t in (('input', input), ('rois', rois)):
        check_tensor(op, name, t)
    if input.dim() != 4:
        raise ValueError(f'{op}: input must be 4-D (N, C, H, W), got shape '
                         f'{tuple(input.shape)}')
    if input.shape[2] < 1 or input.shape[3] < 1:
        raise ValueError(f'{op}: input must have H, W >= 1, got shape '
                         f'{tuple(input.shape)}')
    if rois.dim() != 2 or rois.shape[1] != 5:
        raise ValueError(f'{op}: rois must be (R, 5) rows [batch_idx, x1, '
                         f'y1, x2, y2], got shape {tuple(rois.shape)}')
    check_same_device(op, 'rois', rois, 'input', input)
    supported = SUPPORTED_DTYPES.get(input.device.type)
    if supported is None:
        raise ValueError(f'{op}: input must be on a CPU or CUDA device, got '
                         f'{input.device}')
    if input.dtype not in supported:
        raise TypeError(f'{op}: input dtype must be one of '
                        f'{[str(d) for d in supported]} on '
                        f'{input.device.type}, got {input.dtype}')
    if not rois.is_floating_point():
        raise TypeError(f'{op}: rois must be a floating-point tensor, got '
                        f'{rois.dtype}')


#: Devices whose autocast runs the ops in float32
#: (:func:`register_float32_autocast`).
AUTOCAST_DEVICES = ('cpu', 'cuda')


def register_float32_autocast(op) -> None:
    """Under autocast (CPU or CUDA), ``op`` (a ``torch.library.custom_op``)
    casts its float16/bfloat16 tensor inputs to float32 and runs in float32.

    Why: the kernels accumulate in float32 in every dtype anyway, and the
    maps that autocast hands them come out of bf16/fp16 layers, so their
    float32 copies are exact; what a float32 call adds is RoIs that are not
    rounded to the maps' dtype (bfloat16 moves a corner near 1000 px by
    up to 2 px, see :func:`rois_as_maps_dtype`; for 300 random RoIs in a
    600 x 1000 px image on smooth random stride-16 maps that changed the
    PSRoIPool outputs by 2.8 % of their mean absolute value on average and
    by 33 % of the largest at worst) and outputs that are not rounded. The
    cost is a float32 copy of the maps. Explicit float16/bfloat16 calls
    outside autocast still run the half/bfloat16 kernels.
    """
    for device in AUTOCAST_DEVICES:
        op.register_autocast(device, torch.float32)


def rois_as_maps_dtype(op: str, rois: Tensor, maps: Tensor) -> Tensor:
    """The RoI dtype rule of the ops: RoIs are cast to the dtype of the
    maps they index, as mmdet's ``SingleRoIExtractor`` does
    (``rois.type_as(feats[0])``); the kernels then compute the bin limits
    in that dtype, as the official kernels do in theirs. Under autocast
    on the maps' device the ops run in float32
    (:func:`register_float32_autocast`), so float16/bfloat16/float32 maps
    take float32 RoIs.

    Under float16 or bfloat16 maps the box corners are rounded to that
    dtype first: float16 keeps integers exactly up to 2048 and bfloat16 up
    to 256 (above, corners move to the nearest multiple of 2, 4, ... px),
    and float16 overflows to inf beyond 65504 px (refused as not finite).
    The batch index is rounded too, so maps of more images than that dtype
    can index exactly (bfloat16: 257, float16: 2049; e.g. one plane per
    RoI) are refused with a ValueError instead of silently pooling the
    wrong image; float32 maps index any batch.
    A gradient w.r.t. ``rois`` flows back through the cast.
    """
    dtype = maps.dtype
    if dtype != torch.float64 and torch.is_autocast_enabled(
            maps.device.type):
        dtype = torch.float32
    if dtype in (torch.float16, torch.bfloat16):
        # consecutive integers are exact up to 2 / eps (2 ** mantissa + 1)
        last_exact = int(2 / torch.finfo(dtype).eps)
        if maps.shape[0] - 1 > last_exact:
            raise ValueError(
                f'{op}: {dtype} rois index images 0..{last_exact} exactly, '
                f'got input of {maps.shape[0]} images; pass float32 input '
                f'(or call under autocast, which runs the op in float32)')
    return rois if rois.dtype == dtype else rois.to(dtype)


def check_img_shape(op: str, img_shape) -> Tuple[int, int]:
    """``img_shape`` must be (H, W) of two positive ints."""
    if not isinstance(img_shape, (tuple, list, torch.Size)) or len(
            img_shape) != 2:
        raise ValueError(f'{op}: img_shape must be (H, W), got '
                         f'{img_shape!r}')
    sizes = []
    for value in img_shape:
        try:
            if isinstance(value, bool):
                raise TypeError
            value = operator.index(value)
        except TypeError:
            raise TypeError(f'{op}: img_shape must hold ints, got '
                            f'{img_shape!r}') from None
        if value <= 0:
            raise ValueError(f'{op}: img_shape must be positive, got '
                             f'{img_shape!r}')
        sizes.append(value)
    return sizes[0], sizes[1]


def check_float_tensors(op: str, **tensors: Tensor) -> torch.dtype:
    """Floating-point tensors on one device; returns the dtype to compute
    in (their promoted dtype, at least float32)."""
    first = None
    for name, tensor in tensors.items():
        check_tensor(op, name, tensor)
        if not tensor.is_floating_point():
            raise TypeError(f'{op}: {name} must be a floating-point tensor, '
                            f'got {tensor.dtype}')
        if first is None:
            first = name
        else:
            check_same_device(op, name, tensor, first, tensors[first])
    dtype = torch.float32
    for tensor in tensors.values():
        dtype = torch.promote_types(dtype, tensor.dtype)
    return dtype


def check_shape(op: str, name: str, tensor: Tensor,
                expected: Sequence, text: str) -> None:
    """``tensor.shape`` must match ``expected`` (None matches any size)."""
    shape = tuple(tensor.shape)
    if len(shape) != len(expected) or any(
            want is not None and got != want
            for got, want in zip(shape, expected)):
        raise ValueError(f'{op}: {name} must be {text}, got shape {shape}')
