# Copyright (c) OpenMMLab. All rights reserved.
"""Tests of the test reference for the FCIS channel operators (the
semantics of msracver/FCIS ``fcis/operator_cxx/channel_operator.cu``)."""
import pytest
import torch

from test_ops.fcis_channel_ops import (group_max, group_softmax, label_pick,
                                      score_pick)

NEG_FLT_MAX = -torch.finfo(torch.float32).max


def pairs(*values):
    """(1, 2 * G, 1, 1) input from G (outside, inside) pairs."""
    return torch.tensor(values, dtype=torch.float64).view(1, -1, 1, 1)


def test_group_max_values_and_gradient():
    x = pairs(1., 3., 5., 2., -4., -4.).requires_grad_(True)
    out = group_max(x, 3)
    assert out.flatten().tolist() == [3., 5., -4.]
    out.backward(torch.tensor([10., 20., 30.],
                              dtype=torch.float64).view(1, 3, 1, 1))
    # The tie (-4, -4) sends the gradient to the outside (lower) channel.
    assert x.grad.flatten().tolist() == [0., 10., 20., 0., 30., 0.]


def test_group_max_nan_never_wins():
    x = pairs(float('nan'), 1., 2., float('nan'), float('nan'),
              float('nan')).requires_grad_(True)
    out = group_max(x, 3)
    assert out.flatten().tolist() == [1., 2., NEG_FLT_MAX]
    out.sum().backward()
    assert x.grad.flatten().tolist() == [0., 1., 1., 0., 0., 0.]


def test_group_max_reference_and_gradcheck():
    torch.manual_seed(0)
    x = torch.randn(3, 12, 4, 5, dtype=torch.float64, requires_grad=True)
    torch.testing.assert_close(
        group_max(x, 4),
        x.view(3, 4, 3, 4, 5).max(dim=2).values)
    assert torch.autograd.gradcheck(lambda t: group_max(t, 4), (x, ))


def test_label_pick():
    torch.manual_seed(0)
    x = torch.randn(4, 6, 2, 3, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([2., 0., 5., -1.]).view(4, 1, 1, 1)
    out = label_pick(x, 3, labels)
    assert out.shape == (4, 2, 2, 3)
    assert torch.equal(out[0], x[0, 4:6])
    assert torch.equal(out[1], x[1, 0:2])
    assert not out[2:].any()  # labels outside [0, G) give zeros
    out.backward(torch.ones_like(out))
    expected = torch.zeros_like(x)
    expected[0, 4:6] = 1
    expected[1, 0:2] = 1
    assert torch.equal(x.grad, expected)
    assert torch.autograd.gradcheck(
        lambda t: label_pick(t, 3, labels), (x, ))


def test_label_pick_truncates_float_labels():
    x = torch.arange(6.).view(1, 6, 1, 1)
    assert label_pick(x, 3, torch.tensor([1.7])).flatten().tolist() == [2, 3]


def test_score_pick_excludes_background_and_breaks_ties_low():
    x = torch.arange(2 * 8.).view(2, 8, 1, 1)
    # RoI 0: background has the top score, so the best foreground (2) wins;
    # RoI 1: classes 1 and 3 tie, the lower one wins.
    scores = torch.tensor([[0.9, 0.01, 0.07, 0.02],
                           [0.2, 0.3, 0.2, 0.3]]).view(2, 4, 1, 1)
    out = score_pick(x, 4, scores)
    assert out.flatten().tolist() == [4., 5., 10., 11.]


def test_score_pick_nan_and_background_only():
    x = torch.arange(6.).view(1, 6, 1, 1)
    scores = torch.tensor([[0.1, float('nan'), 0.5]])
    assert score_pick(x, 3, scores).flatten().tolist() == [4., 5.]
    # Only the background class: nothing to pick, zeros.
    assert not score_pick(x, 1, torch.tensor([[1.]])).any()


def test_score_pick_gradient_reaches_picked_group():
    x = torch.randn(2, 6, 3, 3, dtype=torch.float64, requires_grad=True)
    scores = torch.tensor([[0.5, 0.2, 0.3], [0.1, 0.8, 0.1]])
    out = score_pick(x, 3, scores)
    torch.testing.assert_close(out, label_pick(x, 3, torch.tensor([2, 1])))
    assert torch.autograd.gradcheck(lambda t: score_pick(t, 3, scores), (x, ))


def test_group_softmax():
    torch.manual_seed(0)
    x = torch.randn(2, 6, 3, 4, dtype=torch.float64, requires_grad=True)
    out = group_softmax(x, 3)
    outside, inside = x[:, 0::2], x[:, 1::2]
    torch.testing.assert_close(out[:, 1::2], torch.sigmoid(inside - outside))
    torch.testing.assert_close(out.view(2, 3, 2, 3, 4).sum(2),
                               torch.ones(2, 3, 3, 4, dtype=torch.float64))
    assert torch.autograd.gradcheck(lambda t: group_softmax(t, 3), (x, ))


@pytest.mark.parametrize('fn', [group_max, group_softmax])
def test_bad_input(fn):
    with pytest.raises(ValueError, match='input must be a 4-D'):
        fn(torch.zeros(6, 2, 2), 3)
    with pytest.raises(ValueError, match='multiple of group'):
        fn(torch.zeros(1, 5, 2, 2), 3)
    with pytest.raises(ValueError, match='group must be a positive int'):
        fn(torch.zeros(1, 6, 2, 2), 0)


def test_bad_pick_input():
    x = torch.zeros(2, 6, 2, 2)
    with pytest.raises(ValueError, match='labels must hold one value'):
        label_pick(x, 3, torch.zeros(3))
    with pytest.raises(ValueError, match=r'scores must be \(2, 3\)'):
        score_pick(x, 3, torch.zeros(2, 4))
