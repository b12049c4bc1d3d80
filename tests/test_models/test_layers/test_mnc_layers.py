# Copyright (c) OpenMMLab. All rights reserved.
"""Gradient shaping on MNC's box path and the MaskResize rule."""
import numpy as np
import pytest
import torch

from mnc_mm.models.layers import (clip_grad, official_warp_coord_grad,
                                  resize_masks_top_left)
from mnc_mm.ops import roi_warp


def test_clip_grad_clamps_only_the_gradient():
    x = torch.tensor([1., -2., 3.], requires_grad=True)
    y = clip_grad(x, 0.5)
    assert torch.equal(y, x)
    (y * torch.tensor([0.1, -4., 2.])).sum().backward()
    assert x.grad.tolist() == pytest.approx([0.1, -0.5, 0.5])
    assert clip_grad(x, None) is x
    with pytest.raises(ValueError, match='positive'):
        clip_grad(x, 0.)


def _t3_coordinate_grad(official):
    """daijifeng001/caffe-mnc src/caffe/layers/roi_warping_layer.cu
    (ROIWarpingForward, ROIWarpingBackwardCoordinate): F[h, w] = 24 h + w (20 x
    24), G = 1, P = 28."""
    feat = (24 * torch.arange(20.)[:, None] + torch.arange(24.))[None, None]
    rois = torch.tensor([[0., 40.3, 23.9, 250.2, 180.7]], dtype=torch.double,
                        requires_grad=True)
    boxes = official_warp_coord_grad(rois, 1 / 16) if official else rois
    roi_warp(feat.double(), boxes, 28, 1 / 16, quantize=True).sum().backward()
    return rois.grad[0]


def test_official_ratio_reproduces_spec_t6():
    exact = _t3_coordinate_grad(official=False)
    official = _t3_coordinate_grad(official=True)
    torch.testing.assert_close(
        exact, torch.tensor([0., 25.375, 609.0, 23.625, 567.0],
                            dtype=torch.double))
    torch.testing.assert_close(
        official, torch.tensor([0., 27.0625, 660.545455, 21.9375, 515.454545],
                               dtype=torch.double))


def test_official_ratio_is_identity_forward_and_checks_shape():
    rois = torch.tensor([[0., 1., 2., 30., 40.]])
    assert torch.equal(official_warp_coord_grad(rois, 1 / 16), rois)
    with pytest.raises(ValueError, match=r'\(R, 5\)'):
        official_warp_coord_grad(rois[:, 1:], 1 / 16)


def _np_resize(mask, size):
    """MaskResize: out[i, j] = bilinear(mask, i * m / size, j * m / size)
    with the warp's border rules (daijifeng001/caffe-mnc
    src/caffe/layers/roi_warping_layer.cu (ROIWarpingForward),
    src/caffe/layers/mask_resize_layer.cu)."""
    m = mask.shape[0]
    pos = np.arange(size) * m / size
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, m - 1)
    frac = np.where(lo >= m - 1, 0., pos - lo)
    lo = np.minimum(lo, m - 1)
    rows = (1 - frac)[:, None] * mask[lo] + frac[:, None] * mask[hi]
    return (1 - frac)[None] * rows[:, lo] + frac[None] * rows[:, hi]


@pytest.mark.parametrize('size', [14, 7])
def test_mask_resize_matches_t7_and_is_its_adjoint(size):
    rng = np.random.default_rng(size)
    masks = torch.from_numpy(rng.random((3, 21, 21))).requires_grad_()
    out = resize_masks_top_left(masks, size)
    expected = np.stack([_np_resize(m, size) for m in masks.detach().numpy()])
    np.testing.assert_allclose(out.detach().numpy(), expected, atol=1e-12)
    # T7: <G, R E> = <R^T G, E>, R^T from autograd
    grad = torch.from_numpy(rng.random(out.shape))
    out.backward(grad)
    assert float((grad * out.detach()).sum()) == pytest.approx(
        float((masks.grad * masks).sum()), rel=1e-12)
    assert resize_masks_top_left(masks[:0], size).shape == (0, size, size)


def test_mask_resize_of_many_bf16_masks_reads_each_own_mask():
    """More than 256 bfloat16 masks (an RoI index bfloat16 cannot hold):
    each output is the resize of its own mask, in bfloat16."""
    rng = np.random.default_rng(0)
    masks = torch.from_numpy(rng.random((300, 21, 21))).bfloat16()
    out = resize_masks_top_left(masks, 14)
    assert out.dtype == torch.bfloat16 and out.shape == (300, 14, 14)
    expected = np.stack(
        [_np_resize(m, 14) for m in masks.double().numpy()])
    # bfloat16 rounding of values in [0, 1]: 2**-9 relative
    np.testing.assert_allclose(out.double().numpy(), expected, atol=4e-3)
