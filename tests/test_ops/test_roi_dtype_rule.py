# Copyright (c) OpenMMLab. All rights reserved.
"""The one RoI dtype rule of the ops: RoIs of any floating dtype are cast
to the dtype of the maps (``mnc_mm.ops.checks.rois_as_maps_dtype``);
under autocast the ops run in float32, so float32 RoIs stay float32."""
import functools

import pytest
import torch
from torch import nn

from mnc_mm.ops import (PSRoIPool, RoIWarpPool, ext_available,
                        ps_roi_max_avg_pool, ps_roi_pool, roi_warp)

pytestmark = pytest.mark.skipif(
    not ext_available(), reason='mnc_mm._ext is not built')

# Corners with fractions that float16 and bfloat16 round differently.
ROIS = torch.tensor([[0, 3.3, 2.7, 41.9, 30.1], [1, -9.55, 4.2, 20.5, 61.7],
                     [1, 100.3, 90.6, 230.2, 250.9]], dtype=torch.float64)
OPS = {
    'ps_roi_pool': functools.partial(ps_roi_pool, output_dim=2,
                                     pooled_size=3, group_size=2,
                                     spatial_scale=1 / 16),
    'ps_roi_max_avg_pool': functools.partial(
        ps_roi_max_avg_pool, output_dim=1, channels_per_group=2,
        pooled_size=3, group_size=2, spatial_scale=1 / 16),
    'roi_warp': functools.partial(roi_warp, output_size=(3, 4),
                                  spatial_scale=1 / 16),
}
PAIRS = [(torch.float64, torch.float32), (torch.float32, torch.float64),
         (torch.float16, torch.float32), (torch.bfloat16, torch.float32),
         (torch.bfloat16, torch.float64)]


def maps(dtype, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(2, 8, 16, 17, generator=gen).to(dtype)


@pytest.mark.parametrize('maps_dtype, rois_dtype', PAIRS)
@pytest.mark.parametrize('name', list(OPS))
def test_rois_are_cast_to_the_maps_dtype(name, maps_dtype, rois_dtype):
    op, x = OPS[name], maps(maps_dtype)
    rois = ROIS.to(rois_dtype)
    out = op(x, rois)
    assert out.dtype == maps_dtype
    assert torch.equal(out, op(x, rois.to(maps_dtype)))


@pytest.mark.parametrize('maps_dtype', [torch.float64, torch.bfloat16])
def test_box_gradient_flows_back_through_the_cast(maps_dtype):
    x = maps(maps_dtype)
    rois = ROIS.float().requires_grad_(True)
    same = rois.detach().to(maps_dtype).requires_grad_(True)
    grad_out = torch.randn(3, 8, 3, 4).to(maps_dtype)
    roi_warp(x, rois, (3, 4), 1 / 16).backward(grad_out)
    roi_warp(x, same, (3, 4), 1 / 16).backward(grad_out)
    assert rois.grad.dtype == torch.float32
    assert torch.equal(rois.grad, same.grad.float())


def test_bf16_autocast_conv_maps_with_float_rois():
    """A conv under CPU bf16 autocast makes bf16 maps; the ops run in
    float32 (the maps cast, the heads' float32 RoIs as they are)."""
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 8, 3, padding=1)
    image = torch.randn(2, 3, 16, 17)
    rois = ROIS.float()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        feat = conv(image)
        assert feat.dtype == torch.bfloat16
        pooled = PSRoIPool(2, 3, 2, 1 / 16)(feat, rois)
        warped = RoIWarpPool(4, 2, 1 / 16)(feat, rois)
    assert pooled.dtype == warped.dtype == torch.float32
    (pooled.sum() + warped.sum()).backward()
    assert conv.weight.grad.dtype == torch.float32
    assert torch.isfinite(conv.weight.grad).all()
    # Same as the ops on the bf16 maps' float32 copy with the RoIs unrounded.
    maps_fp32 = feat.detach().float()
    torch.testing.assert_close(
        pooled, ps_roi_pool(maps_fp32, rois, 2, 3, 2, 1 / 16),
        rtol=0, atol=0)


@pytest.mark.parametrize('name', list(OPS))
def test_integer_rois_are_refused(name):
    with pytest.raises(TypeError, match=f'{name}: rois must be a '
                       'floating-point tensor, got torch.int64'):
        OPS[name](maps(torch.float32), ROIS.long())


@pytest.mark.parametrize('dtype, last_exact', [(torch.bfloat16, 256),
                                               (torch.float16, 2048)])
@pytest.mark.parametrize('name', list(OPS))
def test_batch_index_beyond_the_dtypes_integers_is_refused(
        name, dtype, last_exact):
    """bfloat16 rounds 257 to 256 (float16: 2049 to 2048): maps of more
    images than the dtype indexes exactly are refused, not pooled from the
    wrong image; up to the limit the indexed image is read."""
    op = OPS[name]
    gen = torch.Generator().manual_seed(1)
    planes = torch.randn(last_exact + 2, 8, 4, 5, generator=gen).to(dtype)

    def roi(index):
        return torch.tensor([[index, 3.0, 2.0, 60.0, 50.0]])

    def alone(maps, index):
        """The op on the one plane ``index`` of ``maps``."""
        return op(maps[index:index + 1], roi(0))

    at_limit = planes[:last_exact + 1]
    assert torch.equal(op(at_limit, roi(last_exact)),
                       alone(at_limit, last_exact))
    with pytest.raises(ValueError, match=rf'{name}: {dtype} rois index '
                       rf'images 0\.\.{last_exact} exactly, got input of '
                       rf'{last_exact + 2} images; pass float32 input'):
        op(planes, roi(last_exact + 1))
    # float32, and autocast (which runs the op in float32), read that image
    wide = planes.float()
    assert torch.equal(op(wide, roi(last_exact + 1)),
                       alone(wide, last_exact + 1))
    with torch.autocast('cpu', dtype=torch.bfloat16):
        assert torch.equal(op(planes, roi(last_exact + 1)),
                           alone(wide, last_exact + 1))
