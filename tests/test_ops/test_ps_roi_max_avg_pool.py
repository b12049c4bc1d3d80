# Copyright (c) OpenMMLab. All rights reserved.
"""Tests of the fused FCIS class score (PSRoIPool + Group_Max + average).

The reference is the composite of the separately tested ops:
``group_max(ps_roi_pool(...), G).mean((2, 3))``.
"""
import numpy as np
import pytest
import torch

from mnc_mm.ops import ext_available, ps_roi_max_avg_pool, ps_roi_pool
from test_ops.fcis_channel_ops import group_max

pytestmark = pytest.mark.skipif(
    not ext_available(), reason='mnc_mm._ext is not built')

FLT_MAX = torch.finfo(torch.float32).max


def composite(x, rois, groups, cig, pooled, k, scale):
    return group_max(ps_roi_pool(x, rois, groups * cig, pooled, k, scale),
                     groups).mean(dim=(2, 3))


def channels_last_view(x, k):
    """(N, D, k, k, H, W) view of the official maps whose D values of one
    cell and position are contiguous in memory."""
    n, c, h, w = x.shape
    d = c // (k * k)
    return x.view(n, d, k, k, h, w).permute(0, 4, 5, 2, 3, 1).contiguous() \
        .permute(0, 5, 3, 4, 1, 2)


def strides(t):
    """Strides of the dims of size > 1 (the others are arbitrary)."""
    return [s for s, n in zip(t.stride(), t.shape) if n > 1]


def random_case(seed, dtype):
    rng = np.random.default_rng(seed)
    batch, k = int(rng.integers(1, 3)), int(rng.integers(1, 4))
    groups, cig = int(rng.integers(1, 5)), int(rng.integers(1, 4))
    pooled = int(rng.integers(k, 3 * k + 1))
    height, width = int(rng.integers(2, 12)), int(rng.integers(2, 12))
    scale = float(rng.choice([1.0, 0.5, 0.25, 1 / 16]))
    x = torch.from_numpy(rng.standard_normal(
        (batch, groups * cig * k * k, height, width))).to(dtype)
    num = int(rng.integers(1, 8))
    xy = rng.uniform(-0.2, 1.0, (num, 2)) * [width / scale, height / scale]
    wh = rng.uniform(0, 1.0, (num, 2)) * [width / scale, height / scale]
    rois = np.concatenate(
        [rng.integers(0, batch, (num, 1)), xy, xy + wh], axis=1)
    return (x, torch.tensor(rois, dtype=dtype), groups, cig, pooled, k,
            scale)


@pytest.mark.parametrize('layout', ['official', 'channels_last'])
@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('seed', range(40))
def test_matches_composite_forward_and_backward(seed, dtype, layout):
    x, rois, groups, cig, pooled, k, scale = random_case(seed, dtype)
    ref_x = x.clone().requires_grad_(True)
    ref = composite(ref_x, rois, groups, cig, pooled, k, scale)
    inp = x if layout == 'official' else channels_last_view(x, k)
    inp = inp.detach().requires_grad_(True)
    out = ps_roi_max_avg_pool(inp, rois, groups, cig, pooled, k, scale)
    assert out.shape == (rois.size(0), groups)
    grad_out = torch.randn(out.shape, dtype=dtype)
    grad_out[0] = 0  # a RoI without gradient (as OHEM drops them)
    ref.backward(grad_out)
    out.backward(grad_out)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(out, ref.detach(), rtol=tol, atol=tol)
    # the gradient comes back in the layout that was read
    assert strides(inp.grad) == strides(inp)
    torch.testing.assert_close(inp.grad.reshape(x.shape) if layout ==
                               'official' else
                               inp.grad.reshape(ref_x.shape),
                               ref_x.grad, rtol=tol, atol=tol)


def test_fcis_sizes_channels_last():
    """k = 7, P = 21, 21 classes, a stride-16 map, both layouts agree."""
    torch.manual_seed(0)
    x = torch.randn(2, 2 * 21 * 49, 9, 14, dtype=torch.float64)
    rois = torch.tensor([[0, 10, 20, 150, 130], [1, 0, 0, 223, 143],
                         [1, 100.5, 30, 110, 50], [0, -50, -50, 500, 400]],
                        dtype=torch.float64)
    ref = composite(x, rois, 21, 2, 21, 7, 1 / 16)
    out = ps_roi_max_avg_pool(channels_last_view(x, 7), rois, 21, 2, 21, 7,
                              1 / 16)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)


def test_gradcheck():
    x = torch.randn(2, 3 * 2 * 4, 5, 6, dtype=torch.float64,
                    requires_grad=True)
    rois = torch.tensor([[0, 0, 0, 80, 60], [1, 20.5, 10, 60, 75],
                         [1, -30, -20, 40, 30]], dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda inp: ps_roi_max_avg_pool(inp, rois, 3, 2, 4, 2, 1 / 16),
        (x, ), eps=1e-6, atol=1e-8)


def test_ties_go_to_the_first_channel_and_nan_never_wins():
    """One RoI over a 1 x 1 map, k = P = 1, 3 groups of 2 channels:
    a tie (first channel wins), a NaN first channel (the second wins),
    and two NaNs (-FLT_MAX, no gradient)."""
    x = torch.tensor([2., 2., float('nan'), 3., float('nan'),
                      float('nan')]).view(1, 6, 1, 1).requires_grad_(True)
    rois = torch.tensor([[0., 0., 0., 0., 0.]])
    out = ps_roi_max_avg_pool(x, rois, 3, 2, 1, 1, 1.0)
    assert out.tolist() == [[2., 3., -FLT_MAX]]
    out.sum().backward()
    assert x.grad.view(-1).tolist() == [1., 0., 0., 1., 0., 0.]


def test_empty_bins_count_as_zero():
    """A RoI that only partly covers the map: its bins outside add 0 and
    still count in the average."""
    x = torch.full((1, 2, 4, 4), 5.)
    rois = torch.tensor([[0., 2., 0., 5., 3.]])  # right half off the map
    out = ps_roi_max_avg_pool(x, rois, 1, 2, 2, 1, 1.0)
    assert out.item() == pytest.approx(5. * 0.5)


def test_no_rois():
    x = torch.randn(1, 4, 3, 3, requires_grad=True)
    out = ps_roi_max_avg_pool(x, torch.zeros(0, 5), 2, 2, 2, 1, 1.0)
    assert out.shape == (0, 2)
    out.sum().backward()
    assert x.grad.abs().sum() == 0


@pytest.mark.parametrize('kwargs, error, match', [
    (dict(output_dim=3), ValueError,
     'output_dim \\* channels_per_group \\* group_size \\*\\* 2 = 6 '
     'channels, got 8'),
    (dict(channels_per_group=0), ValueError, 'channels_per_group must be'),
    (dict(group_size=3), ValueError, 'multiple of group_size'),
    (dict(input=torch.randn(1, 2, 1, 2, 3, 3)), ValueError,
     'a 6-D input must be'),
    (dict(rois=torch.zeros(1, 4)), ValueError, 'rois must be \\(R, 5\\)'),
    (dict(input=torch.randn(1, 8, 3, 3).int()), TypeError, 'input dtype'),
])
def test_bad_input(kwargs, error, match):
    args = dict(input=torch.randn(1, 8, 3, 3), rois=torch.zeros(1, 5),
                output_dim=2, channels_per_group=2, pooled_size=2,
                group_size=1, spatial_scale=1.0)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        ps_roi_max_avg_pool(**args)
