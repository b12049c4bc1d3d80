# Copyright (c) OpenMMLab. All rights reserved.
"""Tests of FCIS position-sensitive RoI pooling (msracver/FCIS
fcis/operator_cxx/psroi_pooling.cu)."""
import math
import os.path as osp
import shutil
import subprocess
from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mnc_mm.ops import (PSRoIPool, ext_available, ps_roi_max_avg_pool,
                        ps_roi_pool)

pytestmark = pytest.mark.skipif(
    not ext_available(), reason='mnc_mm._ext is not built')

IS_CUDA_AVAILABLE = torch.cuda.is_available()
CSRC_COMMON = osp.join(
    osp.dirname(__file__), '..', '..', 'mnc_mm', 'ops', 'csrc', 'common')


# --------------------------------------------------------------------------
# Independent reference: plain loops over the formulas of msracver/FCIS
# fcis/operator_cxx/psroi_pooling.cu, limits computed in the tensor dtype, sums
# in float64.
# --------------------------------------------------------------------------
def c_round(x):
    """C ``round``: halves away from zero (not torch.round)."""
    a = abs(x)
    f = math.floor(a)
    return math.copysign(f + 1 if a - f >= 0.5 else f, x)


def fused(p, b, s, ftype):
    """``p * b + s`` rounded once to ``ftype``, as the FMA nvcc emits."""
    exact = Fraction(float(p)) * Fraction(float(b)) + Fraction(float(s))
    return ftype(float(exact))


def ref_bins(roi, scale, pooled, height, width, ftype):
    """Row and column cell ranges [(start, end)] * P of one RoI row."""
    scale = ftype(scale)
    x1, y1, x2, y2 = (float(v) for v in roi[1:])
    sw, sh = ftype(c_round(x1)) * scale, ftype(c_round(y1)) * scale
    # extent (round(x2) + 1) * scale - start, one fma as nvcc compiles it
    ew = fused(ftype(c_round(x2)) + ftype(1), scale, -sw, ftype)
    eh = fused(ftype(c_round(y2)) + ftype(1), scale, -sh, ftype)
    bw = max(ew, ftype(0.1)) / ftype(pooled)
    bh = max(eh, ftype(0.1)) / ftype(pooled)

    def axis(start, bin_size, size):
        ranges = []
        for p in range(pooled):
            lo = math.floor(fused(p, bin_size, start, ftype))
            hi = math.ceil(fused(p + 1, bin_size, start, ftype))
            ranges.append((min(max(lo, 0), size), min(max(hi, 0), size)))
        return ranges

    return axis(sh, bh, height), axis(sw, bw, width)


def ref_ps_roi_pool(x, rois, out_dim, pooled, group, scale, grad_out=None):
    """Forward output and, with ``grad_out``, the input gradient (float64)."""
    ftype = np.float32 if x.dtype == torch.float32 else np.float64
    x64 = x.detach().double()
    out = torch.zeros(rois.size(0), out_dim, pooled, pooled,
                      dtype=torch.float64)
    grad = torch.zeros_like(x64)
    dims = torch.arange(out_dim) * group * group
    for n, roi in enumerate(rois.tolist()):
        b = int(roi[0])
        rows, cols = ref_bins(roi, scale, pooled, x.size(2), x.size(3), ftype)
        for ph, (hs, he) in enumerate(rows):
            gh = min(ph * group // pooled, group - 1)
            for pw, (ws, we) in enumerate(cols):
                if he <= hs or we <= ws:
                    continue
                gw = min(pw * group // pooled, group - 1)
                chans = dims + gh * group + gw
                area = (he - hs) * (we - ws)
                cells = x64[b, chans, hs:he, ws:we]
                out[n, :, ph, pw] = cells.sum(dim=(1, 2)) / area
                if grad_out is not None:
                    g = grad_out[n, :, ph, pw].double() / area
                    grad[b, chans, hs:he, ws:we] += g[:, None, None]
    return out, grad


def random_rois(rng, num, batch, height, width, scale, dtype):
    """RoIs of every kind: inside, partly or fully outside, tiny, zero-size,
    inverted, huge, and with .5 coordinates."""
    img_w, img_h = width / scale, height / scale
    rows = []
    for _ in range(num):
        kind = rng.integers(7)
        x1, y1 = rng.uniform(-0.2, 1.0) * img_w, rng.uniform(-0.2, 1.0) * img_h
        if kind == 0:  # ordinary
            x2 = x1 + rng.uniform(0, img_w)
            y2 = y1 + rng.uniform(0, img_h)
        elif kind == 1:  # partly or fully outside
            x1, y1 = rng.uniform(-2, 2) * img_w, rng.uniform(-2, 2) * img_h
            x2, y2 = x1 + rng.uniform(0, 2 * img_w), y1 + rng.uniform(0, img_h)
        elif kind == 2:  # tiny
            x2, y2 = x1 + rng.uniform(0, 2), y1 + rng.uniform(0, 2)
        elif kind == 3:  # zero size
            x2, y2 = x1, y1
        elif kind == 4:  # inverted
            x2, y2 = x1 - rng.uniform(0, img_w), y1 - rng.uniform(0, img_h)
        elif kind == 5:  # huge
            x1, y1 = -rng.uniform(0, 1e5), -rng.uniform(0, 1e5)
            x2, y2 = rng.uniform(0, 1e5), rng.uniform(0, 1e5)
        else:  # .5 coordinates
            x1, y1 = np.floor(x1) + 0.5, np.floor(y1) + 0.5
            x2, y2 = x1 + rng.integers(0, 40) + 0.5, y1 + rng.integers(0, 40)
        rows.append([rng.integers(batch), x1, y1, x2, y2])
    return torch.tensor(rows, dtype=dtype)


def random_case(seed, dtype):
    rng = np.random.default_rng(seed)
    batch, group = int(rng.integers(1, 4)), int(rng.integers(1, 5))
    pooled = int(rng.integers(1, 3 * group + 1))
    out_dim = int(rng.integers(1, 4))
    height, width = int(rng.integers(1, 13)), int(rng.integers(1, 13))
    scale = float(rng.choice([1.0, 0.5, 0.3, 0.25, 1 / 13, 0.0625]))
    x = torch.from_numpy(
        rng.standard_normal((batch, out_dim * group**2, height, width))).to(
            dtype)
    rois = random_rois(rng, int(rng.integers(1, 9)), batch, height, width,
                       scale, dtype)
    return x, rois, out_dim, pooled, group, scale


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('seed', range(150))
def test_matches_loop_reference(seed, dtype):
    x, rois, out_dim, pooled, group, scale = random_case(seed, dtype)
    x.requires_grad_(True)
    out = ps_roi_pool(x, rois, out_dim, pooled, group, scale)
    grad_out = torch.randn(out.shape, dtype=dtype)
    out.backward(grad_out)
    ref_out, ref_grad = ref_ps_roi_pool(x, rois, out_dim, pooled, group,
                                        scale, grad_out)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(out.double(), ref_out, rtol=tol, atol=tol)
    torch.testing.assert_close(x.grad.double(), ref_grad, rtol=tol, atol=tol)


def test_fcis_shape_matches_reference():
    """FCIS sizes (k = 7, P = 21) on a small map, several images."""
    rng = np.random.default_rng(1)
    x = torch.randn(2, 2 * 49, 9, 14, dtype=torch.float64)
    rois = random_rois(rng, 6, 2, 9, 14, 1 / 16, torch.float64)
    out = ps_roi_pool(x, rois, 2, 21, 7, 1 / 16)
    ref_out, _ = ref_ps_roi_pool(x, rois, 2, 21, 7, 1 / 16)
    torch.testing.assert_close(out, ref_out, rtol=1e-12, atol=1e-12)


def test_gradcheck():
    x = torch.randn(2, 2 * 2 * 2, 6, 7, dtype=torch.float64,
                    requires_grad=True)
    rois = torch.tensor(
        [[0, 0, 0, 90, 70], [1, 20.5, 10, 60, 95], [1, -30, -20, 40, 30],
         [0, 50, 50, 40, 40], [0, 33, 17, 33, 17]],
        dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda inp: ps_roi_pool(inp, rois, 2, 3, 2, 1 / 16), (x, ),
        eps=1e-6, atol=1e-8)


# --------------------------------------------------------------------------
# Worked values of msracver/FCIS fcis/operator_cxx/psroi_pooling.cu (float32,
# scale 1/16, P = 21, k = 7, feature 38 x 63), read back from the op by a
# one-hot output gradient.
# --------------------------------------------------------------------------
def probe_bin(roi, ph, pw, height=38, width=63, scale=1 / 16, pooled=21,
              group=7):
    """Input channel, row range and column range that bin (ph, pw) reads."""
    x = torch.zeros(1, group * group, height, width, requires_grad=True)
    rois = torch.tensor([[0, *roi]], dtype=torch.float32)
    out = ps_roi_pool(x, rois, 1, pooled, group, scale)
    grad_out = torch.zeros_like(out)
    grad_out[0, 0, ph, pw] = 1
    out.backward(grad_out)
    c, h, w = torch.nonzero(x.grad[0], as_tuple=True)
    assert c.unique().numel() == 1
    return (int(c[0]), (int(h.min()), int(h.max()) + 1),
            (int(w.min()), int(w.max()) + 1))


def test_worked_values_bin_tables():
    cols = [(6, 7), (6, 8), (7, 9), (8, 9), (8, 10), (9, 10), (9, 11),
            (10, 12), (11, 12), (11, 13), (12, 13), (12, 14), (13, 15),
            (14, 15), (14, 16), (15, 16), (15, 17), (16, 18), (17, 18),
            (17, 19), (18, 19)]
    rows = [(3, 4), (3, 5), (4, 5), (4, 6), (5, 7), (6, 7), (6, 8), (7, 8),
            (7, 9), (8, 10), (9, 10), (9, 11), (10, 11), (10, 12), (11, 13),
            (12, 13), (12, 14), (13, 14), (13, 15), (14, 16), (15, 16)]
    groups = [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 5, 6, 6, 6]
    for p in range(21):
        c, h, w = probe_bin((100.4, 50.5, 300.6, 250.5), p, p)
        assert (h, w) == (rows[p], cols[p])
        assert c == groups[p] * 7 + groups[p]
    # Channel layout (d * k + gh) * k + gw off the diagonal too.
    assert probe_bin((100.4, 50.5, 300.6, 250.5), 4, 19)[0] == 1 * 7 + 6


def test_worked_values_degenerate_and_border():
    x = torch.randn(1, 49, 38, 63)
    # (10, 10, 10, 10): extent forced to 0.1 cell, every bin is cell (0, 0).
    out = ps_roi_pool(x, torch.tensor([[0., 10, 10, 10, 10]]), 1, 21, 7,
                      1 / 16)
    expected = x[0, :, 0, 0].view(7, 7).repeat_interleave(
        3, 0).repeat_interleave(3, 1)
    assert torch.equal(out[0, 0], expected)
    # (990, 590, 999, 599) at the bottom-right border of the 38 x 63 map.
    border = (990, 590, 999, 599)
    assert probe_bin(border, 0, 0)[1:] == ((36, 37), (61, 62))
    assert probe_bin(border, 20, 20)[1:] == ((37, 38), (62, 63))
    assert (61, 63) in {probe_bin(border, p, p)[2] for p in range(21)}


def test_round_half_away_from_zero():
    """C rounding before scaling: 14.5 -> 15 and 2.5 -> 3 (torch.round, half
    to even, would give 14 and 2)."""
    _, rows, cols = probe_bin((14.5, 0, 14.5, 2.5), 0, 0, scale=1.0,
                              pooled=1, group=1)
    assert cols == (15, 16)
    assert rows == (0, 4)


def test_fma_bin_limit():
    """A limit within one ulp of an integer follows the fused p * b + s of
    the official nvcc build: unfused float32 gives 1.0, fused 1.0000001, so
    column bin 6 of x = 1..7 at scale 0.3 ends at cell 2 (msracver/FCIS
    fcis/operator_cxx/psroi_pooling.cu)."""
    bw = (np.float32(8) * np.float32(0.3) - np.float32(0.3)) / np.float32(21)
    sw = np.float32(1) * np.float32(0.3)
    assert math.ceil(np.float32(7) * bw + sw) == 1
    assert math.ceil(fused(7, bw, sw, np.float32)) == 2
    _, _, cols = probe_bin((1, 1, 7, 7), 6, 6, height=4, width=4, scale=0.3)
    assert cols[1] == 2


def test_fma_bin_extent():
    """The extent (round(x2) + 1) * scale - start is one fma too, as nvcc
    contracts it: for x = 1..17 at scale 0.3 (P = 3) unfused float32 gives
    5.1 and bin 0 ends at cell 2, fused 5.1000004 ends it at cell 3, on the
    CPU and (same helper) CUDA kernels alike."""
    s = np.float32(0.3)
    start = np.float32(1) * s
    unfused = np.float32(18) * s - start
    extent = fused(np.float32(18), s, -start, np.float32)
    assert unfused != extent
    assert math.ceil(fused(1, unfused / np.float32(3), start,
                           np.float32)) == 2
    assert math.ceil(fused(1, extent / np.float32(3), start,
                           np.float32)) == 3
    _, rows, cols = probe_bin((1, 1, 17, 17), 0, 0, height=8, width=8,
                              scale=0.3, pooled=3, group=1)
    assert rows == cols == (0, 3)


def test_empty_bins_are_zero_and_get_no_gradient():
    x = torch.randn(1, 4, 5, 5, requires_grad=True)
    rois = torch.tensor([[0, 200., 200, 300, 300], [0, -90, -90, -50, -50]])
    out = ps_roi_pool(x, rois, 1, 4, 2, 1 / 16)
    assert torch.equal(out, torch.zeros_like(out))
    out.sum().backward()
    assert torch.equal(x.grad, torch.zeros_like(x))


def test_rois_get_no_gradient():
    x = torch.randn(1, 4, 5, 5, requires_grad=True)
    rois = torch.tensor([[0, 1., 2, 40, 50]], requires_grad=True)
    ps_roi_pool(x, rois, 1, 4, 2, 1 / 16).sum().backward()
    assert rois.grad is None


def test_no_rois():
    x = torch.randn(2, 8, 5, 6, requires_grad=True)
    out = ps_roi_pool(x, torch.zeros(0, 5), 2, 3, 2, 0.5)
    assert out.shape == (0, 2, 3, 3)
    out.sum().backward()
    assert x.grad.shape == x.shape and not x.grad.any()


def test_backward_is_deterministic():
    torch.manual_seed(0)
    x = torch.randn(2, 2 * 49, 20, 30, requires_grad=True)
    rois = torch.cat([torch.randint(0, 2, (200, 1)).float(),
                      torch.rand(200, 2) * 300,
                      torch.rand(200, 2) * 300 + 100], dim=1)
    out = ps_roi_pool(x, rois, 2, 21, 7, 1 / 16)
    grad_out = torch.randn_like(out)
    grads = [torch.autograd.grad(out, x, grad_out, retain_graph=True)[0]
             for _ in range(2)]
    assert torch.equal(grads[0], grads[1])


def test_non_contiguous_input():
    x = torch.randn(1, 6, 4, 7, 2)[..., 0]
    rois = torch.tensor([[0, 1., 1, 5, 3]])
    torch.testing.assert_close(
        ps_roi_pool(x, rois, 6, 2, 1, 1.0),
        ps_roi_pool(x.contiguous(), rois, 6, 2, 1, 1.0))


def test_module():
    layer = PSRoIPool(output_dim=2, pooled_size=21, group_size=7,
                      spatial_scale=1 / 16)
    assert layer.output_size == (21, 21)
    assert repr(layer) == ('PSRoIPool(output_dim=2, pooled_size=21, '
                           'group_size=7, spatial_scale=0.0625)')
    x = torch.randn(1, 98, 10, 12)
    rois = torch.tensor([[0, 10., 20, 100, 120]])
    assert torch.equal(layer(x, rois), ps_roi_pool(x, rois, 2, 21, 7, 1 / 16))
    # mmdet's SingleRoIExtractor builds it as layer_cls(spatial_scale=...,
    # **cfg).
    cfg = dict(output_dim=2, pooled_size=21, group_size=7)
    assert PSRoIPool(spatial_scale=0.25, **cfg).spatial_scale == 0.25


# --------------------------------------------------------------------------
# Bad input: every message names the argument.
# --------------------------------------------------------------------------
GOOD_X = torch.zeros(2, 8, 5, 5)
GOOD_ROIS = torch.tensor([[0, 1., 1, 9, 9]])


@pytest.mark.parametrize(
    'kwargs, error, match',
    [(dict(input=torch.zeros(8, 5, 5)), ValueError, 'input must be 4-D'),
     (dict(input=torch.zeros(2, 9, 5, 5)), ValueError, 'input must have'),
     (dict(rois=torch.zeros(3, 4)), ValueError, r'rois must be \(R, 5\)'),
     (dict(rois=torch.zeros(5)), ValueError, r'rois must be \(R, 5\)'),
     (dict(rois=torch.tensor([[2, 1., 1, 9, 9]])), ValueError,
      r'rois\[:, 0\] \(batch index\).*\[0, 2\).*2'),
     (dict(rois=torch.tensor([[-1, 1., 1, 9, 9]])), ValueError,
      r'rois\[:, 0\]'),
     (dict(rois=torch.tensor([[0.5, 1., 1, 9, 9]])), ValueError,
      r'rois\[:, 0\].*integer.*0.5'),
     (dict(rois=torch.tensor([[0, 1., float('nan'), 9, 9]])), ValueError,
      'rois must be finite'),
     (dict(rois=torch.tensor([[0, 1., 1, float('inf'), 9]])), ValueError,
      'rois must be finite'),
     (dict(rois=GOOD_ROIS.int()), TypeError,
      'rois must be a floating-point tensor'),
     (dict(input=GOOD_X.int(), rois=GOOD_ROIS.int()), TypeError,
      'input dtype'),
     (dict(input=GOOD_X.numpy()), TypeError, r'input must be a torch\.Tensor'),
     (dict(rois=GOOD_ROIS.to('meta')), ValueError, 'rois must be on'),
     (dict(output_dim=0), ValueError, 'output_dim must be positive'),
     (dict(pooled_size=-1), ValueError, 'pooled_size must be positive'),
     (dict(group_size=0), ValueError, 'group_size must be positive'),
     (dict(group_size=2.0), TypeError, 'group_size must be an int'),
     (dict(spatial_scale=0.0), ValueError, 'spatial_scale must be positive'),
     (dict(spatial_scale=float('inf')), ValueError, 'spatial_scale'),
     (dict(spatial_scale='1'), TypeError, 'spatial_scale must be a float')])
def test_bad_input(kwargs, error, match):
    args = dict(input=GOOD_X, rois=GOOD_ROIS, output_dim=2, pooled_size=3,
                group_size=2, spatial_scale=0.5)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        ps_roi_pool(**args)


def test_bad_module_args():
    with pytest.raises(ValueError, match='pooled_size'):
        PSRoIPool(2, 0, 7, 1 / 16)


# --------------------------------------------------------------------------
# Properties, CUDA parity, and the torch-free kernel header.
# --------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(
    shape=st.tuples(
        st.integers(1, 2), st.integers(1, 3), st.integers(1, 3),
        st.integers(1, 8), st.integers(1, 8), st.integers(1, 9)),
    coords=st.lists(
        st.lists(
            st.floats(-1e7, 1e7, allow_nan=False, width=32),
            min_size=4, max_size=4),
        min_size=1, max_size=6),
    scale=st.floats(1e-3, 4.0))
def test_property_finite_and_no_crash(shape, coords, scale):
    batch, out_dim, group, height, width, pooled = shape
    x = torch.randn(batch, out_dim * group**2, height, width,
                    requires_grad=True)
    rois = torch.tensor([[i % batch, *c] for i, c in enumerate(coords)],
                        dtype=torch.float32)
    out = ps_roi_pool(x, rois, out_dim, pooled, group, scale)
    assert torch.isfinite(out).all()
    out.sum().backward()
    assert torch.isfinite(x.grad).all()
    assert out.abs().max() <= x.detach().abs().max() + 1e-5


def assert_cuda_matches_cpu(op, leaf, rois, tol, to_input=lambda t: t):
    """``op(to_input(leaf), rois)`` on CUDA in ``leaf``'s dtype and on CPU
    (float32 for half): outputs and ``leaf`` gradients agree within ``tol``.
    The output gradient is random with a zero first row (an OHEM-dropped
    RoI)."""
    cpu_dtype = torch.float32 if leaf.dtype == torch.float16 else leaf.dtype
    grad_out, results = None, []
    for device, dtype in (('cpu', cpu_dtype), ('cuda', leaf.dtype)):
        x = leaf.detach().to(device, dtype).requires_grad_(True)
        out = op(to_input(x), rois.to(device, dtype))
        if grad_out is None:
            grad_out = torch.randn_like(out).to(leaf.dtype)
            grad_out[:1] = 0
        out.backward(grad_out.to(device, dtype))
        results.append((out.detach().cpu().to(cpu_dtype),
                        x.grad.cpu().to(cpu_dtype)))
    (out_cpu, grad_cpu), (out_cuda, grad_cuda) = results
    torch.testing.assert_close(out_cuda, out_cpu, rtol=tol, atol=tol)
    torch.testing.assert_close(grad_cuda, grad_cpu, rtol=tol, atol=tol)


def random_maps(like, rows, group, seed):
    """(N, rows * k * k, H, W) float64 maps of ``like``'s N, H and W."""
    n, _, height, width = like.shape
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, rows * group**2, height, width,
                       dtype=torch.float64, generator=gen)


def maps_in_layout(x, group, layout):
    """The values of (N, D * k * k, H, W) maps ``x`` as a leaf tensor, and
    the function making the op's input of it: ``x`` itself ('official'), or
    the (N, D, k, k, H, W) view of an (N, H, W, k, k, D) contiguous tensor
    ('channels_last', the layout FCISRoIHead makes)."""
    if layout == 'official':
        return x, lambda t: t
    n, c, height, width = x.shape
    leaf = x.view(n, c // group**2, group, group, height,
                  width).permute(0, 4, 5, 2, 3, 1).contiguous()
    return leaf, lambda t: t.permute(0, 5, 3, 4, 1, 2)


CUDA_TOLS = [(torch.float64, 1e-12), (torch.float32, 1e-5)]


@pytest.mark.skipif(not IS_CUDA_AVAILABLE, reason='requires CUDA')
@pytest.mark.parametrize('dtype, tol', CUDA_TOLS + [(torch.float16, 2e-2)])
def test_cuda_matches_cpu(dtype, tol):
    for seed in range(20):
        x, rois, out_dim, pooled, group, scale = random_case(
            seed, torch.float64)
        if dtype == torch.float16:  # keep coordinates exact in half
            rois = rois.clamp(-2000, 2000).round()
        assert_cuda_matches_cpu(
            lambda inp, r: ps_roi_pool(inp, r, out_dim, pooled, group, scale),
            x.to(dtype), rois, tol)


@pytest.mark.skipif(not IS_CUDA_AVAILABLE, reason='requires CUDA')
@pytest.mark.parametrize('layout', ['official', 'channels_last'])
@pytest.mark.parametrize('dtype, tol', CUDA_TOLS)
def test_cuda_channel_start_matches_cpu(dtype, tol, layout):
    """Per-RoI channel rows (Label_Pick), on both layouts of the maps."""
    for seed in range(10):
        x, rois, out_dim, pooled, group, scale = random_case(
            seed, torch.float64)
        rows = out_dim + seed % 3
        leaf, to_input = maps_in_layout(
            random_maps(x, rows, group, seed), group, layout)
        start = torch.randint(
            0, rows - out_dim + 1, (rois.size(0), ),
            generator=torch.Generator().manual_seed(seed))

        def op(inp, r):
            return ps_roi_pool(inp, r, out_dim, pooled, group, scale,
                               channel_start=start.to(r.device))

        assert_cuda_matches_cpu(op, leaf.to(dtype), rois, tol, to_input)


@pytest.mark.skipif(not IS_CUDA_AVAILABLE, reason='requires CUDA')
@pytest.mark.parametrize('layout', ['official', 'channels_last'])
@pytest.mark.parametrize('dtype, tol', CUDA_TOLS)
def test_cuda_max_avg_pool_matches_cpu(dtype, tol, layout):
    for seed in range(10):
        x, rois, groups, pooled, group, scale = random_case(
            seed, torch.float64)
        cig = 1 + seed % 3
        leaf, to_input = maps_in_layout(
            random_maps(x, groups * cig, group, seed), group, layout)
        assert_cuda_matches_cpu(
            lambda inp, r: ps_roi_max_avg_pool(inp, r, groups, cig, pooled,
                                               group, scale),
            leaf.to(dtype), rois, tol, to_input)


@pytest.mark.skipif(shutil.which('nvcc') is None, reason='requires nvcc')
def test_cuda_kernel_header_compiles_without_torch(tmp_path):
    """All four kernels instantiate with plain nvcc for float, double, half
    and bfloat16 (these two with float accumulation), with the parameter
    lists the launchers in ps_roi_pool_cuda.cu pass."""
    signatures = {
        'ps_roi_pool_forward':
        'const int64_t, const {S}*, const PSRoIPoolMaps, const {S}*, '
        'const int64_t*, {S}*, const {A}, const int, const int',
        'ps_roi_pool_backward':
        'const int64_t, const {S}*, const {S}*, const int64_t*, {A}*, '
        'const PSRoIPoolMaps, const {A}, const int, const int',
        'ps_roi_max_avg_pool_forward':
        'const int64_t, const {S}*, const PSRoIPoolMaps, const {S}*, {S}*, '
        'const {A}, const int, const int',
        'ps_roi_max_avg_pool_backward':
        'const int64_t, const {S}*, const {S}*, const PSRoIPoolMaps, '
        'const {S}*, {A}*, const PSRoIPoolMaps, const {A}, const int, '
        'const int',
    }
    lines = ['#include <cuda_bf16.h>', '#include <cuda_fp16.h>',
             '#include "ps_roi_pool_cuda_kernel.cuh"']
    for s, a in (('float', 'float'), ('double', 'double'),
                 ('__half', 'float'), ('__nv_bfloat16', 'float')):
        for kernel, args in signatures.items():
            lines.append(f'template __global__ void {kernel}_cuda_kernel'
                         f'<{s}, {a}>({args.format(S=s, A=a)});')
    src = tmp_path / 'ps_roi_pool_instantiate.cu'
    src.write_text('\n'.join(lines) + '\n')
    common = osp.abspath(CSRC_COMMON)
    proc = subprocess.run([
        'nvcc', '-c', str(src), '-o',
        str(tmp_path / 'ps_roi_pool.o'), f'-I{common}',
        f'-I{osp.join(common, "cuda")}'
    ],
                          capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
