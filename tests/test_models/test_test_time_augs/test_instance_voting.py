# Copyright (c) OpenMMLab. All rights reserved.
"""vote_instances against a plain numpy reference on synthetic views."""
import numpy as np
import pytest
import torch

from mnc_mm.models.test_time_augs import vote_instances

H, W = 48, 64


def _iou_plus_one(a, b):
    """IoU of inclusive-end boxes with +1 areas."""
    iw = min(a[2], b[2]) - max(a[0], b[0]) + 1
    ih = min(a[3], b[3]) - max(a[1], b[1]) + 1
    inter = max(iw, 0) * max(ih, 0)
    area = lambda r: (r[2] - r[0] + 1) * (r[3] - r[1] + 1)  # noqa: E731
    return inter / (area(a) + area(b) - inter)


def reference_vote(boxes, scores, labels, masks, nms_thr, merge_iou_thr,
                   mask_thr, max_per_img):
    """Loops over classes, candidates and pixels, in float64."""
    inclusive = boxes.copy()
    inclusive[:, 2:] = np.maximum(boxes[:, 2:] - 1, boxes[:, :2])
    n = len(boxes)
    iou = np.array([[_iou_plus_one(inclusive[i], inclusive[j])
                     for j in range(n)] for i in range(n)])
    kept = []
    for c in sorted(set(labels.tolist())):
        order = [i for i in np.argsort(-scores, kind='stable')
                 if labels[i] == c]
        keep = []
        for i in order:
            if all(iou[i, j] <= nms_thr for j in keep):
                keep.append(i)
        kept += [(c, i) for i in keep]
    if len(kept) > max_per_img:
        cut = sorted((scores[i] for _, i in kept), reverse=True)[
            max_per_img - 1]
        kept = [(c, i) for c, i in kept if scores[i] >= cut]
    results = []
    for c, k in kept:
        voters = [j for j in range(n)
                  if labels[j] == c and iou[k, j] >= merge_iou_thr]
        total = sum(scores[j] for j in voters)
        vote = np.zeros((H, W))
        for j in voters:
            vote += scores[j] / total * masks[j]
        on = vote >= mask_thr
        if not on.any():
            continue
        ys, xs = np.nonzero(on)
        results.append(([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1],
                        scores[k], c, on))
    return results


def synthetic_views(seed, num_views=4):
    """Views of three objects (two of class 0, one of class 1, the class-1
    object overlapping one of class 0): each view's instance is the object
    shifted by up to 2 px with a few flipped pixels, plus a spurious small
    instance per view."""
    rng = np.random.default_rng(seed)
    objects = [((6, 5, 30, 28), 0), ((36, 10, 60, 40), 0),
               ((20, 12, 44, 36), 1)]
    masks, labels = [], []
    for _ in range(num_views):
        for (x1, y1, x2, y2), label in objects:
            dx, dy = rng.integers(-2, 3, size=2)
            m = np.zeros((H, W), bool)
            m[y1 + dy:y2 + dy, x1 + dx:x2 + dx] = True
            m[rng.integers(0, H, 6), rng.integers(0, W, 6)] ^= True
            masks.append(m)
            labels.append(label)
        x, y = rng.integers(0, W - 8), rng.integers(0, H - 8)
        m = np.zeros((H, W), bool)
        m[y:y + 6, x:x + 7] = True
        masks.append(m)
        labels.append(int(rng.integers(0, 2)))
    masks = np.stack(masks)
    boxes = []
    for m in masks:
        ys, xs = np.nonzero(m)
        boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    scores = rng.permutation(np.linspace(0.05, 0.95, len(masks)))
    return (np.array(boxes, np.float64), scores, np.array(labels), masks)


@pytest.mark.parametrize('seed', [0, 1, 2])
@pytest.mark.parametrize('options', [
    dict(nms_thr=0.3, merge_iou_thr=0.5, mask_thr=0.4, max_per_img=100),
    dict(nms_thr=0.5, merge_iou_thr=0.7, mask_thr=0.6, max_per_img=3),
])
def test_matches_numpy_reference(seed, options):
    boxes, scores, labels, masks = synthetic_views(seed)
    out_boxes, out_scores, out_labels, out_masks = vote_instances(
        torch.from_numpy(boxes).float(), torch.from_numpy(scores).float(),
        torch.from_numpy(labels), torch.from_numpy(masks), **options)
    expected = reference_vote(boxes, scores, labels, masks, **options)
    # the three objects survive with the default options
    assert len(expected) >= min(3, options['max_per_img'])
    assert len(out_scores) == len(expected)
    for k, (box, score, label, mask) in enumerate(expected):
        assert out_boxes[k].tolist() == [float(v) for v in box]
        assert out_scores[k].item() == pytest.approx(score, rel=1e-6)
        assert out_labels[k].item() == label
        assert np.array_equal(out_masks[k].numpy(), mask)


def test_votes_recover_the_object_from_noisy_views():
    """Four views with disjoint noise: the vote removes every noise pixel
    (each is on in one view of four, a weight < 0.4)."""
    truth = np.zeros((H, W), bool)
    truth[10:30, 12:40] = True
    masks = np.stack([truth.copy() for _ in range(4)])
    for v in range(4):
        masks[v, 40 + v, 5 + 3 * v] = True  # noise outside
        masks[v, 15, 14 + 5 * v] = False  # a hole inside
    boxes = torch.tensor([[5. + 3 * (v == 0), 10., 40., 41. + v]
                          for v in range(4)])
    out = vote_instances(boxes, torch.tensor([0.9, 0.8, 0.7, 0.6]),
                         torch.zeros(4, dtype=torch.long),
                         torch.from_numpy(masks))
    assert len(out[0]) == 1
    assert np.array_equal(out[3][0].numpy(), truth)
    assert out[0][0].tolist() == [12., 10., 40., 30.]


def test_a_pixel_at_the_threshold_is_on():
    """Two equal-score views, a pixel on in one: vote 0.5, on at
    ``mask_thr=0.5`` (``>=``, like the pasting threshold)."""
    masks = torch.zeros(2, 8, 8, dtype=torch.bool)
    masks[:, 2:6, 2:6] = True
    masks[0, 6, 2] = True
    out = vote_instances(torch.tensor([[2., 2., 6., 7.], [2., 2., 6., 6.]]),
                         torch.tensor([0.5, 0.5]),
                         torch.zeros(2, dtype=torch.long), masks,
                         mask_thr=0.5)
    assert torch.equal(out[3][0], masks[0])
    assert out[0][0].tolist() == [2., 2., 6., 7.]


def test_empty_and_bad_inputs():
    out = vote_instances(torch.zeros(0, 4), torch.zeros(0),
                         torch.zeros(0, dtype=torch.long),
                         torch.zeros(0, 5, 7, dtype=torch.bool))
    assert [tuple(t.shape) for t in out] == [(0, 4), (0, ), (0, ),
                                              (0, 5, 7)]
    with pytest.raises(TypeError, match='masks must be bool'):
        vote_instances(torch.zeros(1, 4), torch.ones(1),
                       torch.zeros(1, dtype=torch.long), torch.ones(1, 5, 7))
    with pytest.raises(ValueError, match='mask_thr must be > 0, got 0'):
        vote_instances(torch.zeros(0, 4), torch.zeros(0),
                       torch.zeros(0, dtype=torch.long),
                       torch.zeros(0, 5, 7, dtype=torch.bool), mask_thr=0)
