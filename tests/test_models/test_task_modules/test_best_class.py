# Copyright (c) OpenMMLab. All rights reserved.
"""The test-time best class and the regression by it (FCIS's second pass,
MNC's stage bridge) on hand-computed boxes."""
import pytest
import torch

from mnc_mm.models.task_modules import (PlusOneDeltaXYWHBBoxCoder,
                                       best_class, regress_by_best_class)

STDS = (0.1, 0.1, 0.2, 0.2)


def _case():
    """roi (10, 20, 109, 69), 3 classes; class 2 holds the normalised
    deltas of (0.1, -0.2, 0.3, 0); the background column scores highest."""
    rois = torch.tensor([[10., 20., 109., 69.]], requires_grad=True)
    pred = torch.zeros(1, 4, 4)
    pred[0, 2] = torch.tensor([0.1, -0.2, 0.3, 0.]) / torch.tensor(STDS)
    pred[0, 1] = torch.tensor([5., 5., 5., 5.])
    bbox_pred = pred.view(1, 16).requires_grad_()
    seg_cls_score = torch.tensor([[9., 1., 3., 2.]])
    return rois, bbox_pred, seg_cls_score


def test_bridge_takes_the_top_foreground_class():
    rois, bbox_pred, seg = _case()
    coder = PlusOneDeltaXYWHBBoxCoder(target_stds=STDS)
    boxes = regress_by_best_class(rois, bbox_pred, seg, coder, (1000, 1000))
    # w = 100, cx = 59.5 -> 69.5; pw = 100 e^0.3; h = 50, cy = 44.5 -> 34.5
    pw = 100 * torch.exp(torch.tensor(0.3))
    expected = torch.stack([69.5 - 0.5 * (pw - 1), torch.tensor(10.),
                            69.5 + 0.5 * (pw - 1), torch.tensor(59.)])
    torch.testing.assert_close(boxes[0], expected)
    boxes.sum().backward()
    grad = bbox_pred.grad.view(4, 4)
    assert grad[2].abs().sum() > 0
    assert grad[[0, 1, 3]].abs().sum() == 0
    assert rois.grad.abs().sum() > 0


def test_bridge_with_background_and_raw_deltas():
    rois, bbox_pred, seg = _case()
    coder = PlusOneDeltaXYWHBBoxCoder(target_stds=STDS)
    # the official test graph: background wins, its deltas are 0
    boxes = regress_by_best_class(rois, bbox_pred, seg, coder, (1000, 1000),
                                  with_bg=True)
    torch.testing.assert_close(boxes[0], rois[0].detach())
    # the official train graph: raw outputs (1, -2, 1.5, 0) as deltas:
    # pcx = 159.5, pw = 100 e^1.5; pcy = -55.5, ph = 50 (then clipped)
    raw = regress_by_best_class(rois, bbox_pred, seg,
                                PlusOneDeltaXYWHBBoxCoder(), (1000, 1000))
    pw = 100 * torch.exp(torch.tensor(1.5))
    expected = torch.stack([torch.tensor(0.), torch.tensor(0.),
                            159.5 + 0.5 * (pw - 1), torch.tensor(0.)])
    torch.testing.assert_close(raw[0], expected)


def test_bridge_checks_shapes():
    rois, bbox_pred, seg = _case()
    with pytest.raises(ValueError, match='must agree'):
        regress_by_best_class(rois, bbox_pred[:, :12], seg,
                              PlusOneDeltaXYWHBBoxCoder(), (100, 100))


def test_best_class_rule_of_score_pick():
    """Ties go to the lowest class, NaN and -inf never win, -1 when no
    class can; the background column only with ``with_bg``."""
    nan, inf = float('nan'), float('inf')
    scores = torch.tensor([[.9, .3, .3, .1], [.1, nan, .2, nan],
                           [.5, nan, nan, nan], [.1, -inf, -inf, 0.],
                           [.0, .2, .7, .1]])
    assert best_class(scores).tolist() == [1, 2, -1, 3, 2]
    assert best_class(scores, with_bg=True).tolist() == [0, 2, 0, 0, 2]
    with pytest.raises(ValueError, match=r'\(R, C\) with C >= 2'):
        best_class(torch.zeros(3, 1))
