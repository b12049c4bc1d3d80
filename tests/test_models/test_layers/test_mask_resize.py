# Copyright (c) OpenMMLab. All rights reserved.
"""The shared half-pixel resize against F.interpolate (float32 and float64)
and cv2."""

import cv2
import numpy as np
import pytest
import torch
from torch.nn import functional as F

from mnc_mm.models.layers.mask_resize import (box_row_chunks,
                                              half_pixel_source, linear_taps,
                                              resize_box_rows)


def _resize_each(masks, heights, widths):
    """resize_box_rows split back into one (h, w) array per mask."""
    values, box, row = resize_box_rows(masks, heights, widths,
                                       int(heights.sum()),
                                       int(widths.max()))
    starts = (heights.cumsum(0) - heights).tolist()
    assert torch.equal(box, torch.repeat_interleave(
        torch.arange(len(masks)), heights))
    assert torch.equal(row, torch.cat([torch.arange(h) for h in heights]))
    out = []
    for start, h, w in zip(starts, heights.tolist(), widths.tolist()):
        block = values[start:start + h]
        # the padding repeats the last column, bit for bit
        assert torch.equal(block[:, w:],
                           block[:, w - 1:w].expand(h, block.size(1) - w))
        out.append(block[:, :w])
    return out


def test_half_pixel_source():
    dst = torch.arange(4.)
    torch.testing.assert_close(
        half_pixel_source(dst, 2, 4), torch.tensor([-.25, .25, .75, 1.25]))
    # start is added before the 0.5 is taken off, as the FCIS kernels do
    start = torch.tensor(1e7)
    assert torch.equal(
        half_pixel_source(dst, 3., 1., start=start),
        start + (dst + 0.5) * 3. - 0.5)
    low, high, frac = linear_taps(torch.tensor([-0.3, 0.25, 2.5, 3.2]), 4)
    assert low.tolist() == [0, 0, 2, 3]
    assert high.tolist() == [1, 1, 3, 3]
    assert frac.tolist() == [0., 0.25, 0.5, 0.]


@pytest.mark.parametrize('mask_size', [1, 5, 21])
def test_matches_interpolate_in_float64(mask_size):
    """In float64 F.interpolate (bilinear, align_corners=False) computes
    cv2's INTER_LINEAR formula, ``(dst + 0.5) * in / out - 0.5`` clamped to
    the border, to the last bits."""
    gen = torch.Generator().manual_seed(mask_size)
    heights = torch.tensor([1, 3, 21, 40, 7])
    widths = torch.tensor([2, 50, 21, 9, 1])
    masks = torch.rand(5, mask_size, mask_size, generator=gen,
                       dtype=torch.float64)
    for mask, got, h, w in zip(masks, _resize_each(masks, heights, widths),
                               heights.tolist(), widths.tolist()):
        # the scale m / h is a reciprocal times m: last-bit differences
        expected = F.interpolate(mask[None, None], size=(h, w),
                                 mode='bilinear', align_corners=False)[0, 0]
        np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=0,
                                   atol=1e-14)


def test_matches_interpolate_and_cv2():
    """F.interpolate(bilinear, align_corners=False) and cv2 INTER_LINEAR
    are the same resize (half-pixel, edge clamp, no antialias) up to
    rounding: their float32 arithmetic differs in the last bits."""
    gen = torch.Generator().manual_seed(0)
    heights = torch.randint(1, 90, (40, ), generator=gen)
    widths = torch.randint(1, 90, (40, ), generator=gen)
    masks = torch.rand(40, 21, 21, generator=gen)
    flips = total = 0
    for mask, got, h, w in zip(masks, _resize_each(masks, heights, widths),
                               heights.tolist(), widths.tolist()):
        expected = F.interpolate(
            mask[None, None], size=(h, w), mode='bilinear',
            align_corners=False)[0, 0]
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
        ref = cv2.resize(mask.numpy(), (w, h),
                         interpolation=cv2.INTER_LINEAR).reshape(h, w)
        torch.testing.assert_close(got, torch.from_numpy(ref), rtol=0,
                                   atol=1e-5)
        flips += int(((got >= 0.4) != (expected >= 0.4)).sum())
        total += h * w
    assert flips <= total * 1e-4


def test_box_row_chunks():
    gen = torch.Generator().manual_seed(0)
    heights = torch.randint(1, 60, (50, ), generator=gen)
    widths = torch.randint(1, 60, (50, ), generator=gen)
    heights[0], widths[0] = 100, 90  # alone bigger than max_cells
    chunks = box_row_chunks(heights, widths, max_cells=3000)
    assert len(chunks) > 2
    seen = torch.cat([index for index, _, _ in chunks])
    assert sorted(seen.tolist()) == list(range(50))
    for index, num_rows, win_w in chunks:
        assert num_rows == int(heights[index].sum())
        assert win_w == int(widths[index].max())
        if len(index) > 1:
            cells = num_rows * win_w
            assert cells <= 3000
            assert cells <= 2 * int((heights * widths)[index].sum())
    # by default one group here
    assert len(box_row_chunks(heights[1:], widths[1:])) <= 2
