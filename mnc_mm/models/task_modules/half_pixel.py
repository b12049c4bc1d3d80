# Copyright (c) OpenMMLab. All rights reserved.
"""Half-pixel bilinear resizing, the one definition used everywhere.

cv2 ``INTER_LINEAR`` (the official codes' ``cv2.resize``), the FCIS
kernels and ``F.interpolate(mode='bilinear', align_corners=False)`` all
place destination cell ``i`` of an axis resized from ``in_size`` to
``out_size`` cells at the source coordinate ``(i + 0.5) * in_size /
out_size - 0.5``, clamp it to ``[0, in_size - 1]`` (edge replication) and
interpolate the two neighbours, without anti-aliasing. Users: the mask
targets and mask-level labels (:mod:`.mask_target`,
:mod:`.mask_level_labels`) and the post-processing (pasting, and the
``'half_pixel'`` convention of ``post_processing.sampling``).

Torch only. It lives in ``task_modules`` because ``post_processing``
already imports ``task_modules`` (never the reverse), so both can import it
without an import cycle.
"""
from typing import List, Optional, Tuple, Union

import torch
from torch import Tensor

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


def linear_taps(pos: Tensor, size: int) -> Tuple[Tensor, Tensor, Tensor]:
    """The two neighbours and the weight of the second of coordinates on an
    axis of ``size`` cells, after clamping to ``[0, size - 1]``.

    Returns:
        tuple: ``low`` and ``high = min(low + 1, size - 1)`` (long) and
        ``frac = pos - low`` (0 where the coordinate was clamped to the
        last cell); the value is ``(1 - frac) * v[low] + frac * v[high]``.
    """
    pos = pos.clamp(0, size - 1)
    low = pos.floor()
    frac = pos - low
    low = low.long()
    return low, low.clamp(max=size - 2) + 1, frac


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
