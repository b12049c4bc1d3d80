# Copyright (c) OpenMMLab. All rights reserved.
"""Mask pasting against a float64 NumPy port of the official evaluators
(FCIS lib/utils/mask_voc2coco.py after clip_boxes; MNC
lib/utils/voc_eval.py) with cv2.resize INTER_LINEAR written out."""
import math

import numpy as np
import pytest
import torch

from mnc_mm.models.post_processing import paste_masks


def cv2_resize_linear(src, out_w, out_h):
    """cv2.resize(src, (out_w, out_h)) INTER_LINEAR: half-pixel source
    coordinates, clamped to the border."""
    in_h, in_w = src.shape

    def taps(dst, in_size, out_size):
        f = (dst + 0.5) * (in_size / out_size) - 0.5
        s = math.floor(f)
        f -= s
        if s < 0:
            f, s = 0., 0
        if s >= in_size - 1:
            f, s = 0., in_size - 1
        return s, min(s + 1, in_size - 1), f

    out = np.zeros((out_h, out_w))
    for y in range(out_h):
        y0, y1, fy = taps(y, in_h, out_h)
        for x in range(out_w):
            x0, x1, fx = taps(x, in_w, out_w)
            out[y, x] = ((1 - fy) * ((1 - fx) * src[y0, x0] + fx * src[y0, x1])
                         + fy * ((1 - fx) * src[y1, x0] + fx * src[y1, x1]))
    return out


def ref_paste(masks, boxes, img_shape, binarize_first):
    height, width = img_shape
    out = np.zeros((len(masks), height, width), dtype=bool)
    for k, (mask, box) in enumerate(zip(masks, boxes)):
        if box[2] < 0 or box[3] < 0 or box[0] > width - 1 or box[1] > (
                height - 1):
            # Documented deviation: the clip would paste a border strip.
            continue
        box = box.copy()
        box[0::2] = np.clip(box[0::2], 0, width - 1)
        box[1::2] = np.clip(box[1::2], 0, height - 1)
        x1, y1, x2, y2 = np.round(box).astype(int)
        if binarize_first:
            mask = (mask >= 0.4).astype(float)
        resized = cv2_resize_linear(mask, x2 - x1 + 1, y2 - y1 + 1)
        out[k, y1:y2 + 1, x1:x2 + 1] = resized >= 0.4
    return out


@pytest.mark.parametrize('binarize_first', [False, True])
@pytest.mark.parametrize('mask_size', [5, 21])
def test_matches_reference(binarize_first, mask_size):
    rng = np.random.default_rng(mask_size)
    img_shape = (40, 50)
    xy = rng.uniform([-8, -8], [45, 35], (10, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(1, 30, (10, 2))], 1)
    boxes[::2] = np.round(boxes[::2] * 2) / 2  # .5 corners
    masks = rng.uniform(0, 1, (10, mask_size, mask_size))
    expected = ref_paste(masks, boxes, img_shape, binarize_first)
    result = paste_masks(
        torch.tensor(masks), torch.tensor(boxes), img_shape,
        binarize_first=binarize_first)
    assert result.dtype == torch.bool and result.shape == (10, 40, 50)
    assert np.array_equal(result.numpy(), expected)


def test_rounding_is_half_to_even():
    """x1 = 2.5 -> 2 and x2 = 7.5 -> 8 (np.round), not 3 and 8."""
    canvas = paste_masks(
        torch.ones(1, 5, 5), torch.tensor([[2.5, 1.5, 7.5, 4.5]]), (8, 12))
    cols = canvas[0].any(0).nonzero()[:, 0]
    rows = canvas[0].any(1).nonzero()[:, 0]
    assert cols.tolist() == list(range(2, 9))
    assert rows.tolist() == list(range(2, 5))
    assert canvas[0].sum() == 7 * 3


def test_box_partly_outside_is_clipped_then_resized():
    """Box (-5, -5, 9, 9) becomes (0, 0, 9, 9) and the whole mask is
    squeezed into it: columns 0-1 of the 4 x 4 mask cover x = 0..4 (x = 4
    samples 1.3: 0.7 * 1 + 0.3 * 0 >= 0.4)."""
    mask = torch.zeros(1, 4, 4)
    mask[0, :, :2] = 1
    canvas = paste_masks(mask, torch.tensor([[-5., -5., 9., 9.]]), (20, 20))
    expected = torch.zeros(20, 20, dtype=torch.bool)
    expected[0:10, 0:5] = True
    assert torch.equal(canvas[0], expected)


def test_out_of_image_and_degenerate_boxes_are_empty():
    boxes = torch.tensor([[25., 2., 30., 8.],  # right of the image
                          [2., -9., 8., -1.],  # above it
                          [6., 2., 4., 8.],  # x2 < x1
                          [2., 2., 8., 8.]])
    canvas = paste_masks(torch.ones(4, 5, 5), boxes, (10, 20))
    assert canvas[:3].sum() == 0
    assert canvas[3].sum() == 49


def test_binarize_first_differs():
    """Row [0.45, 0.1] resized to 4 px: soft 0.45, 0.3625, 0.1875, 0.1 ->
    1 pixel on; binarised first [1, 0] -> 1, 0.75, 0.25, 0 -> 2 on. Row
    [0.39, 0.9]: soft 0.39, 0.5175, 0.7725, 0.9 -> 3 on; binarised [0, 1]
    -> 2 on."""
    masks = torch.tensor([[[0.45, 0.1]] * 2, [[0.39, 0.9]] * 2])
    boxes = torch.tensor([[0., 0., 3., 1.]] * 2)
    soft = paste_masks(masks, boxes, (2, 4))
    hard = paste_masks(masks, boxes, (2, 4), binarize_first=True)
    assert soft[:, 0].tolist() == [[True, False, False, False],
                                   [False, True, True, True]]
    assert hard[:, 0].tolist() == [[True, True, False, False],
                                   [False, False, True, True]]


def test_empty_and_errors():
    canvas = paste_masks(torch.zeros(0, 21, 21), torch.zeros(0, 4), (6, 7))
    assert canvas.shape == (0, 6, 7) and canvas.dtype == torch.bool
    with pytest.raises(ValueError, match='boxes must be'):
        paste_masks(torch.zeros(2, 5, 5), torch.zeros(2, 3), (6, 7))
    with pytest.raises(ValueError, match='masks must be'):
        paste_masks(torch.zeros(3, 5, 5), torch.zeros(2, 4), (6, 7))
    with pytest.raises(TypeError, match='masks must be a floating'):
        paste_masks(torch.zeros(2, 5, 5, dtype=torch.bool),
                    torch.zeros(2, 4), (6, 7))
    with pytest.raises(ValueError, match='img_shape'):
        paste_masks(torch.zeros(2, 5, 5), torch.zeros(2, 4), (6, -7))


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_cuda_matches_reference():
    rng = np.random.default_rng(0)
    xy = rng.uniform(-5, 30, (6, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(1, 20, (6, 2))], 1)
    masks = rng.uniform(0, 1, (6, 21, 21))
    expected = ref_paste(masks, boxes, (40, 50), True)
    result = paste_masks(
        torch.tensor(masks, device='cuda'),
        torch.tensor(boxes, device='cuda'), (40, 50),
        binarize_first=True)
    assert np.array_equal(result.cpu().numpy(), expected)
