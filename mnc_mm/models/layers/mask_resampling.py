# Copyright (c) OpenMMLab. All rights reserved.
"""Mask resampling, the one home of its rules: the mask targets and the
mask IoUs (task_modules), the classifier's mask resize (MNC stage 3),
pasting and voting (post_processing) all sample through here.

Two conventions, as the official codes have them:

* ``'half_pixel'`` (cv2 ``INTER_LINEAR`` of the official ``cv2.resize``
  calls, the FCIS kernels, ``F.interpolate(mode='bilinear',
  align_corners=False)``): destination cell ``i`` of an axis resized from
  ``in_size`` to ``out_size`` cells sits at the source coordinate ``(i +
  0.5) * in_size / out_size - 0.5``, clamped to ``[0, in_size - 1]`` (edge
  replication), interpolating the two neighbours, without anti-aliasing.
* ``'top_left'`` (MNC kernels, daijifeng001/MNC
  lib/transform/mask_transform.py): pixel i sits at ``i * size / n``, and a
  sample whose floor is the last grid row or column takes the value at
  (floor y, floor x) with no interpolation on either axis. caffe-mnc's
  ``MaskResize`` (:func:`resize_masks_top_left`) samples at ``i * m /
  size`` with the border rules of :func:`mnc_mm.ops.roi_warp`.

Sampling a (h, w) grid at P x Q points is ``Wy @ grid @ Wx^T`` with (P, h)
and (Q, w) weight matrices of two non-zeros per row. Torch only (and
:func:`mnc_mm.ops.roi_warp`); it sits in ``layers``, below both
``task_modules`` and ``post_processing``, so both import it without a cycle.
"""
from typing import List, NamedTuple, Optional, Tuple, Union

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


CONVENTIONS = ('half_pixel', 'top_left')


def pixels_to_grid(pixels: Tensor, lo: Tensor, hi: Tensor, size: int,
                   convention: str) -> Tuple[Tensor, Tensor]:
    """Grid coordinates of image pixels rendered from a grid stretched over
    a box (mask -> image).

    Args:
        pixels (Tensor): (P,) or (n, P) integer-valued pixel coordinates on
            one axis.
        lo, hi (Tensor): (n,) inclusive box edges on that axis, in px
            (extent ``hi - lo + 1``).
        size (int): grid cells on that axis (the mask size M).
        convention (str): ``'half_pixel'`` or ``'top_left'``.

    Returns:
        tuple: positions (n, P) in grid cells and ``inside`` (n, P) bool,
        ``lo <= pixel <= hi`` (the kernels' inside-box test).
    """
    lo, hi = lo.unsqueeze(1), hi.unsqueeze(1)
    offset = pixels - lo
    # Operation order as in the CUDA kernels (mask_render).
    if convention == 'half_pixel':
        pos = half_pixel_source(offset, size, hi - lo + 1)
    else:
        pos = offset * (size / (hi - lo + 1))
    return pos, (pixels >= lo) & (pixels <= hi)


def grid_to_pixels(size: int, lo: Tensor, hi: Tensor,
                   convention: str) -> Tensor:
    """Image coordinates at which the ``size`` cells of a grid sample an
    image inside a box (image -> mask, the kernels' ``mask_resize``).

    Args:
        size (int): output cells on that axis (the mask size M).
        lo, hi (Tensor): (n,) inclusive box edges on that axis, in px.
        convention (str): ``'half_pixel'`` or ``'top_left'``.

    Returns:
        Tensor: (n, size) image coordinates in px.
    """
    cells = torch.arange(size, dtype=lo.dtype, device=lo.device)
    extent = (hi - lo + 1).unsqueeze(1)
    if convention == 'half_pixel':
        return half_pixel_source(cells, extent, size, start=lo.unsqueeze(1))
    return lo.unsqueeze(1) + cells * (extent / size)


class AxisWeights(NamedTuple):
    """Sampling weights along one axis, restricted to a window of it.

    ``linear`` (n, P, L): bilinear weights. For ``'top_left'`` also what
    the MNC last-line rule needs: ``nearest_minus_linear`` (n, P, L), the
    one-hot of the floor minus ``linear``; ``last`` (n, P), 1. where the
    floor is the last grid line; ``end`` (n or 1, L), the one-hot of the
    last grid line if it is in the window. Invalid samples have zero rows.
    """
    linear: Tensor
    nearest_minus_linear: Optional[Tensor] = None
    last: Optional[Tensor] = None
    end: Optional[Tensor] = None


def _packed_weights(pos: Tensor, size: int, convention: str,
                    start: Union[int, Tensor], length: int,
                    valid: Optional[Tensor]
                    ) -> Tuple[Tensor, Optional[Tensor]]:
    """The per-sample fields of :class:`AxisWeights` packed in one (n, P, C)
    tensor, ``[0, linear, 0]`` (C = L + 2) or, for ``'top_left'``, ``[0,
    linear, 0, 0, nearest_minus_linear, 0, last]`` (C = 2 L + 5); and
    ``end`` (None for ``'half_pixel'``)."""
    if valid is not None:
        # Invalid samples may sit on inf/NaN (e.g. an empty box): park them.
        pos = torch.where(valid, pos, 0)
    low, high, frac = linear_taps(pos, size)
    frac = frac.unsqueeze(-1)

    def column(index):
        # Window column + 1; the two spare columns take what falls outside.
        return (index - start).clamp(-1, length) + 1

    low_col = column(low).unsqueeze(-1)
    high_col = column(high).unsqueeze(-1)
    if valid is None:
        low_weight = 1 - frac
    else:
        keep = valid.unsqueeze(-1).to(pos.dtype)
        frac = frac * keep
        low_weight = keep - frac
    width = length + 2
    top_left = convention == 'top_left'
    packed = pos.new_zeros((*pos.shape, 2 * width + 1 if top_left else width))
    linear = packed[..., :width]
    linear.scatter_add_(-1, low_col, low_weight)
    linear.scatter_add_(-1, high_col, frac)
    if not top_left:
        return packed, None
    # nearest - linear = frac * (onehot(low) - onehot(high))
    nearest_minus_linear = packed[..., width:2 * width]
    nearest_minus_linear.scatter_add_(-1, low_col, frac)
    nearest_minus_linear.scatter_add_(-1, high_col, -frac)
    last = low == size - 1
    packed[..., -1] = last if valid is None else last & valid
    # One row per window start: (n, L), or (1, L) for an int start.
    rows = pos.size(0) if isinstance(start, Tensor) else 1
    end_col = column(low.new_full((rows, 1), size - 1))
    end = pos.new_zeros((rows, width)).scatter_(-1, end_col, 1.)
    return packed, end[:, 1:-1]


def _unpack(packed: Tensor, length: int,
            end: Optional[Tensor]) -> AxisWeights:
    """Views of the fields packed by :func:`_packed_weights`."""
    width = length + 2
    if end is None:
        return AxisWeights(packed[..., 1:width - 1])
    return AxisWeights(packed[..., 1:width - 1],
                       packed[..., width + 1:2 * width - 1], packed[..., -1],
                       end)


def axis_weights(pos: Tensor,
                 size: int,
                 convention: str,
                 start: Union[int, Tensor] = 0,
                 length: Optional[int] = None,
                 valid: Optional[Tensor] = None) -> AxisWeights:
    """Weights sampling a grid of ``size`` cells at ``pos``.

    Args:
        pos (Tensor): (n, P) coordinates in grid cells, clamped to
            [0, size - 1].
        size (int): grid cells on this axis.
        convention (str): ``'top_left'`` adds the last-line terms.
        start (int | Tensor): first grid cell of the window that will be
            sampled, an int or (n, 1) long per row. Cells outside
            [start, start + length) get no weight: the caller's grid is zero
            there.
        length (int, optional): window length (default: ``size``).
        valid (Tensor, optional): (n, P) bool; invalid samples read 0.

    Returns:
        AxisWeights: with L = ``length`` columns.
    """
    length = size if length is None else length
    packed, end = _packed_weights(pos, size, convention, start, length, valid)
    return _unpack(packed, length, end)


def _last_line_terms(grid: Tensor, wy: AxisWeights,
                     wx: AxisWeights) -> Tuple[Tensor, Tensor]:
    """The MNC last-line rule as two rank-one corrections.

    Where floor x is the last grid column the value is grid[floor y, last
    column], where floor y is the last row grid[last row, floor x]. On
    those lines the linear weights of that axis already are the one-hot of
    the last line, so with N the nearest and B the linear weights (the
    corner needs no care):
    ``out = By grid Bx^T + c (x) last_x + last_y (x) r`` with
    ``c = (Ny - By) grid[:, last]`` and ``r = grid[last, :] (Nx - Bx)^T``.

    Returns:
        tuple: c (n, P) and r (n, Q).
    """
    last_col = grid @ wx.end.unsqueeze(-1)  # (n, h, 1)
    last_row = wy.end.unsqueeze(1) @ grid  # (n, 1, w)
    c = (wy.nearest_minus_linear @ last_col).squeeze(-1)
    r = (last_row @ wx.nearest_minus_linear.transpose(1, 2)).squeeze(1)
    return c, r


def sample_separable(grid: Tensor, wy: AxisWeights, wx: AxisWeights) -> Tensor:
    """Sample (n, h, w) grids with per-grid weights (n, P, h) and (n, Q, w).

    Returns:
        Tensor: (n, P, Q). Weights with the ``'top_left'`` terms apply the
        MNC last-line rule.
    """
    out = wy.linear @ (grid @ wx.linear.transpose(1, 2))
    if wy.last is None:
        return out
    c, r = _last_line_terms(grid, wy, wx)
    out.baddbmm_(c.unsqueeze(2), wx.last.unsqueeze(1))
    return out.baddbmm_(wy.last.unsqueeze(2), r.unsqueeze(1))


def sample_separable_sum(grid: Tensor, wy: AxisWeights, wx: AxisWeights,
                         coeffs: Tensor) -> Tensor:
    """``(coeffs[:, None, None] * sample_separable(grid, wy, wx)).sum(0)``,
    (P, Q), as one product without the (n, P, Q) samples."""
    coeffs = coeffs.unsqueeze(-1)
    right = (grid @ wx.linear.transpose(1, 2)) * coeffs.unsqueeze(-1)
    out = wy.linear.transpose(0, 1).flatten(1) @ right.flatten(0, 1)
    if wy.last is None:
        return out
    c, r = _last_line_terms(grid, wy, wx)
    out.addmm_(c.t(), wx.last * coeffs)
    return out.addmm_(wy.last.t(), r * coeffs)


class PixelTable:
    """Render weights of U boxes along one image axis, tabulated once.

    Each box has a block of rows: a zero row, the weights at each of its
    pixels inside the image, in order, and a zero row.

    Args:
        lo, hi (Tensor): (U,) box edges as in :func:`pixels_to_grid`.
        pix_lo, pix_hi (Tensor): (U,) first and last pixel of each box.
        img_size (int): pixels of the image on this axis.
        mask_size (int): M.
        convention (str): ``'half_pixel'`` or ``'top_left'``.
    """

    def __init__(self, lo: Tensor, hi: Tensor, pix_lo: Tensor,
                 pix_hi: Tensor, img_size: int, mask_size: int,
                 convention: str) -> None:
        first = pix_lo.clamp(0, img_size - 1)
        last = pix_hi.clamp(max=img_size - 1)
        extent = (last - first + 1).clamp(min=0).long()
        block = extent + 2
        block_start = block.cumsum(0) - block
        box = torch.repeat_interleave(
            torch.arange(len(block), device=block.device), block)
        step = torch.arange(len(box), device=box.device) - block_start[box] - 1
        pixels = (first[box] + step).unsqueeze(1)  # (R, 1)
        pos, inside = pixels_to_grid(pixels, lo[box], hi[box], mask_size,
                                     convention)
        valid = inside & ((step >= 0) & (step < extent[box])).unsqueeze(1)
        packed, self.end = _packed_weights(pos, mask_size, convention, 0,
                                           mask_size, valid)
        self.packed = packed.flatten(0, 1)  # (R, C)
        self.mask_size = mask_size
        # Pixel p of box u is row p + row_offset[u] while in its block.
        self.block_start = block_start
        self.block_stop = block_start + block - 1
        self.row_offset = block_start + 1 - first.long()

    def row_bounds(self, slots: Tensor) -> Tensor:
        """(n, 3) long ``[first row, last row, row offset]`` of the blocks
        of boxes ``slots`` (n,), for :meth:`weights`."""
        return torch.stack([
            self.block_start[slots], self.block_stop[slots],
            self.row_offset[slots]
        ], 1)

    def weights(self, bounds: Tensor, start: int, stop: int) -> AxisWeights:
        """Weights (n, P, M) at pixels start..stop of the boxes of
        ``bounds`` (from :meth:`row_bounds`), zero where a box has none."""
        pixels = torch.arange(start, stop + 1, device=bounds.device)
        # Pixels off a box read a zero row of its block.
        rows = (pixels + bounds[:, 2:]).clamp_(bounds[:, :1], bounds[:, 1:2])
        return _unpack(
            self.packed.index_select(0, rows.view(-1)).view(*rows.shape, -1),
            self.mask_size, self.end)

    def own(self, first_row: int, count: int) -> AxisWeights:
        """Weights (1, count, M) at the first ``count`` pixels of the box
        whose block starts at ``first_row``."""
        rows = self.packed[None, first_row + 1:first_row + 1 + count]
        return _unpack(rows, self.mask_size, self.end)


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
    mask 257 would read mask 256.

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
    if num == 0:
        return masks.new_zeros((0, size, size))
    dtype = torch.promote_types(masks.dtype, torch.float32)
    boxes = torch.tensor([0., 0., m, m], dtype=dtype,
                         device=masks.device).expand(num, 4)
    index = torch.arange(num, dtype=dtype, device=masks.device)
    rois = torch.cat([index[:, None], boxes], dim=1)
    out = roi_warp(masks[:, None].to(dtype), rois, size, 1.0)[:, 0]
    return out.to(masks.dtype)
