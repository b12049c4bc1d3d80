# Copyright (c) OpenMMLab. All rights reserved.
"""Argument checks of the post-processing functions.

Every message starts with the function's name and says what was expected
and what was found.
"""
import operator
from typing import Sequence, Tuple

import torch
from torch import Tensor


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
    device = None
    for name, tensor in tensors.items():
        if not isinstance(tensor, Tensor):
            raise TypeError(f'{op}: {name} must be a torch.Tensor, got '
                            f'{type(tensor).__name__}')
        if not tensor.is_floating_point():
            raise TypeError(f'{op}: {name} must be a floating-point tensor, '
                            f'got {tensor.dtype}')
        if device is None:
            device, first = tensor.device, name
        elif tensor.device != device:
            raise ValueError(f'{op}: {name} must be on the device of {first} '
                             f'({device}), got {tensor.device}')
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
