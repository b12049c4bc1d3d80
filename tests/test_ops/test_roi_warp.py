# Copyright (c) OpenMMLab. All rights reserved.
"""Tests of mnc_mm.ops.roi_warp against an independent float64 reference."""
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mnc_mm.ops import RoIWarp, RoIWarpPool, ext_available, roi_warp

pytestmark = pytest.mark.skipif(
    not ext_available(), reason='mnc_mm._ext is not built')

IS_CUDA_AVAILABLE = torch.cuda.is_available()
CSRC = Path(__file__).resolve().parents[2] / 'mnc_mm' / 'ops' / 'csrc'


# --------------------------------------------------------------------------
# Independent reference (pure PyTorch, autograd gives its gradients).
# --------------------------------------------------------------------------
def _round_away(v):
    return torch.sign(v) * torch.floor(v.abs() + 0.5)


def _fma(p, b, s):
    """``p * b + s`` rounded once to float64, as C's fma()."""
    return float(Fraction(float(p)) * Fraction(float(b)) + Fraction(float(s)))


def _fused(value, exact):
    """``value`` (differentiable) carrying the float ``exact`` instead."""
    return value + (torch.as_tensor(exact, dtype=value.dtype) -
                    value).detach()


def _ref_positions(c1, c2, scale, quantize, pooled):
    """Sample positions of one axis (feature pixels), differentiable. The
    kernels write ``a2 - a1`` (unrounded) and ``a1 + p * bin`` as fma(), so
    that CPU and CUDA round them alike; so does the reference."""
    a1, a2 = c1 * scale, c2 * scale
    if quantize:  # straight-through rounding
        a1 = a1 + (_round_away(a1) - a1).detach()
        a2 = a2 + (_round_away(a2) - a2).detach()
        extent = a2 - a1
    else:
        extent = _fused(a2 - a1,
                        _fma(c2.detach(), scale, -float(a1.detach())))
    length = torch.clamp(extent, min=0)
    steps = torch.arange(pooled, dtype=c1.dtype)
    bin_size = length / pooled
    exact = [_fma(p, bin_size.detach(), a1.detach()) for p in range(pooled)]
    return _fused(a1 + steps * bin_size, exact)


def _ref_taps(pos, size):
    """Bilinear taps under the official border rules (daijifeng001/caffe-mnc
    src/caffe/layers/roi_warping_layer.cu (bilinear_interpolate))."""
    valid = (pos >= -0.5) & (pos <= size - 0.5)
    low = pos < 0
    p = torch.where(low, torch.zeros_like(pos), pos)
    lo = p.detach().floor().clamp(0, size - 1).long()
    high = lo >= size - 1
    hi = torch.where(low | high, lo, (lo + 1).clamp(max=size - 1))
    frac = torch.where(low | high, torch.zeros_like(p), p - lo)
    return lo, hi, frac, valid


def ref_roi_warp(feat, rois, out_h, out_w, scale, quantize):
    """Loop-over-RoIs float64 reference of the warp."""
    _, _, height, width = feat.shape
    outs = []
    for r in range(rois.shape[0]):
        f = feat[int(rois[r, 0])]
        ys = _ref_positions(rois[r, 2], rois[r, 4], scale, quantize, out_h)
        xs = _ref_positions(rois[r, 1], rois[r, 3], scale, quantize, out_w)
        ylo, yhi, ly, vy = _ref_taps(ys, height)
        xlo, xhi, lx, vx = _ref_taps(xs, width)
        ly, lx = ly[:, None], lx[None, :]

        def at(yi, xi):
            return f[:, yi[:, None], xi[None, :]]

        val = ((1 - ly) * ((1 - lx) * at(ylo, xlo) + lx * at(ylo, xhi)) + ly *
               ((1 - lx) * at(yhi, xlo) + lx * at(yhi, xhi)))
        outs.append(val * (vy[:, None] & vx[None, :]))
    if not outs:
        return feat.new_zeros((0, feat.shape[1], out_h, out_w))
    return torch.stack(outs)


def random_case(seed):
    """A random problem with every kind of box the op must handle."""
    g = torch.Generator().manual_seed(seed)
    rnd = np.random.default_rng(seed)
    n, c = int(rnd.integers(1, 4)), int(rnd.integers(1, 4))
    h, w = int(rnd.integers(1, 13)), int(rnd.integers(1, 13))
    out_h, out_w = int(rnd.integers(1, 8)), int(rnd.integers(1, 8))
    scale = float(rnd.choice([1.0, 0.5, 0.25, 1 / 16]))
    feat = torch.randn(n, c, h, w, dtype=torch.float64, generator=g)
    img_w, img_h = w / scale, h / scale
    boxes = []
    for _ in range(int(rnd.integers(1, 7))):
        kind = rnd.choice([
            'inside', 'partial', 'outside', 'tiny', 'huge', 'inverted', 'zero',
            'grid'
        ])
        x1, x2 = np.sort(rnd.uniform(-0.2, 1.2, 2) * img_w)
        y1, y2 = np.sort(rnd.uniform(-0.2, 1.2, 2) * img_h)
        if kind == 'inside':
            x1, x2 = np.sort(rnd.uniform(0, img_w - 1, 2))
            y1, y2 = np.sort(rnd.uniform(0, img_h - 1, 2))
        elif kind == 'outside':
            x1, x2 = x1 + 2 * img_w, x2 + 2 * img_w
        elif kind == 'tiny':
            x2, y2 = x1 + rnd.uniform(0, 1), y1 + rnd.uniform(0, 1)
        elif kind == 'huge':
            x1, y1 = -5 * img_w, -5 * img_h
            x2, y2 = 7 * img_w, 7 * img_h
        elif kind == 'inverted':
            x1, x2, y1, y2 = x2, x1, y2, y1
        elif kind == 'zero':
            x2, y2 = x1, y1
        elif kind == 'grid':  # corners on image pixels multiple of 1/scale
            x1, x2, y1, y2 = (
                np.round(v * scale) / scale for v in (x1, x2, y1, y2))
        boxes.append([float(rnd.integers(0, n)), x1, y1, x2, y2])
    rois = torch.tensor(boxes, dtype=torch.float64)
    return feat, rois, (out_h, out_w), scale


@pytest.mark.parametrize('quantize', [False, True])
@pytest.mark.parametrize('block', range(3))
def test_random_cases_match_reference(quantize, block):
    """Forward, feature and box gradients vs the reference, 300 cases."""
    for seed in range(block * 50, block * 50 + 50):
        feat, rois, (out_h, out_w), scale = random_case(seed)
        feat.requires_grad_()
        rois.requires_grad_()
        out = roi_warp(feat, rois, (out_h, out_w), scale, quantize)
        ref = ref_roi_warp(feat, rois, out_h, out_w, scale, quantize)
        torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
        grad = torch.randn_like(out)
        got = torch.autograd.grad(out, (feat, rois), grad)
        exp = torch.autograd.grad(ref, (feat, rois), grad, allow_unused=True)
        torch.testing.assert_close(got[0], exp[0], rtol=1e-9, atol=1e-9)
        exp_rois = torch.zeros_like(rois) if exp[1] is None else exp[1]
        assert torch.all(got[1][:, 0] == 0)
        torch.testing.assert_close(got[1], exp_rois, rtol=1e-9, atol=1e-9)


def _smooth_rois(rng, n, h, w, scale, num, pooled):
    """Boxes whose samples stay off integers and away from the borders."""
    rois = []
    while len(rois) < num:
        x1, x2 = np.sort(rng.uniform(0.1, w - 1.6, 2))
        y1, y2 = np.sort(rng.uniform(0.1, h - 1.6, 2))
        pos = np.concatenate([
            x1 + np.arange(pooled) * (x2 - x1) / pooled,
            y1 + np.arange(pooled) * (y2 - y1) / pooled
        ])
        if np.abs(pos - np.round(pos)).min() > 1e-3 and x2 - x1 > 0.1 \
                and y2 - y1 > 0.1:
            rois.append([
                rng.integers(0, n), x1 / scale, y1 / scale, x2 / scale,
                y2 / scale
            ])
    return torch.tensor(rois, dtype=torch.float64)


def test_gradcheck_input_and_rois():
    rng = np.random.default_rng(0)
    scale = 0.5
    feat = torch.randn(2, 2, 7, 8, dtype=torch.float64, requires_grad=True)
    rois = _smooth_rois(rng, 2, 7, 8, scale, 4, 5)
    boxes = rois[:, 1:].clone().requires_grad_()

    def warp(f, b):
        # gradcheck must not perturb the batch index column.
        return roi_warp(f, torch.cat([rois[:, :1], b], 1), (5, 4), scale)

    assert torch.autograd.gradcheck(warp, (feat, boxes), eps=1e-6, atol=1e-6)


# --------------------------------------------------------------------------
# Official formulas (daijifeng001/caffe-mnc
# src/caffe/layers/roi_warping_layer.cu).
# --------------------------------------------------------------------------
def _t3():
    feat = (24 * torch.arange(20.)[:, None] + torch.arange(24.))[None, None]
    rois = torch.tensor([[0, 40.3, 23.9, 250.2, 180.7]])
    return feat.double(), rois.double()


def test_official_test_vectors():
    feat, rois = _t3()
    feat.requires_grad_()
    rois.requires_grad_()
    out = roi_warp(feat, rois, 28, 1 / 16, quantize=True)
    o = out[0, 0]
    expected = [(o[0, 0], 27.0), (o[0, 1], 27.464286), (o[1, 0], 35.571429),
                (o[27, 27], 270.964286)]
    for got, exp in expected:
        assert abs(got.item() - exp) < 1e-5
    # T4: 2x2 max-pool of the 28x28 warp minus the direct 14x14 warp.
    pooled = RoIWarpPool(28, 14, 1 / 16, quantize=True)(feat, rois)
    direct = roi_warp(feat, rois, 14, 1 / 16, quantize=True)
    torch.testing.assert_close(
        pooled - direct, torch.full_like(direct, 9.035714), atol=1e-5, rtol=0)
    # T5 (exact adjoint) and T6 (exact straight-through box gradient).
    out.sum().backward()
    assert abs(feat.grad.sum().item() - 784) < 1e-5
    torch.testing.assert_close(
        rois.grad[0],
        torch.tensor([0, 25.375, 609.0, 23.625, 567.0], dtype=torch.float64),
        atol=1e-5,
        rtol=0)


def test_rounding_half_away_from_zero():
    """T9: 8 px at s = 1/16 is 0.5 and quantises to 1, not 0."""
    feat = torch.arange(16.).reshape(1, 1, 4, 4)
    rois = torch.tensor([[0, 8., 8., 40., 40.]])
    assert roi_warp(feat, rois, 1, 1 / 16, quantize=True).item() == 5.0
    # -8 px quantises to -1 (< -0.5): outside, so 0.
    rois = torch.tensor([[0, -8., 8., 40., 40.]])
    assert roi_warp(feat, rois, 1, 1 / 16, quantize=True).item() == 0.0


def test_quantized_box_gradient_correct_ratio():
    """daijifeng001/caffe-mnc src/caffe/layers/roi_warping_layer.cu
    (ROIWarpingBackwardCoordinate) with the exact ratio pw/P, worked by hand.

    F[h, w] = 3 h^2 + w^2 (3x3), corners quantise to (0, 0, 2, 2), P = 2,
    G = 1: samples at x, y in {0, 1}; right-sided dv/dx = 2x + 1 and
    dv/dy = 3 (2y + 1). dL/dx1 = s * 2 * (1 * 1 + 0.5 * 3) = 5 s,
    dL/dx2 = s * 2 * (0.5 * 3) = 3 s, dL/dy1 = 15 s, dL/dy2 = 9 s.
    The official ratio pw/(L + 1) would give dL/dx1 = 6 s.
    """
    h = torch.arange(3.)
    feat = (3 * h[:, None]**2 + h[None, :]**2)[None, None].double()
    rois = torch.tensor([[0, 0.6, -0.4, 4.3, 3.9]],
                        dtype=torch.float64,
                        requires_grad=True)
    roi_warp(feat, rois, 2, 0.5, quantize=True).sum().backward()
    torch.testing.assert_close(
        rois.grad[0],
        0.5 * torch.tensor([0, 5., 15., 3., 9.], dtype=torch.float64))


# --------------------------------------------------------------------------
# API, validation, edge cases.
# --------------------------------------------------------------------------
def test_modules_and_repr():
    feat, rois = _t3()
    m = RoIWarp(output_size=(6, 4), spatial_scale=1 / 16)
    assert m.output_size == (6, 4)
    assert repr(m) == ('RoIWarp(output_size=(6, 4), spatial_scale=0.0625, '
                       'quantize=False)')
    assert m(feat, rois).shape == (1, 1, 6, 4)
    p = RoIWarpPool(28, 7, spatial_scale=1 / 16, quantize=True)
    assert 'warp_size=(28, 28), output_size=(7, 7)' in repr(p)
    assert p(feat, rois).shape == (1, 1, 7, 7)
    with pytest.raises(ValueError, match='warp_size'):
        RoIWarpPool(28, 8, 1 / 16)


def test_as_mmdet_roi_layer():
    """mmdet builds the layer as ``cls(spatial_scale=1 / s, **cfg)``."""
    roi_extractors = pytest.importorskip('mmdet.models.roi_heads')
    extractor = roi_extractors.SingleRoIExtractor(
        roi_layer=dict(type=RoIWarpPool, warp_size=28, output_size=14),
        out_channels=1,
        featmap_strides=[16])
    feat, rois = _t3()
    out = extractor((feat, ), rois)
    torch.testing.assert_close(
        out,
        RoIWarpPool(28, 14, spatial_scale=1 / 16)(feat, rois))


def _bad_calls():
    feat = torch.zeros(2, 3, 5, 5)
    rois = torch.tensor([[0, 1., 1., 3., 3.]])
    return [
        ((feat[0], rois, 2, 1.), ValueError, 'input must be 4-D'),
        ((torch.zeros(1, 1, 0, 4), rois, 2, 1.), ValueError, 'H, W >= 1'),
        ((feat, rois[:, :4], 2, 1.), ValueError, r'rois must be \(R, 5\)'),
        ((feat, rois[0], 2, 1.), ValueError, r'rois must be \(R, 5\)'),
        ((feat, rois.long(), 2, 1.), TypeError,
         'rois must be a floating-point tensor'),
        ((feat.int(), rois.int(), 2, 1.), TypeError, 'input dtype'),
        ((feat, rois.to('meta'), 2, 1.), ValueError, 'rois must be on'),
        ((feat.numpy(), rois, 2, 1.), TypeError,
         'input must be a torch.Tensor'),
        ((feat, torch.tensor([[2, 1., 1., 3., 3.]]), 2, 1.), ValueError,
         r'batch index\) must be an integer in \[0, 2\), got 2'),
        ((feat, torch.tensor([[-1, 1., 1., 3.,
                               3.]]), 2, 1.), ValueError, 'batch index'),
        ((feat, torch.tensor([[0.5, 1., 1., 3.,
                               3.]]), 2, 1.), ValueError, 'got 0.5'),
        ((feat, torch.tensor([[0, float('nan'), 1., 3., 3.]]), 2, 1.),
         ValueError, 'rois must be finite'),
        ((feat, torch.tensor([[0, 1., 1., float('inf'), 3.]]), 2, 1.),
         ValueError, 'rois must be finite'),
        ((feat, rois, 0, 1.), ValueError, 'output_size must be positive'),
        ((feat, rois, (2, -1), 1.), ValueError, 'output_size'),
        ((feat, rois, (2, 2, 2), 1.), ValueError, 'output_size'),
        ((feat, rois, 2.5, 1.), TypeError, 'output_size'),
        ((feat, rois, 2, 0.), ValueError, 'spatial_scale'),
        ((feat, rois, 2, -1.), ValueError, 'spatial_scale'),
        ((feat, rois, 2, float('nan')), ValueError, 'spatial_scale'),
        ((feat, rois, 2, 'x'), TypeError, 'spatial_scale'),
    ]


@pytest.mark.parametrize('case', range(len(_bad_calls())))
def test_bad_inputs(case):
    args, exc, match = _bad_calls()[case]
    with pytest.raises(exc, match=match):
        roi_warp(*args)


@pytest.mark.parametrize('module', [RoIWarp(3, 0.5), RoIWarpPool(4, 2, 0.5)])
def test_zero_rois(module):
    feat = torch.randn(2, 3, 5, 5, dtype=torch.float64, requires_grad=True)
    rois = torch.zeros(0, 5, dtype=torch.float64, requires_grad=True)
    out = module(feat, rois)
    assert out.shape == (0, 3) + module.output_size
    out.sum().backward()
    assert feat.grad.shape == feat.shape and not feat.grad.any()
    assert rois.grad.shape == (0, 5)


def test_only_one_gradient_requested():
    feat, rois = _t3()
    out = roi_warp(feat.requires_grad_(), rois, 28, 1 / 16, True)
    out.sum().backward()
    assert feat.grad.sum().item() == pytest.approx(784)
    feat, rois = _t3()
    out = roi_warp(feat, rois.requires_grad_(), 28, 1 / 16, True)
    out.sum().backward()
    assert rois.grad[0, 1].item() == pytest.approx(25.375)


def test_cpu_backward_deterministic():
    torch.manual_seed(0)
    feat = torch.randn(2, 16, 20, 24, requires_grad=True)
    xy = torch.rand(200, 2) * 300 - 50
    wh = torch.rand(200, 2) * 200
    idx = torch.randint(0, 2, (200, 1)).float()
    rois = torch.cat([idx, xy, xy + wh], 1).requires_grad_()
    grad = torch.randn(200, 16, 14, 14)
    runs = []
    for _ in range(2):
        out = roi_warp(feat, rois, 14, 1 / 16)
        runs.append(torch.autograd.grad(out, (feat, rois), grad))
    assert torch.equal(runs[0][0], runs[1][0])
    assert torch.equal(runs[0][1], runs[1][1])


@given(
    n=st.integers(1, 2),
    c=st.integers(1, 3),
    h=st.integers(1, 9),
    w=st.integers(1, 9),
    out=st.tuples(st.integers(1, 6), st.integers(1, 6)),
    scale=st.floats(1e-3, 4.0),
    quantize=st.booleans(),
    coords=st.lists(
        st.lists(
            st.floats(width=32, allow_nan=False, allow_infinity=False),
            min_size=4,
            max_size=4),
        min_size=1,
        max_size=4),
)
@settings(max_examples=60, deadline=None)
def test_property_finite(n, c, h, w, out, scale, quantize, coords):
    """Any finite boxes give finite outputs and gradients, never crash."""
    feat = torch.randn(n, c, h, w, requires_grad=True)
    rois = torch.tensor([[i % n] + b for i, b in enumerate(coords)],
                        requires_grad=True)
    res = roi_warp(feat, rois, out, scale, quantize)
    assert res.shape == (len(coords), c) + out
    assert torch.isfinite(res).all()
    gf, gr = torch.autograd.grad(res, (feat, rois), torch.ones_like(res))
    assert torch.isfinite(gf).all()
    # d(sample)/d(corner) is at most spatial_scale, whatever the box size.
    assert torch.isfinite(gr).all()


# --------------------------------------------------------------------------
# CUDA.
# --------------------------------------------------------------------------
@pytest.mark.skipif(not IS_CUDA_AVAILABLE, reason='requires CUDA')
@pytest.mark.parametrize('quantize', [False, True])
@pytest.mark.parametrize('dtype,tol', [(torch.float64, 1e-10),
                                       (torch.float32, 1e-4),
                                       (torch.float16, 2e-2),
                                       (torch.bfloat16, 6e-2)])
def test_cpu_cuda_parity(quantize, dtype, tol):
    for seed in range(20):
        feat, rois, size, scale = random_case(seed)
        if dtype in (torch.float16, torch.bfloat16):
            # The CUDA op sees the RoIs rounded to its dtype: give the CPU
            # reference the same boxes, or a rounded corner that crosses a
            # quantisation or sampling boundary differs by O(1).
            rois = rois.to(dtype).double()
        grad = torch.randn(
            rois.shape[0], feat.shape[1], *size, dtype=torch.float64)
        res = {}
        for device in ('cpu', 'cuda'):
            run_dtype = torch.float64 if device == 'cpu' else dtype
            f = feat.to(device, run_dtype).requires_grad_()
            r = rois.to(device, run_dtype).requires_grad_()
            out = roi_warp(f, r, size, scale, quantize)
            grads = torch.autograd.grad(out, (f, r), grad.to(out))
            res[device] = [t.double().cpu() for t in (out, ) + grads]
        for got, exp in zip(res['cuda'], res['cpu']):
            torch.testing.assert_close(
                got, exp, rtol=tol, atol=tol * (1 + exp.abs().max().item()))


@pytest.mark.skipif(shutil.which('nvcc') is None, reason='requires nvcc')
def test_cuda_kernels_compile_without_torch(tmp_path):
    """The .cuh kernels build with plain nvcc, no torch headers."""
    src = tmp_path / 'roi_warp_instantiate.cu'
    lines = ['#include <cuda_bf16.h>', '#include <cuda_fp16.h>',
             '#include "roi_warp_cuda_kernel.cuh"']
    for s, a in (('float', 'float'), ('double', 'double'),
                 ('__half', 'float'), ('__nv_bfloat16', 'float')):
        lines += [
            f'template __global__ void roi_warp_forward_cuda_kernel<{s}, {a}>('
            f'const int64_t, const {s}*, const {s}*, {s}*, const int64_t, '
            f'const int, const int, const int, const int, const int, '
            f'const {a}, const bool);',
            'template __global__ void '
            f'roi_warp_backward_cuda_kernel<{s}, {a}>('
            f'const {s}*, const {s}*, const {s}*, {a}*, {a}*, '
            f'const int64_t, const int, const int, const int, const int, '
            f'const int, const {a}, const bool);',
        ]
    src.write_text('\n'.join(lines) + '\n')
    proc = subprocess.run([
        'nvcc', '-c',
        str(src), '-o',
        str(tmp_path / 'k.o'), f'-I{CSRC / "common"}',
        f'-I{CSRC / "common" / "cuda"}'
    ],
                          capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
