# Copyright (c) OpenMMLab. All rights reserved.
"""Separable bilinear sampling as done by the official FCIS/MNC kernels.

One place for the coordinate conventions of mask voting and pasting:

* ``'half_pixel'`` (FCIS kernels, cv2 ``INTER_LINEAR``, ``align_corners=
  False``): the centre of pixel i of an extent of ``n`` pixels sits at
  ``(i + 0.5) * size / n - 0.5`` on a grid of ``size`` cells.
* ``'top_left'`` (MNC kernels): pixel i sits at ``i * size / n``, and a sample
  whose floor is the last grid row or column takes the value at (floor y,
  floor x) with no interpolation on either axis.

Both clamp coordinates to the grid (edge replication) and never
anti-alias. Sampling a (h, w) grid at P x Q points is ``Wy @ grid @ Wx^T``
with (P, h) and (Q, w) weight matrices of two non-zeros per row.
"""
from typing import NamedTuple, Optional, Tuple, Union

import torch
from torch import Tensor

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
    ratio = size / (hi - lo + 1)
    offset = pixels - lo
    # Operation order as in the CUDA kernels (mask_render).
    if convention == 'half_pixel':
        pos = (offset + 0.5) * ratio - 0.5
    else:
        pos = offset * ratio
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
    ratio = ((hi - lo + 1) / size).unsqueeze(1)
    if convention == 'half_pixel':
        return lo.unsqueeze(1) + (cells + 0.5) * ratio - 0.5
    return lo.unsqueeze(1) + cells * ratio


class AxisWeights(NamedTuple):
    """Sampling weights along one axis, restricted to a window of it.

    ``linear`` (n, P, L): bilinear weights. For ``'top_left'`` also what
    the MNC last-line rule needs: ``nearest_minus_linear`` (n, P, L), the
    one-hot of the floor minus ``linear``; ``last`` (n, P), 1. where the
    floor is the last grid line; ``end`` (n, L), the one-hot of the last
    grid line if it is in the window. Invalid samples have zero rows.
    """
    linear: Tensor
    nearest_minus_linear: Optional[Tensor] = None
    last: Optional[Tensor] = None
    end: Optional[Tensor] = None


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
    if valid is not None:
        # Invalid samples may sit on inf/NaN (e.g. an empty box): park them.
        pos = torch.where(valid, pos, 0)
    pos = pos.clamp(0, size - 1)
    low = pos.floor()
    frac = (pos - low).unsqueeze(-1)
    low = low.long()

    def column(index):
        # Window column + 1; the two spare columns take what falls outside.
        return (index - start).clamp(-1, length) + 1

    low_col = column(low).unsqueeze(-1)
    high_col = column(low.clamp(max=size - 2) + 1).unsqueeze(-1)
    keep = 1. if valid is None else valid.unsqueeze(-1)
    linear = pos.new_zeros((*pos.shape, length + 2))
    linear.scatter_add_(-1, low_col, (1 - frac) * keep)
    linear.scatter_add_(-1, high_col, frac * keep)
    if convention == 'half_pixel':
        return AxisWeights(linear[..., 1:-1])
    # nearest - linear = frac * (onehot(low) - onehot(high))
    nearest_minus_linear = torch.zeros_like(linear)
    nearest_minus_linear.scatter_add_(-1, low_col, frac * keep)
    nearest_minus_linear.scatter_add_(-1, high_col, -frac * keep)
    last = low == size - 1
    if valid is not None:
        last &= valid
    end_col = column(torch.full_like(low[:, :1], size - 1))  # (n, 1)
    end = pos.new_zeros((pos.size(0), length + 2)).scatter_(-1, end_col, 1.)
    return AxisWeights(linear[..., 1:-1], nearest_minus_linear[..., 1:-1],
                       last.to(pos.dtype), end[..., 1:-1])


def sample_separable(grid: Tensor, wy: AxisWeights, wx: AxisWeights) -> Tensor:
    """Sample (n, h, w) grids with per-grid weights (n, P, h) and (n, Q, w).

    Returns:
        Tensor: (n, P, Q). Weights with the ``'top_left'`` terms apply the
        MNC last-line rule.
    """
    out = wy.linear @ grid @ wx.linear.transpose(1, 2)
    if wy.last is None:
        return out
    # MNC: where floor x is the last column the value is grid[floor y,
    # last column] and where floor y is the last row grid[last row, floor
    # x]. On those lines the linear weights of that axis are already the
    # one-hot of the last line, so (the corner needs no care):
    #   out += (Ny - By) grid[:, last] (x) last_x
    #        + last_y (x) grid[last, :] (Nx - Bx)^T,
    # two rank-one updates, N the nearest and B the linear weights.
    last_col = grid @ wx.end.unsqueeze(-1)  # (n, h, 1)
    last_row = wy.end.unsqueeze(1) @ grid  # (n, 1, w)
    out = torch.baddbmm(out, wy.nearest_minus_linear @ last_col,
                        wx.last.unsqueeze(1))
    return torch.baddbmm(
        out, wy.last.unsqueeze(2),
        last_row @ wx.nearest_minus_linear.transpose(1, 2))


class PixelTable(NamedTuple):
    """Render weights (``AxisWeights`` (U, E + 1, M)) of U boxes along one
    axis at their pixels ``first + j`` (j < E) inside the image; rows past
    a box's pixels, the last one included, are zero."""
    weights: AxisWeights
    first: Tensor  # (U,) long


def pixel_table(lo: Tensor, hi: Tensor, pix_lo: Tensor, pix_hi: Tensor,
                img_size: int, mask_size: int,
                convention: str) -> PixelTable:
    """Tabulate, along one axis, the rendering of M-cell masks into boxes.

    Args:
        lo, hi (Tensor): (U,) box edges as in :func:`pixels_to_grid`.
        pix_lo, pix_hi (Tensor): (U,) first and last pixel of each box.
        img_size (int): pixels of the image on this axis; pixels outside
            the image are left out.
        mask_size (int): M.
        convention (str): ``'half_pixel'`` or ``'top_left'``.
    """
    first = pix_lo.clamp(0, img_size - 1)
    last = pix_hi.clamp(max=img_size - 1)
    extent = int((last - first + 1).amax().clamp(min=1))
    steps = torch.arange(extent + 1, dtype=lo.dtype, device=lo.device)
    pixels = first.unsqueeze(1) + steps
    pos, inside = pixels_to_grid(pixels, lo, hi, mask_size, convention)
    weights = axis_weights(
        pos,
        mask_size,
        convention,
        valid=inside & (pixels <= last.unsqueeze(1)))
    return PixelTable(weights, first.long())


def table_rows(table: PixelTable, slots: Tensor, start: int,
               stop: int) -> AxisWeights:
    """Render weights (n, P, M) of boxes ``slots`` (n,) of ``table`` at the
    pixels start..stop (zero where a box has none)."""
    rows_per_box = table.weights.linear.size(1)
    pixels = torch.arange(start, stop + 1, device=slots.device)
    rows = pixels - table.first[slots].unsqueeze(1)
    # Pixels outside a box's pixels read its last (zero) row.
    rows = rows.clamp(-1, rows_per_box - 1) % rows_per_box
    flat = (slots.unsqueeze(1) * rows_per_box + rows).view(-1)

    def take(tab):
        return None if tab is None else tab.flatten(0, 1).index_select(
            0, flat).view(*rows.shape, *tab.shape[2:])

    weights = table.weights
    end = None if weights.end is None else weights.end[slots]
    return AxisWeights(
        take(weights.linear), take(weights.nearest_minus_linear),
        take(weights.last), end)
