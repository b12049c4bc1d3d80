# Copyright (c) OpenMMLab. All rights reserved.
"""PSRoIPool on (N, D, k, k, H, W) views of any layout, and with per-RoI
``channel_start`` (one class's pair without assembling the others)."""
import pytest
import torch

from mnc_mm.ops import ext_available, ps_roi_pool
from test_ops.fcis_channel_ops import label_pick

pytestmark = pytest.mark.skipif(
    not ext_available(), reason='mnc_mm._ext is not built')

ROIS = torch.tensor([[0, 0, 0, 60, 40], [1, 20.5, 10, 90, 95],
                     [1, -30, -20, 40, 30], [0, 33, 17, 33, 17],
                     [0, 50, 50, 40, 40]], dtype=torch.float64)


def maps(groups=4, cig=2, k=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(2, groups * cig * k * k, 7, 8, generator=gen,
                       dtype=torch.float64)


def views(x, k):
    """The official maps as three (N, D, k, k, H, W) views: contiguous,
    channels-last with D fastest, and NHWC (channels-last 4-D)."""
    n, c, h, w = x.shape
    d = c // (k * k)
    six = x.view(n, d, k, k, h, w)
    d_fast = six.permute(0, 4, 5, 2, 3, 1).contiguous().permute(
        0, 5, 3, 4, 1, 2)
    nhwc = x.contiguous(memory_format=torch.channels_last)
    return dict(six=six, d_fast=d_fast, nhwc=nhwc)


@pytest.mark.parametrize('name', ['six', 'd_fast', 'nhwc'])
def test_any_layout_gives_the_official_output_and_gradient(name):
    x = maps().requires_grad_(True)
    ref = ps_roi_pool(x, ROIS, 8, 5, 3, 1 / 8)
    grad_out = torch.randn(ref.shape, dtype=ref.dtype)
    ref.backward(grad_out)
    view = views(x.detach(), 3)[name].requires_grad_(True)
    out = ps_roi_pool(view, ROIS, 8, 5, 3, 1 / 8)
    out.backward(grad_out)
    torch.testing.assert_close(out, ref, rtol=0, atol=0)
    assert view.grad.stride() == view.stride()
    torch.testing.assert_close(view.grad.reshape(x.shape), x.grad, rtol=0,
                               atol=0)


@pytest.mark.parametrize('layout', ['official', 'd_fast'])
def test_channel_start_is_label_pick_of_the_full_assembly(layout):
    groups, cig, k = 4, 2, 3
    x = maps(groups, cig, k).requires_grad_(True)
    labels = torch.tensor([3, 0, 2, 1, 3])
    full = ps_roi_pool(x, ROIS, groups * cig, 6, k, 1 / 8)
    ref = label_pick(full, groups, labels)
    grad_out = torch.randn(ref.shape, dtype=ref.dtype)
    ref.backward(grad_out)
    inp = x.detach()
    if layout == 'd_fast':
        inp = views(inp, k)['d_fast']
    inp.requires_grad_(True)
    out = ps_roi_pool(inp, ROIS, cig, 6, k, 1 / 8,
                      channel_start=cig * labels)
    out.backward(grad_out)
    torch.testing.assert_close(out, ref, rtol=0, atol=0)
    torch.testing.assert_close(inp.grad.reshape(x.shape), x.grad, rtol=1e-12,
                               atol=1e-12)


def test_channel_start_gradcheck():
    x = maps(3, 2, 2).requires_grad_(True)
    start = torch.tensor([4, 0, 2, 1, 3])  # any row, not only pairs
    assert torch.autograd.gradcheck(
        lambda inp: ps_roi_pool(
            inp, ROIS, 2, 3, 2, 1 / 8, channel_start=start),
        (x, ), eps=1e-6, atol=1e-8)


@pytest.mark.parametrize('start, match', [
    (torch.tensor([0, 0, 0, 0, 7]), 'channel_start must lie in \\[0, 6\\]'),
    (torch.tensor([0, 0, -1, 0, 0]), 'channel_start must lie in'),
    (torch.tensor([0, 0, 0, 0]), 'channel_start must be a \\(5,\\) int64'),
    (torch.tensor([0., 0, 0, 0, 0]), 'channel_start must be a \\(5,\\) int64'),
])
def test_bad_channel_start(start, match):
    with pytest.raises(ValueError, match=match):
        ps_roi_pool(maps(4, 2, 3), ROIS, 2, 3, 3, 1 / 8, channel_start=start)


def test_bad_six_d_input():
    with pytest.raises(ValueError, match='a 6-D input must be'):
        ps_roi_pool(torch.randn(2, 2, 3, 2, 7, 8, dtype=torch.float64), ROIS,
                    2, 3, 3, 1 / 8)
