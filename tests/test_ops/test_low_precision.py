# Copyright (c) OpenMMLab. All rights reserved.
"""Half and bfloat16 on the CPU kernels: every op, forward and backward,
against the same op in float32 on the same (exactly representable) values.

The kernels compute in float for half and bfloat16 (at::opmath_type) and
accumulate the feature gradients in a float buffer, so on inputs that are
exact in the low-precision dtype the result is the float32 result rounded
once. Stated tolerances: one rounding of the output dtype (float16: 2^-11
relative, bfloat16: 2^-8) on outputs and feature gradients; the fused
PSRoIMaxAvgPool takes its Group_Max over values rounded to the dtype (as
the CUDA kernel), so it gets two roundings; RoIWarp's box gradient sums
products in float (float32 sums them in double), so it gets 1e-2 of its
scale for float16 and 5e-2 for bfloat16.
"""
import numpy as np
import pytest
import torch

from mnc_mm.ops import (ext_available, ps_roi_max_avg_pool, ps_roi_pool,
                        roi_warp)

pytestmark = pytest.mark.skipif(
    not ext_available(), reason='mnc_mm._ext is not built')

# Relative size of one rounding to the dtype.
UNIT = {torch.float16: 2.0**-11, torch.bfloat16: 2.0**-8}
LOW_DTYPES = list(UNIT)


def exact_case(seed, dtype):
    """Maps, RoIs and an output-gradient seed whose values are exact in
    ``dtype``: maps rounded to it, RoI corners integers in [-24, 224]
    (exact in bfloat16 up to 256)."""
    rng = np.random.default_rng(seed)
    batch, group = int(rng.integers(1, 3)), int(rng.integers(1, 4))
    dims, cig = int(rng.integers(1, 4)), int(rng.integers(1, 3))
    height, width = int(rng.integers(2, 14)), int(rng.integers(2, 14))
    pooled = int(rng.integers(1, 2 * group + 1))
    scale = float(rng.choice([1.0, 0.5, 0.25, 1 / 16]))
    maps = torch.from_numpy(
        rng.standard_normal(
            (batch, dims * cig * group**2, height, width))).to(dtype)
    num = int(rng.integers(1, 7))
    corners = np.sort(rng.integers(-24, 225, (num, 2, 2)), axis=1)
    rois = torch.tensor(
        [[rng.integers(batch), c[0, 0], c[0, 1], c[1, 0], c[1, 1]]
         for c in corners],
        dtype=torch.float64).to(dtype)
    return maps, rois, dims, cig, pooled, group, scale


def run(op, maps, rois, dtype, grad_seed):
    """Output and gradients of ``op(maps, rois)`` in ``dtype``, as float64;
    the output gradient is random, exact in ``dtype``."""
    x = maps.to(dtype).requires_grad_(True)
    r = rois.to(dtype).requires_grad_(rois.requires_grad)
    out = op(x, r)
    gen = torch.Generator().manual_seed(grad_seed)
    grad = torch.randn(out.shape, generator=gen).to(maps.dtype).to(dtype)
    inputs = (x, r) if r.requires_grad else (x, )
    grads = torch.autograd.grad(out, inputs, grad)
    assert out.dtype == dtype and all(g.dtype == dtype for g in grads)
    return [t.double() for t in (out, ) + grads]


def assert_rounded(got, want, units, dtype, what):
    """|got - want| <= units roundings of ``dtype`` relative to the value,
    and as much absolute relative to the largest value (for values near 0
    produced by cancellation)."""
    tol = units * UNIT[dtype]
    scale = want.abs().max().item() if want.numel() else 0.
    torch.testing.assert_close(
        got, want, rtol=tol, atol=tol * max(scale, 1e-30), msg=what)


@pytest.mark.parametrize('dtype', LOW_DTYPES)
@pytest.mark.parametrize('seed', range(12))
def test_ps_roi_pool_matches_float32(seed, dtype):
    maps, rois, dims, cig, pooled, group, scale = exact_case(seed, dtype)
    rows = dims * cig

    def op(x, r):
        return ps_roi_pool(x, r, rows, pooled, group, scale)

    got = run(op, maps, rois, dtype, seed)
    want = run(op, maps, rois, torch.float32, seed)
    for g, w, what in zip(got, want, ('output', 'grad maps')):
        assert_rounded(g, w, 1, dtype, what)


@pytest.mark.parametrize('dtype', LOW_DTYPES)
@pytest.mark.parametrize('seed', range(12))
def test_ps_roi_max_avg_pool_matches_float32(seed, dtype):
    maps, rois, dims, cig, pooled, group, scale = exact_case(seed, dtype)

    def op(x, r):
        return ps_roi_max_avg_pool(x, r, dims, cig, pooled, group, scale)

    got = run(op, maps, rois, dtype, seed)
    want = run(op, maps, rois, torch.float32, seed)
    assert_rounded(got[0], want[0], 2, dtype, 'output')
    # A Group_Max winner can change where two channels round to one value;
    # the gradient then moves to the tied channel, so compare the total.
    torch.testing.assert_close(
        got[1].sum(), want[1].sum(), rtol=2 * UNIT[dtype],
        atol=2 * UNIT[dtype] * want[1].abs().sum().item())


@pytest.mark.parametrize('quantize', [False, True])
@pytest.mark.parametrize('dtype', LOW_DTYPES)
@pytest.mark.parametrize('seed', range(12))
def test_roi_warp_matches_float32(seed, dtype, quantize):
    maps, rois, _, _, pooled, _, scale = exact_case(seed, dtype)
    rois.requires_grad_(True)
    size = (pooled, pooled + 1)

    def op(x, r):
        return roi_warp(x, r, size, scale, quantize)

    got = run(op, maps, rois, dtype, seed)
    want = run(op, maps, rois, torch.float32, seed)
    assert_rounded(got[0], want[0], 1, dtype, 'output')
    assert_rounded(got[1], want[1], 1, dtype, 'grad input')
    box_tol = {torch.float16: 1e-2, torch.bfloat16: 5e-2}[dtype]
    torch.testing.assert_close(
        got[2], want[2], rtol=box_tol,
        atol=box_tol * max(want[2].abs().max().item(), 1.))


def _autocast_case():
    """bf16 maps (stride 16, 7 x 7 groups of 2 channels) and float32 RoIs
    in a 600 x 1000 px image whose corners bfloat16 cannot hold."""
    gen = torch.Generator().manual_seed(0)
    maps = torch.randn(1, 2 * 49, 38, 63, generator=gen).bfloat16()
    rois = torch.tensor([[0., 301.3, 200.7, 611.1, 455.9],
                         [0., 517.5, 33.3, 997.7, 590.1]])
    assert not torch.equal(rois.bfloat16().float(), rois)
    return maps, rois


AUTOCAST_OPS = {
    'ps_roi_pool': lambda m, r: ps_roi_pool(m, r, 2, 21, 7, 1 / 16),
    'ps_roi_max_avg_pool': lambda m, r: ps_roi_max_avg_pool(
        m.view(1, 2, 7, 7, 38, 63), r, 1, 2, 21, 7, 1 / 16),
    'roi_warp': lambda m, r: roi_warp(m, r, 14, 1 / 16),
}


@pytest.mark.parametrize('name', list(AUTOCAST_OPS))
def test_ops_run_in_float32_under_autocast(name):
    """Under CPU bfloat16 autocast an op casts the bf16 maps to float32 and
    keeps the RoIs float32: output and gradients are the float32 op's on
    the same values (not on RoIs rounded to bf16), the maps' gradient
    rounded once to bf16."""
    op = AUTOCAST_OPS[name]
    maps, rois = _autocast_case()
    grads_of = (True, True) if name == 'roi_warp' else (True, False)

    def run_op(m, r, autocast):
        m = m.detach().requires_grad_()
        r = r.detach().requires_grad_(grads_of[1])
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=autocast):
            out = op(m, r)
        seed = torch.Generator().manual_seed(1)
        grad = torch.randn(out.shape, generator=seed)
        inputs = (m, r) if grads_of[1] else (m, )
        return (out, ) + torch.autograd.grad(out, inputs, grad)

    got = run_op(maps, rois, True)
    want = run_op(maps.float(), rois, False)
    assert got[0].dtype == torch.float32 and got[1].dtype == torch.bfloat16
    torch.testing.assert_close(got[0], want[0], rtol=0, atol=0)
    torch.testing.assert_close(got[1], want[1].bfloat16(), rtol=0, atol=0)
    if grads_of[1]:
        torch.testing.assert_close(got[2], want[2], rtol=0, atol=0)
