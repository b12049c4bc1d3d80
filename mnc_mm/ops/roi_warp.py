# Copyright (c) OpenMMLab. All rights reserved.
"""RoI warping of MNC (Dai, He, Sun, CVPR 2016, Eq. 8).

Sampling convention (daijifeng001/caffe-mnc
``src/caffe/layers/roi_warping_layer.cu``, ``ROIWarpingForward``; the paper's
``x_i + (u'/W') w_i`` with ``x_i`` the left edge and ``w_i`` the width):
with ``s = spatial_scale``, ``a1 = s * x1``, ``a2 = s * x2`` (each rounded
half away from zero if ``quantize``) and ``bin = max(a2 - a1, 0) / w``,
output column ``j`` in ``[0, w)`` samples the feature map at
``x = a1 + j * bin`` (feature pixels, pixel centres at integers); rows
alike with ``y1, y2, h``. That is, sample ``(i, j)`` lies at the **top-left
corner** of bin ``(i, j)``: the grid spans ``[a1, a2 - bin]``, never reaches
``a2``, has no ``+1`` width and no half-pixel offset (not RoIAlign).
Where the paper and the code differ we follow the official code: the paper
describes a 14x14 warp for stage 2, the code warps to 28x28 and max-pools
2x2 (:class:`RoIWarpPool`); the paper's gradient of Eq. 8 is exact, the
official kernels' are not (see below).

Each sample is bilinear with the official border rules: a coordinate below
``-0.5`` or above ``size - 0.5`` gives 0 (and no gradient), one in
``[-0.5, 0)`` clamps to 0, one at or beyond ``size - 1`` clamps to
``size - 1``. An inverted box (``x2 < x1``, after scaling and rounding) has
``bin = 0``: all its columns sample the single line ``x = a1``. Boxes
partly or fully outside the map are valid and never read out of bounds.

Gradients: the feature gradient is the exact adjoint of the forward (the
official ``ROIWarpingBackwardFeature`` truncates it). The box gradient is
the exact derivative of the forward w.r.t. ``x1, y1, x2, y2`` (image
pixels), e.g.
``d x / d x1 = s (1 - j / w)`` and ``d x / d x2 = s j / w``; where bilinear
interpolation is kinked (integer sample positions) it is the right-sided
derivative, and it is 0 in the clamped border regions. With ``quantize``
the rounding is passed straight through (as
``ROIWarpingBackwardCoordinate``, but with the exact ratio ``j / w``
instead of the official ``j / w * L / (L + 1)``, and only the
clamped direction zeroed on the last row/column, where the official kernel
zeroes both). Column 0 (batch index) gets zero gradient.

The op and its backward are registered with ``torch.library`` as
``mnc_mm::roi_warp`` and ``mnc_mm::roi_warp_backward``, so
``torch.compile``, ``torch.export`` and autocast see them as ops.

Determinism: the CPU backward is deterministic (one task per feature plane,
fixed summation order). The CUDA backward adds with atomics in an order the
hardware picks, so it calls torch's ``alertNotDeterministic`` (an error
under ``torch.use_deterministic_algorithms(True)``), as torchvision's
``roi_align`` does.
"""
from typing import Tuple, Union

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .checks import (check_roi_inputs, check_spatial_scale,
                     register_float32_autocast, rois_as_maps_dtype)
from .ext_loader import get_op

_OP = 'roi_warp'
# The kernels take each output side as a C int.
_MAX_SIDE = 2**31 - 1


def _pair_size(output_size, name: str = 'output_size') -> Tuple[int, int]:
    """Normalise an int or ``(h, w)`` to a pair of ints in [1, 2**31 - 1]."""
    if isinstance(output_size, (tuple, list)):
        if len(output_size) != 2:
            raise ValueError(f'{_OP}: {name} must be an int or (h, w), got '
                             f'{output_size!r}')
        size = tuple(output_size)
    else:
        size = (output_size, output_size)
    for v in size:
        if isinstance(v, bool) or not isinstance(v, int):
            raise TypeError(f'{_OP}: {name} must be an int or a pair of '
                            f'ints, got {output_size!r}')
        if v <= 0:
            raise ValueError(f'{_OP}: {name} must be positive, got '
                             f'{output_size!r}')
        if v > _MAX_SIDE:
            raise ValueError(f'{_OP}: {name} must be at most {_MAX_SIDE} '
                             f'per side, got {output_size!r}')
    return size


def _warped_like(input: Tensor, rois: Tensor, out_h: int,
                 out_w: int) -> Tensor:
    return input.new_empty((rois.size(0), input.size(1), out_h, out_w))


@torch.library.custom_op('mnc_mm::roi_warp', mutates_args=())
def _roi_warp_op(input: Tensor, rois: Tensor, out_h: int, out_w: int,
                 spatial_scale: float, quantize: bool) -> Tensor:
    output = _warped_like(input, rois, out_h, out_w)
    if rois.size(0) > 0:
        get_op('roi_warp_forward')(input.contiguous(), rois.contiguous(),
                                   output, out_h, out_w, spatial_scale,
                                   quantize)
    return output


@_roi_warp_op.register_fake
def _(input, rois, out_h, out_w, spatial_scale, quantize):
    return _warped_like(input, rois, out_h, out_w)


def _grads_like(input: Tensor, rois: Tensor, input_grad: bool,
                rois_grad: bool) -> Tuple[Tensor, Tensor]:
    """Gradient buffers; an empty one tells the extension to skip it."""
    return (input.new_empty(input.shape if input_grad else (0, )),
            rois.new_empty(rois.shape if rois_grad else (0, )))


@torch.library.custom_op('mnc_mm::roi_warp_backward', mutates_args=())
def _roi_warp_backward_op(grad_output: Tensor, input: Tensor, rois: Tensor,
                          out_h: int, out_w: int, spatial_scale: float,
                          quantize: bool, input_grad: bool,
                          rois_grad: bool) -> Tuple[Tensor, Tensor]:
    grad_input, grad_rois = _grads_like(input, rois, input_grad, rois_grad)
    if rois.size(0) == 0 or input.numel() == 0:
        grad_input.zero_()
        grad_rois.zero_()
    elif input_grad or rois_grad:
        get_op('roi_warp_backward')(grad_output.contiguous(),
                                    input.contiguous(), rois.contiguous(),
                                    grad_input, grad_rois, out_h, out_w,
                                    spatial_scale, quantize)
    return grad_input, grad_rois


@_roi_warp_backward_op.register_fake
def _(grad_output, input, rois, out_h, out_w, spatial_scale, quantize,
      input_grad, rois_grad):
    return _grads_like(input, rois, input_grad, rois_grad)


def _roi_warp_setup(ctx, inputs, output) -> None:
    input, rois, *params = inputs
    ctx.save_for_backward(input, rois)
    ctx.params = params


def _roi_warp_backward(ctx, grad_output: Tensor) -> tuple:
    input, rois = ctx.saved_tensors
    need_input, need_rois = ctx.needs_input_grad[:2]
    grad_input, grad_rois = _roi_warp_backward_op(grad_output, input, rois,
                                                  *ctx.params, need_input,
                                                  need_rois)
    return (grad_input if need_input else None,
            grad_rois if need_rois else None, None, None, None, None)


_roi_warp_op.register_autograd(_roi_warp_backward,
                               setup_context=_roi_warp_setup)
register_float32_autocast(_roi_warp_op)


def roi_warp(input: Tensor,
             rois: Tensor,
             output_size: Union[int, Tuple[int, int]],
             spatial_scale: float,
             quantize: bool = False) -> Tensor:
    """Warp each RoI of ``input`` to a fixed grid by bilinear sampling.

    See the module docstring for the exact sampling convention.

    Args:
        input (Tensor): features (N, C, H, W); float16, bfloat16, float32
            or float64 on CPU and CUDA (float16 and bfloat16 compute and
            accumulate gradients in float32).
        rois (Tensor): (R, 5) rows ``[batch_idx, x1, y1, x2, y2]`` in image
            pixels, on the device of ``input``; any floating dtype, cast to
            the dtype of ``input`` (see
            :func:`~mnc_mm.ops.checks.rois_as_maps_dtype`).
        output_size (int | tuple[int, int]): ``h`` or ``(h, w)``.
        spatial_scale (float): feature pixels per image pixel, e.g. 1/16.
        quantize (bool): round the scaled corners half away from zero as
            the official caffe-mnc kernel does (straight-through gradient).

    Returns:
        Tensor: (R, C, h, w) in the dtype of ``input`` (float32 under
        autocast). Differentiable w.r.t. ``input`` and the box columns of
        ``rois``.
    """
    out_h, out_w = _pair_size(output_size)
    spatial_scale = check_spatial_scale(_OP, spatial_scale)
    check_roi_inputs(_OP, input, rois)
    return _roi_warp_op(input, rois_as_maps_dtype(_OP, rois, input), out_h,
                        out_w, spatial_scale, bool(quantize))


class RoIWarp(nn.Module):
    """Module form of :func:`roi_warp`.

    Usable as the ``roi_layer`` of mmdet's ``SingleRoIExtractor``
    (``roi_layer=dict(type=RoIWarp, output_size=14)``): it is built as
    ``RoIWarp(spatial_scale=1 / stride, **cfg)`` and exposes
    ``output_size``.
    """

    def __init__(self,
                 output_size: Union[int, Tuple[int, int]],
                 spatial_scale: float,
                 quantize: bool = False) -> None:
        super().__init__()
        self.output_size = _pair_size(output_size)
        self.spatial_scale = check_spatial_scale(_OP, spatial_scale)
        self.quantize = bool(quantize)

    def forward(self, input: Tensor, rois: Tensor) -> Tensor:
        """input (N, C, H, W), rois (R, 5) -> (R, C, h, w)."""
        return roi_warp(input, rois, self.output_size, self.spatial_scale,
                        self.quantize)

    def extra_repr(self) -> str:
        return (f'output_size={self.output_size}, '
                f'spatial_scale={self.spatial_scale}, '
                f'quantize={self.quantize}')


class RoIWarpPool(RoIWarp):
    """MNC's "RoI pooling by warping": warp to ``warp_size``, then max-pool.

    E.g. ``RoIWarpPool(28, 14, 1 / 16)`` warps to 28x28 and max-pools 2x2
    (stride 2) to 14x14. ``output_size`` is the pooled size; each side of
    ``warp_size`` must be a multiple of the matching side of it.
    """

    def __init__(self,
                 warp_size: Union[int, Tuple[int, int]],
                 output_size: Union[int, Tuple[int, int]],
                 spatial_scale: float,
                 quantize: bool = False) -> None:
        super().__init__(output_size, spatial_scale, quantize)
        self.warp_size = _pair_size(warp_size, 'warp_size')
        if any(w % o for w, o in zip(self.warp_size, self.output_size)):
            raise ValueError(f'{_OP}: warp_size {self.warp_size} must be a '
                             f'multiple of output_size {self.output_size} on '
                             f'each side')
        self.kernel_size = tuple(
            w // o for w, o in zip(self.warp_size, self.output_size))

    def forward(self, input: Tensor, rois: Tensor) -> Tensor:
        """input (N, C, H, W), rois (R, 5) -> (R, C, *output_size)."""
        warped = roi_warp(input, rois, self.warp_size, self.spatial_scale,
                          self.quantize)
        return F.max_pool2d(warped, self.kernel_size)

    def extra_repr(self) -> str:
        return f'warp_size={self.warp_size}, ' + super().extra_repr()
