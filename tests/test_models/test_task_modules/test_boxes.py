# Copyright (c) OpenMMLab. All rights reserved.
"""+1 box coder, +1 IoU and py-faster-rcnn anchors against the spec."""
import numpy as np
import pytest
import torch

from mnc_mm.models.task_modules import (BboxOverlaps2DPlusOne,
                                        PlusOneDeltaXYWHBBoxCoder,
                                        PyFasterRCNNAnchorGenerator)

# msracver/FCIS lib/rpn/generate_anchor.py, COCO anchors (ratios 0.5, 1, 2 x
# scales 4, 8, 16, 32)
COCO_ANCHORS = [
    (-38, -16, 53, 31), (-84, -40, 99, 55), (-176, -88, 191, 103),
    (-360, -184, 375, 199), (-24, -24, 39, 39), (-56, -56, 71, 71),
    (-120, -120, 135, 135), (-248, -248, 263, 263), (-14, -36, 29, 51),
    (-36, -80, 51, 95), (-80, -168, 95, 183), (-168, -344, 183, 359)
]


def test_anchor_table_and_grid_order():
    gen = PyFasterRCNNAnchorGenerator(strides=[16], ratios=[0.5, 1., 2.],
                                      scales=[4, 8, 16, 32])
    assert gen.base_anchors[0].tolist() == [list(a) for a in COCO_ANCHORS]
    grid = gen.grid_priors([(2, 3)], device='cpu')[0]
    assert grid.shape == (2 * 3 * 12, 4)
    # (h, w, a) order: the cell (y=1, x=2) starts at row (1 * 3 + 2) * 12
    shift = torch.tensor([32., 16., 32., 16.])
    assert torch.equal(grid[5 * 12:6 * 12],
                       torch.tensor(COCO_ANCHORS, dtype=torch.float) + shift)


def _np_decode(boxes, deltas):
    """py-faster-rcnn ``bbox_pred`` (nonlinear_pred)."""
    w = boxes[:, 2] - boxes[:, 0] + 1.0
    h = boxes[:, 3] - boxes[:, 1] + 1.0
    cx, cy = boxes[:, 0] + 0.5 * (w - 1), boxes[:, 1] + 0.5 * (h - 1)
    pcx, pcy = deltas[:, 0] * w + cx, deltas[:, 1] * h + cy
    pw, ph = np.exp(deltas[:, 2]) * w, np.exp(deltas[:, 3]) * h
    return np.stack([pcx - 0.5 * (pw - 1), pcy - 0.5 * (ph - 1),
                     pcx + 0.5 * (pw - 1), pcy + 0.5 * (ph - 1)], 1)


def test_coder_matches_py_faster_rcnn_and_round_trips():
    rng = np.random.default_rng(0)
    boxes = np.concatenate([rng.uniform(0, 50, (16, 2)),
                            rng.uniform(60, 120, (16, 2))], 1)
    deltas = rng.normal(0, 1.5, (16, 4))  # large dw: no clamp expected
    stds = (0.2, 0.2, 0.5, 0.5)
    coder = PlusOneDeltaXYWHBBoxCoder(target_stds=stds)
    out = coder.decode(torch.from_numpy(boxes),
                       torch.from_numpy(deltas / np.array(stds)))
    np.testing.assert_allclose(out.numpy(), _np_decode(boxes, deltas),
                               rtol=1e-10)
    # the encode is mmdet's LegacyDeltaXYWHBBoxCoder's, which computes in
    # float32
    back = coder.encode(torch.from_numpy(boxes), out)
    assert back.dtype == torch.float32
    np.testing.assert_allclose(back.numpy(), deltas / np.array(stds),
                               rtol=1e-5, atol=1e-5)
    clipped = coder.decode(torch.from_numpy(boxes),
                           torch.from_numpy(deltas), max_shape=(70, 90))
    assert clipped[:, 0::2].max() <= 89 and clipped[:, 1::2].max() <= 69
    assert clipped.min() >= 0


def test_coder_is_differentiable_and_checks():
    coder = PlusOneDeltaXYWHBBoxCoder()
    boxes = torch.tensor([[2., 3., 20., 30.]], dtype=torch.double,
                         requires_grad=True)
    deltas = torch.tensor([[.1, -.2, .3, .1]], dtype=torch.double,
                          requires_grad=True)
    assert torch.autograd.gradcheck(coder.decode, (boxes, deltas))
    with pytest.raises(ValueError, match='target_stds'):
        PlusOneDeltaXYWHBBoxCoder(target_stds=(1, 1, 0, 1))
    with pytest.raises(ValueError, match='4 values'):
        coder.decode(boxes, deltas[:, :3])


def test_iou_plus_one():
    iou = BboxOverlaps2DPlusOne()
    a = torch.tensor([[0., 0., 9., 9.]])
    b = torch.tensor([[5., 0., 14., 9.], [10., 10., 20., 20.],
                      [0., 0., 9., 9.]])
    # 50 px shared of 100 + 100 - 50
    assert torch.allclose(iou(a, b), torch.tensor([[50 / 150, 0., 1.]]))
    assert torch.allclose(iou(b, b, is_aligned=True), torch.ones(3))


def test_iou_plus_one_equals_py_faster_rcnn_bbox_overlaps():
    """Against py-faster-rcnn's ``bbox_overlaps`` (utils/cython_bbox.pyx)
    written out in numpy: random boxes, some disjoint, some degenerate."""
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 60, (2, 40, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(0, 30, (2, 40, 2))], 2)
    a, b = boxes

    def area(x):
        return (x[:, 2] - x[:, 0] + 1) * (x[:, 3] - x[:, 1] + 1)

    iw = (np.minimum(a[:, None, 2], b[None, :, 2]) -
          np.maximum(a[:, None, 0], b[None, :, 0]) + 1).clip(min=0)
    ih = (np.minimum(a[:, None, 3], b[None, :, 3]) -
          np.maximum(a[:, None, 1], b[None, :, 1]) + 1).clip(min=0)
    inter = iw * ih
    expected = inter / (area(a)[:, None] + area(b)[None] - inter)
    iou = BboxOverlaps2DPlusOne()
    ta, tb = torch.from_numpy(a).float(), torch.from_numpy(b).float()
    np.testing.assert_allclose(iou(ta, tb).numpy(), expected, rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(
        iou(ta, tb, is_aligned=True).numpy(), np.diag(expected), rtol=1e-5,
        atol=1e-6)
    assert (expected == 0).any() and (expected > 0.3).any()
