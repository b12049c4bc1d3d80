# Copyright (c) OpenMMLab. All rights reserved.
"""FCISMaskLoss: per-RoI 2-way cross-entropy over all m x m pixels, ignored
pixels counting 0 (MXNet SoftmaxOutput normalization='null')."""
import pytest
import torch
import torch.nn.functional as F

from mnc_mm.models.losses import FCISMaskLoss


def _case():
    torch.manual_seed(0)
    seg = torch.randn(3, 2, 5, 5, dtype=torch.float64)
    targets = torch.randint(0, 2, (3, 5, 5)).double()
    targets[0, 1:3, 2:] = -1  # ignored pixels
    targets[2] = -1  # a background RoI
    return seg, targets


def test_per_roi_loss_equals_the_summed_cross_entropy_over_all_pixels():
    seg, targets = _case()
    per_roi = FCISMaskLoss()(seg, targets, reduction_override='none')
    # independent: torch's ignore_index, summed per RoI, over m * m = 25
    expected = torch.stack([
        F.cross_entropy(s[None], t[None].long(), ignore_index=-1,
                        reduction='sum') / 25 for s, t in zip(seg, targets)
    ])
    torch.testing.assert_close(per_roi, expected)
    assert per_roi[2] == 0


def test_reductions_weights_and_loss_weight():
    seg, targets = _case()
    per_roi = FCISMaskLoss()(seg, targets, reduction_override='none')
    loss = FCISMaskLoss(reduction='sum', loss_weight=10.)
    torch.testing.assert_close(loss(seg, targets), 10 * per_roi.sum())
    torch.testing.assert_close(FCISMaskLoss()(seg, targets), per_roi.mean())
    weight = torch.tensor([1., 0., 2.], dtype=torch.float64)
    torch.testing.assert_close(
        FCISMaskLoss(loss_weight=10.)(seg, targets, weight=weight,
                                      avg_factor=4.),
        10 * (per_roi * weight).sum() / 4)


def test_gradient_and_empty_input():
    seg, targets = _case()
    seg.requires_grad_()
    FCISMaskLoss()(seg, targets, reduction_override='none').sum().backward()
    assert seg.grad[2].abs().max() == 0  # background RoI
    assert seg.grad[0, :, 1:3, 2:].abs().max() == 0  # ignored pixels
    assert seg.grad[1].abs().max() > 0
    empty = FCISMaskLoss()(seg[:0], targets[:0], reduction_override='none')
    assert empty.shape == (0, )


def test_shape_errors_name_expected_and_found():
    seg, targets = _case()
    with pytest.raises(ValueError, match=r'\(R, 2, m, m\).*\(3, 2, 5, 5\)'):
        FCISMaskLoss()(seg, targets[:, :4])
