# Copyright (c) OpenMMLab. All rights reserved.
"""Mask resizing as the official codes compute it: cv2 ``INTER_LINEAR``
to each box's own size, and caffe-mnc's ``MaskResize``.

* ``INTER_LINEAR`` is the half-pixel rule of the official ``cv2.resize``
  calls, the FCIS kernels and ``F.interpolate(mode='bilinear',
  align_corners=False)``: destination cell ``i`` of an axis resized from
  ``in_size`` to ``out_size`` cells sits at the source coordinate ``(i +
  0.5) * in_size / out_size - 0.5``, clamped to ``[0, in_size - 1]`` (edge
  replication), interpolating the two neighbours, without anti-aliasing
  (:func:`half_pixel_source`, :func:`linear_taps`).
* caffe-mnc's ``MaskResize`` (:func:`resize_masks_top_left`) samples at
  ``i * m / size`` with the border rules of :func:`mnc_mm.ops.roi_warp`.

Used by the mask targets and mask IoUs (task_modules), the classifier's mask
resize (MNC stage 3) and :mod:`.separable_sampling`; torch only (and
:func:`mnc_mm.ops.roi_warp`), in ``layers`` below ``task_modules`` and
``post_processing`` so both import it without a cycle.
"""
from typing import List, Optional, Tuple, Union

import torch
from torch import Tensor

from mnc_mm.ops import roi_warp

Size = Union[int, float, Tensor]

#: Padded cells (rows x columns) resized at once by the users of
#: :func:`box_row_chunks`: bounds their temporaries (16 MiB a float32
#: tensor) whatever the number and size of the boxes.
MAX_WINDOW_CELLS = 1 << 22


def half_pixel_source(dst: Tensor,
                      in_size: Size,
                      out_size: Size,
                      start: Optional[Tensor] = None) -> Tensor:
    """Source coordinates of destination cells, not clamped.

    ``(dst + 0.5) * (in_size / out_size) - 0.5``, or with ``start``
    ``start + (dst + 0.5) * (in_size / out_size) - 0.5`` evaluated in this
    order (as the FCIS kernels do: ``start`` is added before the 0.5 is
    taken off). Arguments broadcast. ``in_size / out_size`` is evaluated as
    given: torch computes a number over a tensor as the number times the
    tensor's reciprocal, which can differ from cv2's division in the last
    bit (kept: it is what the code this replaced computed).

    Args:
        dst (Tensor): destination cell indices (float).
        in_size, out_size (int | float | Tensor): cells of the source and
            destination axes.
        start (Tensor, optional): offset of the source axis.

    Returns:
        Tensor: source coordinates.
    """
    scaled = (dst + 0.5) * (in_size / out_size)
    if start is not None:
        scaled = start + scaled
    return scaled - 0.5


def linear_taps(pos: Tensor, size: Size) -> Tuple[Tensor, Tensor, Tensor]:
    """The two neighbours and the weight of the second of coordinates on an
    axis of ``size`` cells (an int, or a tensor broadcasting with ``pos``),
    after clamping to ``[0, size - 1]``.

    Returns:
        tuple: ``low`` and ``high = min(low + 1, size - 1)`` (long) and
        ``frac = pos - low`` (0 where the coordinate was clamped to the
        last cell); the value is ``(1 - frac) * v[low] + frac * v[high]``.
    """
    last = size - 1
    pos = pos.clamp(min=0)
    pos = (torch.minimum(pos, last)
           if isinstance(last, Tensor) else pos.clamp(max=last))
    low = pos.floor()
    frac = pos - low
    high = (torch.minimum(low + 1, last)
            if isinstance(last, Tensor) else (low + 1).clamp(max=last))
    return low.long(), high.long(), frac


def resize_box_rows(masks: Tensor, heights: Tensor, widths: Tensor,
                    num_rows: int, win_w: int
                    ) -> Tuple[Tensor, Tensor, Tensor]:
    """Resize each (m, m) mask to its own (h, w) (cv2 ``INTER_LINEAR``),
    as rows padded to ``win_w`` columns.

    The rows of all boxes are stacked, box after box (``num_rows`` = the
    sum of ``heights``), so no box is padded to the height of another.
    Column k of a row holds the resized value at column ``min(k, w - 1)``:
    the padding repeats the last column, bit for bit. The value is ``(1 -
    fy) * ((1 - fx) * v00 + fx * v01) + fy * ((1 - fx) * v10 + fx *
    v11)``, computed in ``masks.dtype``.

    Args:
        masks (Tensor): (n, m, m) float masks.
        heights, widths (Tensor): (n,) long sizes >= 1.
        num_rows (int): ``heights.sum()`` (known to the caller, no sync).
        win_w (int): columns, >= ``widths.max()``.

    Returns:
        tuple: values (num_rows, win_w), and for each row its box (index
        into the n masks) and its row in the box, (num_rows,) long.
    """
    num, size = masks.size(0), masks.size(-1)
    device, dtype = masks.device, masks.dtype
    box = torch.repeat_interleave(
        torch.arange(num, device=device), heights, output_size=num_rows)
    first_row = heights.cumsum(0) - heights
    row = torch.arange(num_rows, device=device) - first_row[box]
    y0, y1, fy = linear_taps(
        half_pixel_source(row.to(dtype), size, heights[box].to(dtype)), size)
    col = torch.minimum(
        torch.arange(win_w, device=device), widths[:, None] - 1)
    x0, x1, fx = linear_taps(
        half_pixel_source(col.to(dtype), size, widths[:, None].to(dtype)),
        size)
    # along x first: (n * m, win_w)
    shape = (num, size, win_w)
    src = masks.gather(2, x0[:, None, :].expand(shape))
    src.mul_((1 - fx)[:, None, :])
    src.add_(masks.gather(2, x1[:, None, :].expand(shape)).mul_(
        fx[:, None, :]))
    src = src.view(num * size, win_w)
    # then along y, copying whole rows
    out = src.index_select(0, box * size + y0).mul_((1 - fy)[:, None])
    out.add_(src.index_select(0, box * size + y1).mul_(fy[:, None]))
    return out, box, row


def box_row_chunks(heights: Tensor,
                   widths: Tensor,
                   max_cells: Optional[int] = None,
                   max_waste: float = 2.
                   ) -> List[Tuple[Tensor, int, int]]:
    """Groups of boxes to resize together with :func:`resize_box_rows`.

    Boxes are taken widest first; a group has at most ``max_cells`` cells
    (rows x padded columns) and at most ``max_waste`` times the cells of
    its boxes (a box alone always makes a group). One host sync.

    Args:
        heights, widths (Tensor): (n,) long sizes.
        max_cells (int, optional): default :data:`MAX_WINDOW_CELLS`.
        max_waste (float): bound on padded cells / box cells of a group.

    Returns:
        list[tuple]: ``(index, num_rows, win_w)``, ``index`` (k,) long on
        the sizes' device.
    """
    if max_cells is None:
        max_cells = MAX_WINDOW_CELLS
    sizes = torch.stack([heights, widths], 1).cpu()
    order = torch.argsort(sizes[:, 1], descending=True, stable=True)
    rows, cols = sizes[order].unbind(1)
    order = order.to(heights.device)
    chunks, start, num = [], 0, len(rows)
    while start < num:
        num_rows = rows[start:].cumsum(0)
        cells = num_rows * cols[start]
        fits = (cells <= max_cells) & (
            cells <= max_waste * (rows[start:] * cols[start:]).cumsum(0))
        # the boxes up to the first that does not fit
        count = max(int(fits.cumprod(0).sum()), 1)
        chunks.append((order[start:start + count],
                       int(num_rows[count - 1]), int(cols[start])))
        start += count
    return chunks


def resize_masks_top_left(masks: Tensor, size: int) -> Tensor:
    """Resize square masks with the official MaskResize rule.

    Output cell ``(i, j)`` samples the input at ``(i * m / size,
    j * m / size)`` (e.g. 0, 1.5, ..., 19.5 for 21 -> 14): neither
    ``align_corners`` mode of ``F.interpolate``, but exactly the sampling
    (and border rules) of :func:`mnc_mm.ops.roi_warp` with the box
    ``(0, 0, m, m)`` at scale 1, which computes it. The gradient is the
    exact adjoint.

    Half and bfloat16 masks are resized in float32: the RoIs' batch column
    is the mask index and the op casts RoIs to the masks' dtype, in which
    bfloat16 holds integers exactly only up to 256 (float16: 2048), so
    the op refuses more than 257 bfloat16 masks (mask 257 would read 256).

    Args:
        masks (Tensor): (R, m, m) float masks.
        size (int): output side.

    Returns:
        Tensor: (R, size, size) in the dtype of ``masks``.
    """
    if masks.dim() != 3 or masks.size(1) != masks.size(2):
        raise ValueError('masks must be (R, m, m), got '
                         f'{tuple(masks.shape)}')
    num, m = masks.size(0), masks.size(1)
    dtype = torch.promote_types(masks.dtype, torch.float32)
    boxes = torch.tensor([0., 0., m, m], dtype=dtype,
                         device=masks.device).expand(num, 4)
    index = torch.arange(num, dtype=dtype, device=masks.device)
    rois = torch.cat([index[:, None], boxes], dim=1)
    out = roi_warp(masks[:, None].to(dtype), rois, size, 1.0)[:, 0]
    return out.to(masks.dtype)
