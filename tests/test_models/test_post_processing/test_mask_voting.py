# Copyright (c) OpenMMLab. All rights reserved.
"""Mask voting against float64 NumPy ports of the official GPU voting of
FCIS (msracver/FCIS lib/mask/mask_transform.py gpu_mask_voting +
mv_kernel.cu) and MNC (daijifeng001/MNC lib/transform/mask_transform.py
gpu_mask_voting + lib/nms/mv_kernel.cu), and hand-computed cases."""
import math

import numpy as np
import pytest
import torch

from mnc_mm.models.post_processing import (VOTING_PRESETS, MaskVoting,
                                           mask_voting)

FCIS = VOTING_PRESETS['fcis']
MNC = VOTING_PRESETS['mnc']


# ---------------------------------------------------------------------------
# Reference: literal loops over the official code paths.
def ref_iou(a, b):
    """devIoU / bbox_overlaps: +1 areas."""
    iw = min(a[2], b[2]) - max(a[0], b[0]) + 1
    ih = min(a[3], b[3]) - max(a[1], b[1]) + 1
    if iw <= 0 or ih <= 0:
        return 0.
    union = ((a[2] - a[0] + 1) * (a[3] - a[1] + 1) +
             (b[2] - b[0] + 1) * (b[3] - b[1] + 1) - iw * ih)
    return iw * ih / union


def ref_nms(boxes, scores, thresh):
    """gpu_nms: sort by score, greedy, suppress IoU > thresh."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    keep, suppressed = [], set()
    for pos, i in enumerate(order):
        if i in suppressed:
            continue
        keep.append(i)
        for j in order[pos + 1:]:
            if ref_iou(boxes[i], boxes[j]) > thresh:
                suppressed.add(j)
    return keep


def fcis_bilinear(data, y, x):
    """FCIS mv_kernel.cu bilinear_interpolate."""
    height, width = data.shape
    y, x = max(y, 0.), max(x, 0.)
    y_lo, x_lo = int(y), int(x)
    if y_lo >= height - 1:
        y_hi = y_lo = height - 1
        y = float(y_lo)
    else:
        y_hi = y_lo + 1
    if x_lo >= width - 1:
        x_hi = x_lo = width - 1
        x = float(x_lo)
    else:
        x_hi = x_lo + 1
    ly, lx = y - y_lo, x - x_lo
    hy, hx = 1 - ly, 1 - lx
    return (hy * hx * data[y_lo, x_lo] + hy * lx * data[y_lo, x_hi] +
            ly * hx * data[y_hi, x_lo] + ly * lx * data[y_hi, x_hi])


def mnc_bilinear(data, y, x):
    """MNC mv_kernel.cu: bilinear, but nearest when floor(x) or floor(y)
    is the last row/column of ``data``."""
    height, width = data.shape
    y0, x0 = math.floor(y), math.floor(x)
    if x0 == width - 1 or y0 == height - 1:
        return data[y0, x0]
    ly, lx = y - y0, x - x0
    return ((1 - lx) * (1 - ly) * data[y0, x0] + lx * (1 - ly) *
            data[y0, x0 + 1] + (1 - lx) * ly * data[y0 + 1, x0] +
            lx * ly * data[y0 + 1, x0 + 1])


def ref_render(box, mask, height, width, variant):
    """mask_render: the mask drawn into its box on the image canvas."""
    size = mask.shape[0]
    x1, y1, x2, y2 = box
    out = np.zeros((height, width))
    for h in range(height):
        for w in range(width):
            if w < x1 or w > x2 or h < y1 or h > y2:
                continue
            ratio_w = size / (x2 - x1 + 1.)
            ratio_h = size / (y2 - y1 + 1.)
            if variant == 'fcis':
                u = (w - x1 + 0.5) * ratio_w - 0.5
                v = (h - y1 + 0.5) * ratio_h - 0.5
                out[h, w] = fcis_bilinear(mask, v, u)
            else:
                out[h, w] = mnc_bilinear(mask, (h - y1) * ratio_h,
                                         (w - x1) * ratio_w)
    return out


def ref_resize(image, box, size, variant):
    """mask_resize: the image inside the tight box sampled at size^2."""
    x1, y1, x2, y2 = box
    ratio_w = (x2 - x1 + 1.) / size
    ratio_h = (y2 - y1 + 1.) / size
    out = np.zeros((size, size))
    for h in range(size):
        for w in range(size):
            if variant == 'fcis':
                out[h, w] = fcis_bilinear(image,
                                          y1 + (h + 0.5) * ratio_h - 0.5,
                                          x1 + (w + 0.5) * ratio_w - 0.5)
            else:
                out[h, w] = mnc_bilinear(image, y1 + h * ratio_h,
                                         x1 + w * ratio_w)
    return out


def ref_tight_box(vote, thresh, strict):
    height, width = vote.shape
    on = vote > thresh if strict else vote >= thresh
    cols, rows = np.where(on.any(0))[0], np.where(on.any(1))[0]
    x1, x2 = (cols[0], cols[-1]) if len(cols) else (width // 2, width // 2)
    y1, y2 = (rows[0], rows[-1]) if len(rows) else (height // 2,
                                                    height // 2)
    return x1, y1, x2, y2


def ref_select(boxes, scores, variant, max_per_class=100, max_per_img=100):
    """Per-class NMS, per-class cap and global cut of gpu_mask_voting:
    {class: kept box indices} and the score threshold."""
    kept = {}
    all_scores = []
    for c in range(1, scores.shape[1]):
        inds = ref_nms(boxes, scores[:, c], 0.3)[:max_per_class]
        kept[c] = inds
        all_scores.extend(scores[inds, c])
    sorted_scores = np.sort(all_scores)[::-1]
    thresh = sorted_scores[min(len(sorted_scores), max_per_img) - 1]
    if variant == 'fcis':
        thresh = max(thresh, 1e-3)
    return kept, thresh


def ref_mask_voting(boxes, masks, scores, img_shape, variant,
                    max_per_class=100, max_per_img=100):
    """gpu_mask_voting of FCIS or MNC, as (boxes, scores, labels, masks)
    in per-class order."""
    height, width = img_shape
    num_classes = scores.shape[1]
    kept, thresh = ref_select(boxes, scores, variant, max_per_class,
                              max_per_img)
    # Rendering: FCIS renders np.round(boxes), MNC the float boxes.
    render_boxes = np.round(boxes) if variant == 'fcis' else boxes
    rendered = [
        ref_render(b, m, height, width, variant)
        for b, m in zip(render_boxes, masks)
    ]
    if variant == 'fcis':
        rendered = [(r >= 0.4).astype(float) for r in rendered]
    out = ([], [], [], [])
    for c in range(1, num_classes):
        for i in kept[c]:
            if scores[i, c] < thresh:
                continue
            cand = [j for j in range(len(boxes))
                    if ref_iou(boxes[j], boxes[i]) >= 0.5]
            weights = scores[cand, c] / sum(scores[cand, c])
            vote = sum(w * rendered[j] for w, j in zip(weights, cand))
            box = ref_tight_box(vote, 0.4, strict=variant == 'mnc')
            if variant == 'fcis' and (box[2] <= box[0] or box[3] <= box[1]):
                continue
            out[0].append(box)
            out[1].append(scores[i, c])
            out[2].append(c - 1)
            out[3].append(ref_resize(vote, box, masks.shape[1], variant))
    return (np.array(out[0], dtype=float).reshape(-1, 4), np.array(out[1]),
            np.array(out[2], dtype=int),
            np.array(out[3]).reshape(-1, masks.shape[1], masks.shape[1]))


# ---------------------------------------------------------------------------
def random_instances(seed, num_base=6, mask_size=5, num_classes=4,
                     img_shape=(40, 50)):
    """2 * num_base boxes (bases + jittered copies, some with .5 corners,
    some crossing the image border), masks and softmax scores."""
    rng = np.random.default_rng(seed)
    height, width = img_shape
    xy = rng.uniform([-4, -4], [width - 10, height - 10], (num_base, 2))
    wh = rng.uniform(6, 25, (num_base, 2))
    base = np.concatenate([xy, xy + wh], 1)
    base[::3] = np.round(base[::3] * 2) / 2  # some .5 coordinates
    boxes = np.concatenate([base, base + rng.normal(0, 1.5, base.shape)])
    # Smooth-ish masks so that the thresholds cut through them.
    grid = np.linspace(-1, 1, mask_size)
    radius = np.hypot(grid[None, :, None], grid[None, None, :])
    masks = np.clip(
        1.1 - radius * rng.uniform(0.6, 1.2, (2 * num_base, 1, 1)) +
        rng.uniform(-0.3, 0.3, (2 * num_base, mask_size, mask_size)), 0, 1)
    logits = rng.normal(0, 2, (2 * num_base, num_classes))
    scores = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return boxes, masks, scores


def as_tensors(*arrays, dtype=torch.float64, device='cpu'):
    return [torch.tensor(a, dtype=dtype, device=device) for a in arrays]


def assert_matches_reference(result, expected):
    boxes, scores, labels, masks = (t.cpu() for t in result)
    assert labels.dtype == torch.long
    assert boxes.tolist() == expected[0].tolist()
    assert labels.tolist() == expected[2].tolist()
    np.testing.assert_array_equal(scores.numpy(), expected[1])
    np.testing.assert_allclose(masks.numpy(), expected[3], atol=1e-5)


@pytest.mark.parametrize('variant', ['fcis', 'mnc'])
@pytest.mark.parametrize('seed,mask_size,caps', [
    (0, 5, {}),
    (1, 21, {}),
    (2, 5, dict(max_per_class=2, max_per_img=4)),
    (3, 7, {}),
])
def test_matches_official_kernels(variant, seed, mask_size, caps):
    img_shape = (40, 50)
    boxes, masks, scores = random_instances(seed, mask_size=mask_size)
    expected = ref_mask_voting(boxes, masks, scores, img_shape, variant,
                               **caps)
    assert len(expected[0]) > 0
    preset = FCIS if variant == 'fcis' else MNC
    result = mask_voting(*as_tensors(boxes, masks, scores), img_shape,
                         **preset, **caps)
    assert_matches_reference(result, expected)


@pytest.mark.parametrize('variant', ['fcis', 'mnc'])
@pytest.mark.parametrize('max_per_class,max_per_img', [(100, 5), (3, 7),
                                                       (2, 100)])
def test_selection_matches_official_with_many_boxes(variant, max_per_class,
                                                    max_per_img):
    """60 boxes: the NMS runs over more ranks than one bound-raising step
    of the implementation."""
    boxes, masks, scores = random_instances(6, num_base=30, num_classes=6)
    scores[:, 1:] *= np.where(scores[:, 1:] < 0.05, 0.01, 1.)  # < 1e-3 too
    kept, thresh = ref_select(boxes, scores, variant, max_per_class,
                              max_per_img)
    expected = [(scores[i, c], c - 1) for c in kept for i in kept[c]
                if scores[i, c] >= thresh]
    preset = FCIS if variant == 'fcis' else MNC
    _, det_scores, det_labels, _ = mask_voting(
        *as_tensors(boxes, masks, scores), (40, 50), **{
            **preset, 'drop_degenerate': False
        },
        max_per_class=max_per_class,
        max_per_img=max_per_img)
    assert list(zip(det_scores.tolist(), det_labels.tolist())) == expected


def test_official_kernels_differ():
    """The two switches sets give different results on the same input
    (otherwise the comparison above would not tell them apart)."""
    boxes, masks, scores = as_tensors(*random_instances(0))
    fcis = mask_voting(boxes, masks, scores, (40, 50), **FCIS)
    mnc = mask_voting(boxes, masks, scores, (40, 50), **MNC)
    assert not (fcis[0].shape == mnc[0].shape
                and torch.equal(fcis[0], mnc[0])
                and torch.allclose(fcis[3], mnc[3]))


def test_float32_matches_float64():
    arrays = random_instances(4, mask_size=21)
    result64 = mask_voting(*as_tensors(*arrays), (40, 50))
    result32 = mask_voting(*as_tensors(*arrays, dtype=torch.float32),
                           (40, 50))
    assert result32[3].dtype == torch.float32
    assert torch.equal(result32[0].double(), result64[0])
    assert torch.equal(result32[2], result64[2])
    torch.testing.assert_close(result32[3].double(), result64[3],
                               atol=1e-5, rtol=0)


# ---------------------------------------------------------------------------
# Hand-computed cases (M = 5, image 20 x 20).
def constant_masks(*values, size=5):
    return torch.stack(
        [torch.full((size, size), v, dtype=torch.float64) for v in values])


@pytest.mark.parametrize('preset,value', [(FCIS, 0.9 / 1.6),
                                          (MNC, (0.9 * 0.5 + 0.7 * 0.3) / 1.6)
                                          ])
def test_two_identical_boxes(preset, value):
    """Box 1 is suppressed by box 0 and votes with weight 0.7 / 1.6. FCIS
    binarises (0.5 -> 1, 0.3 -> 0): vote 0.5625; MNC averages the soft
    masks: 0.4125 (> 0.4, so the box stays)."""
    boxes = torch.tensor([[4., 4., 13., 13.]] * 2, dtype=torch.float64)
    scores = torch.tensor([[0.1, 0.9], [0.3, 0.7]], dtype=torch.float64)
    det_boxes, det_scores, det_labels, det_masks = mask_voting(
        boxes, constant_masks(0.5, 0.3), scores, (20, 20), **preset)
    assert det_boxes.tolist() == [[4., 4., 13., 13.]]
    assert det_scores.tolist() == [0.9]
    assert det_labels.tolist() == [0]
    torch.testing.assert_close(det_masks, torch.full_like(det_masks, value))


@pytest.mark.parametrize('score1,tight_y2,mask_rows', [
    (0.6, 14, [1, 1, 1, 3 / 7, 3 / 7]),
    (0.5, 9, [1, 1, 1, 1, 1]),
])
def test_tight_box_follows_the_weights(score1, tight_y2, mask_rows):
    """Box 1 = box 0 extended by 5 rows (IoU 2/3). Its rows 10-14 get the
    vote w1 = s1 / (0.8 + s1): 3/7 >= 0.4 extends the tight box, 5/13 does
    not. In the 10 x 15 box the 5 sample rows sit at y = 1, 4, 7, 10, 13."""
    boxes = torch.tensor([[0., 0., 9., 9.], [0., 0., 9., 14.]],
                         dtype=torch.float64)
    scores = torch.tensor([[0.2, 0.8], [0.4, score1]], dtype=torch.float64)
    det_boxes, det_scores, _, det_masks = mask_voting(
        boxes, constant_masks(1., 1.), scores, (20, 20))
    assert det_boxes.tolist() == [[0., 0., 9., tight_y2]]
    assert det_scores.tolist() == [0.8]
    expected = torch.tensor(mask_rows, dtype=torch.float64)[:, None]
    torch.testing.assert_close(det_masks[0], expected.expand(5, 5))


def test_labels_are_zero_based_and_ordered_by_label():
    boxes = torch.tensor([[2., 2., 11., 11.]], dtype=torch.float64)
    scores = torch.tensor([[0.1, 0.1, 0.8]], dtype=torch.float64)
    _, det_scores, det_labels, _ = mask_voting(boxes, constant_masks(1.),
                                               scores, (20, 20))
    assert det_labels.tolist() == [0, 1]
    assert det_scores.tolist() == [0.1, 0.8]


def test_degenerate_results():
    """An all-zero vote collapses to the point (W // 2, H // 2); a one-
    column vote has x2 == x1. FCIS drops both, MNC keeps them."""
    boxes = torch.tensor([[2., 2., 11., 11.], [15., 3., 15., 12.]],
                         dtype=torch.float64)
    scores = torch.tensor([[0.1, 0.9], [0.2, 0.8]], dtype=torch.float64)
    masks = constant_masks(0., 1.)
    img_shape = (20, 30)
    assert mask_voting(boxes, masks, scores, img_shape)[0].shape == (0, 4)
    det_boxes, det_scores, _, det_masks = mask_voting(
        boxes, masks, scores, img_shape, drop_degenerate=False)
    assert det_boxes.tolist() == [[15., 10., 15., 10.], [15., 3., 15., 12.]]
    assert det_scores.tolist() == [0.9, 0.8]
    assert det_masks[0].abs().max() == 0
    # The 1-px-wide tight box samples x = 14.6, 14.8, ..., 15.4 between the
    # empty columns 14, 16 and column 15.
    torch.testing.assert_close(
        det_masks[1],
        torch.tensor([[0.6, 0.8, 1., 0.8, 0.6]],
                     dtype=torch.float64).expand(5, 5))
    assert mask_voting(boxes, masks, scores, img_shape,
                       **MNC)[0].tolist() == [[15., 10., 15., 10.],
                                              [15., 3., 15., 12.]]


def check_empty(result, mask_size, dtype):
    boxes, scores, labels, masks = result
    assert boxes.shape == (0, 4) and boxes.dtype == dtype
    assert scores.shape == (0, ) and scores.dtype == dtype
    assert labels.shape == (0, ) and labels.dtype == torch.long
    assert masks.shape == (0, mask_size, mask_size) and masks.dtype == dtype


@pytest.mark.parametrize('preset', [FCIS, MNC])
def test_no_boxes(preset):
    result = mask_voting(torch.zeros(0, 4), torch.zeros(0, 21, 21),
                         torch.zeros(0, 81), (30, 40), **preset)
    check_empty(result, 21, torch.float32)


def test_score_floor():
    """FCIS keeps nothing below 1e-3; MNC has no floor."""
    boxes = torch.tensor([[2., 2., 11., 11.]], dtype=torch.float64)
    scores = torch.tensor([[0.9999, 1e-4]], dtype=torch.float64)
    check_empty(mask_voting(boxes, constant_masks(1.), scores, (20, 20)), 5,
                torch.float64)
    det_boxes, det_scores, _, _ = mask_voting(boxes, constant_masks(1.),
                                              scores, (20, 20), **MNC)
    assert det_boxes.tolist() == [[2., 2., 11., 11.]]
    assert det_scores.tolist() == [1e-4]


def test_mask_voting_class_uses_presets():
    arrays = as_tensors(*random_instances(5))
    from mmdet.registry import TASK_UTILS
    voting = TASK_UTILS.build(
        dict(type='MaskVoting', preset='mnc', max_per_img=3))
    assert isinstance(voting, MaskVoting)
    assert voting.options == {**MNC, 'max_per_img': 3}
    result = voting(*arrays, (40, 50))
    expected = mask_voting(*arrays, (40, 50), **MNC, max_per_img=3)
    assert len(result[0]) == 3
    for got, want in zip(result, expected):
        assert torch.equal(got, want)
    assert MaskVoting().options == FCIS
    with pytest.raises(ValueError, match='preset'):
        MaskVoting(preset='mrcnn')
    with pytest.raises(TypeError):
        MaskVoting(nms_threshold=0.5)
    with pytest.raises(ValueError, match='render'):
        MaskVoting(render='corner')


def test_input_errors():
    boxes, masks, scores = (torch.zeros(3, 4), torch.zeros(3, 5, 5),
                            torch.zeros(3, 4))
    with pytest.raises(ValueError, match=r'boxes must be \(N, 4\)'):
        mask_voting(torch.zeros(3, 5), masks, scores, (10, 10))
    with pytest.raises(ValueError, match='masks must be'):
        mask_voting(boxes, torch.zeros(2, 5, 5), scores, (10, 10))
    with pytest.raises(ValueError, match='masks must be'):
        mask_voting(boxes, torch.zeros(3, 5, 4), scores, (10, 10))
    with pytest.raises(ValueError, match='scores must be'):
        mask_voting(boxes, masks, torch.zeros(4, 4), (10, 10))
    with pytest.raises(ValueError, match='C >= 2'):
        mask_voting(boxes, masks, torch.zeros(3, 1), (10, 10))
    with pytest.raises(TypeError, match='scores must be a floating'):
        mask_voting(boxes, masks, torch.zeros(3, 4, dtype=torch.long),
                    (10, 10))
    with pytest.raises(ValueError, match='device'):
        mask_voting(boxes, masks.to('meta'), scores, (10, 10))
    with pytest.raises(ValueError, match='img_shape'):
        mask_voting(boxes, masks, scores, (0, 10))
    with pytest.raises(ValueError, match='img_shape'):
        mask_voting(boxes, masks, scores, (10, ))
    with pytest.raises(TypeError, match='img_shape'):
        mask_voting(boxes, masks, scores, (10.5, 10))
    with pytest.raises(ValueError, match='mask_thr'):
        mask_voting(boxes, masks, scores, (10, 10), mask_thr=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
@pytest.mark.parametrize('variant', ['fcis', 'mnc'])
def test_cuda_matches_official_kernels(variant):
    img_shape = (40, 50)
    boxes, masks, scores = random_instances(1, mask_size=21)
    expected = ref_mask_voting(boxes, masks, scores, img_shape, variant)
    preset = FCIS if variant == 'fcis' else MNC
    result = mask_voting(*as_tensors(boxes, masks, scores, device='cuda'),
                         img_shape, **preset)
    assert all(t.device.type == 'cuda' for t in result)
    assert_matches_reference(result, expected)
