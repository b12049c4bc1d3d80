# Copyright (c) OpenMMLab. All rights reserved.
"""Child process of test_ops_fuzz.py: runs the seeded fuzz cases of one op
and dtype, printing ``case <i>`` before each and ``ok <i> <kind>`` after, so
that the parent names the case that crashed the process.

Each case draws RoIs (degenerate, huge, NaN, inf, bad batch indices) and a
spatial scale (ordinary, tiny, huge, denormal, 0, negative, NaN, inf), runs
the op forward and backward, and checks: an invalid input (a non-finite
RoI value, a batch index that is not an integer in [0, N), a scale that is
not finite and positive in the dtype the kernel computes in) raises a
ValueError naming the op; any other input gives finite outputs and feature
gradients equal to the numpy reference below, which follows the kernels'
arithmetic (fma limits, NaN limit -> empty bin, clamped taps).

Usage: ``python fuzz_ops_child.py OP DTYPE SEED NUM_CASES``.
"""
import math
import sys
from fractions import Fraction

import numpy as np
import torch

from mnc_mm.ops import ps_roi_max_avg_pool, ps_roi_pool, roi_warp

COORDS = [0., 0.5, -0.5, 3., 7.25, 1e4, -1e4, 1e30, -1e30, 3e38, -3e38,
          1e308, -1e308, math.nan, math.inf, -math.inf]
SCALES = [1 / 16, 0.3, 1.0, 1 / 13, 1e-30, 1e30, 1e39, 1e-46, 1e-310, 0.,
          -1., math.nan, math.inf]


def c_round(v):
    """C round (half away from zero) of a finite float; others unchanged."""
    if not math.isfinite(v):
        return v
    f = math.floor(abs(v))
    return math.copysign(f + 1 if abs(v) - f >= 0.5 else f, v)


def fma(p, b, s, ft):
    """``p * b + s`` rounded once to ``ft``, for any floats."""
    p, b, s = float(p), float(b), float(s)
    if not all(math.isfinite(v) for v in (p, b, s)):
        with np.errstate(all='ignore'):
            return ft(np.float64(p) * np.float64(b) + np.float64(s))
    exact = Fraction(p) * Fraction(b) + Fraction(s)
    try:
        return ft(float(exact))
    except OverflowError:
        return ft(math.inf if exact > 0 else -math.inf)


def mul(a, b, ft):
    with np.errstate(all='ignore'):
        return ft(ft(a) * ft(b))


# --------------------------------------------------------------------------
# PSRoIPool reference: bins of one axis, then plain averages in float64.
# --------------------------------------------------------------------------
def ps_axis(c1, c2, scale, pooled, size, ft):
    start = mul(c_round(c1), scale, ft)
    with np.errstate(all='ignore'):
        extent = fma(ft(c_round(c2)) + ft(1), scale, -start, ft)
        bin_size = (extent if extent > ft(0.1) else ft(0.1)) / ft(pooled)
    ranges = []
    for p in range(pooled):
        a = np.floor(fma(p, bin_size, start, ft))
        b = np.ceil(fma(p + 1, bin_size, start, ft))
        if not a <= b:
            ranges.append((0, 0))
            continue
        ranges.append((int(min(max(a, 0), size)), int(min(max(b, 0), size))))
    return ranges


def ref_ps_roi_pool(x, rois, dims, pooled, group, scale, grad_out):
    ft = np.float32 if x.dtype == torch.float32 else np.float64
    xs = x.double().numpy()
    n_maps, _, height, width = xs.shape
    out = np.zeros((len(rois), dims, pooled, pooled))
    grad = np.zeros_like(xs)
    g_out = grad_out.double().numpy()
    for n, roi in enumerate(rois.tolist()):
        b = int(roi[0])
        rows = ps_axis(roi[2], roi[4], scale, pooled, height, ft)
        cols = ps_axis(roi[1], roi[3], scale, pooled, width, ft)
        for ph, (hs, he) in enumerate(rows):
            gh = min(ph * group // pooled, group - 1)
            for pw, (ws, we) in enumerate(cols):
                if he <= hs or we <= ws:
                    continue
                gw = min(pw * group // pooled, group - 1)
                area = (he - hs) * (we - ws)
                for d in range(dims):
                    c = (d * group + gh) * group + gw
                    out[n, d, ph, pw] = xs[b, c, hs:he, ws:we].mean()
                    grad[b, c, hs:he, ws:we] += g_out[n, d, ph, pw] / area
    return out, grad


def ref_ps_roi_max_avg_pool(x, rois, groups, cig, pooled, group, scale,
                            grad_out):
    """Group_Max over the cig rows of each group (ties to the lowest row),
    mean over the bins."""
    g_out = grad_out.double().numpy()
    pooled_all, _ = ref_ps_roi_pool(
        x, rois, groups * cig, pooled, group, scale,
        torch.zeros(len(rois), groups * cig, pooled, pooled))
    pooled_all = pooled_all.reshape(len(rois), groups, cig, pooled, pooled)
    out = pooled_all.max(2).mean((2, 3))
    winners = pooled_all.argmax(2)  # (R, G, P, P)
    grad_bins = np.zeros((len(rois), groups * cig, pooled, pooled))
    for n in range(len(rois)):
        for g in range(groups):
            for ph in range(pooled):
                for pw in range(pooled):
                    row = g * cig + winners[n, g, ph, pw]
                    grad_bins[n, row, ph, pw] = g_out[n, g] / pooled**2
    _, grad = ref_ps_roi_pool(x, rois, groups * cig, pooled, group, scale,
                              torch.from_numpy(grad_bins))
    return out, grad


# --------------------------------------------------------------------------
# RoIWarp reference: sample positions, border rules, bilinear taps.
# --------------------------------------------------------------------------
def warp_axis(c1, c2, scale, pooled, size, quantize, ft):
    """[(lo, hi, frac) or None] of the pooled samples of one axis."""
    a1, a2 = mul(c1, scale, ft), mul(c2, scale, ft)
    with np.errstate(all='ignore'):
        if quantize:
            a1, a2 = ft(c_round(float(a1))), ft(c_round(float(a2)))
            extent = ft(a2 - a1)
        else:
            extent = fma(c2, scale, -a1, ft)
        bin_size = extent / ft(pooled) if extent >= 0 else ft(0)
    taps = []
    for p in range(pooled):
        pos = fma(p, bin_size, a1, ft)
        if not (-0.5 <= pos <= size - 0.5):
            taps.append(None)
        elif pos < 0:
            taps.append((0, 0, 0.))
        elif int(pos) >= size - 1:
            taps.append((size - 1, size - 1, 0.))
        else:
            lo = int(pos)
            taps.append((lo, lo + 1, float(pos) - lo))
    return taps


def ref_roi_warp(x, rois, size, scale, quantize, grad_out):
    ft = np.float32 if x.dtype == torch.float32 else np.float64
    xs = x.double().numpy()
    _, channels, height, width = xs.shape
    ph_n, pw_n = size
    out = np.zeros((len(rois), channels, ph_n, pw_n))
    grad = np.zeros_like(xs)
    g_out = grad_out.double().numpy()
    for r, roi in enumerate(rois.tolist()):
        b = int(roi[0])
        ys = warp_axis(roi[2], roi[4], scale, ph_n, height, quantize, ft)
        xs_t = warp_axis(roi[1], roi[3], scale, pw_n, width, quantize, ft)
        for i, ty in enumerate(ys):
            for j, tx in enumerate(xs_t):
                if ty is None or tx is None:
                    continue
                (y0, y1, ly), (x0, x1, lx) = ty, tx
                weights = (((y0, x0), (1 - ly) * (1 - lx)),
                           ((y0, x1), (1 - ly) * lx),
                           ((y1, x0), ly * (1 - lx)), ((y1, x1), ly * lx))
                for (yy, xx), wgt in weights:
                    out[r, :, i, j] += wgt * xs[b, :, yy, xx]
                    grad[b, :, yy, xx] += wgt * g_out[r, :, i, j]
    return out, grad


# --------------------------------------------------------------------------
# Cases.
# --------------------------------------------------------------------------
def draw_rois(rng, num, batch):
    rows = []
    for _ in range(num):
        kind = rng.integers(4)
        if kind == 0:  # ordinary box
            x1, y1 = rng.uniform(-20, 100, 2)
            box = [x1, y1, x1 + rng.uniform(0, 120), y1 + rng.uniform(0, 120)]
        elif kind == 1:  # degenerate: a point, a line or inverted
            x1, y1 = rng.uniform(-20, 100, 2)
            box = [x1, y1, x1 - rng.choice([0, 0, 5]), y1]
        else:  # edge values in any corner
            box = list(rng.uniform(-20, 100, 4))
            for k in rng.choice(4, int(rng.integers(1, 3)), replace=False):
                box[k] = COORDS[rng.integers(len(COORDS))]
        index = float(rng.integers(batch))
        if rng.random() < 0.06:  # bad batch index
            index = [float(batch), -1., 0.5, math.nan][rng.integers(4)]
        rows.append([index] + [float(v) for v in box])
    return rows


def scale_is_valid(scale, dtype):
    if not (math.isfinite(scale) and scale > 0):
        return False
    if dtype == torch.float64:
        return True
    return 0 < abs(scale) <= np.finfo(np.float32).max and \
        np.float32(scale) > 0


def rois_are_valid(rows, dtype, batch):
    values = torch.tensor(rows, dtype=torch.float64).to(dtype)
    finite = bool(torch.isfinite(values).all())
    idx = values[:, 0]
    good_idx = bool(((idx == idx.floor()) & (idx >= 0) &
                     (idx < batch)).all())
    return finite and good_idx


def run_case(op, dtype, rng):
    batch, height, width = 2, int(rng.integers(1, 7)), int(rng.integers(1, 7))
    group, pooled = int(rng.integers(1, 3)), int(rng.integers(1, 5))
    scale = SCALES[rng.integers(len(SCALES))] if rng.random() < 0.5 \
        else float(rng.choice([1 / 16, 0.3, 0.5, 1.]))
    rows = draw_rois(rng, int(rng.integers(1, 4)), batch)
    rois = torch.tensor(rows, dtype=torch.float64).to(dtype)
    dims, cig = int(rng.integers(1, 3)), int(rng.integers(1, 3))
    channels = dims * cig * group**2
    x = torch.from_numpy(rng.standard_normal(
        (batch, channels, height, width))).to(dtype).requires_grad_(True)
    quantize = bool(rng.integers(2))
    if op == 'ps_roi_pool':
        def call():
            return ps_roi_pool(x, rois, dims * cig, pooled, group, scale)
    elif op == 'ps_roi_max_avg_pool':
        def call():
            return ps_roi_max_avg_pool(x, rois, dims, cig, pooled, group,
                                       scale)
    else:
        size = (pooled, int(rng.integers(1, 5)))
        rois.requires_grad_(True)

        def call():
            return roi_warp(x, rois, size, scale, quantize)
    valid = scale_is_valid(scale, dtype) and rois_are_valid(rows, dtype,
                                                            batch)
    if not valid:
        try:
            call()
        except ValueError as err:
            assert str(err).startswith(op + ':'), err
            return 'error'
        raise AssertionError(f'no error for scale {scale!r}, rois {rows}')
    out = call()
    grad_out = torch.from_numpy(rng.standard_normal(out.shape)).to(dtype)
    grads = torch.autograd.grad(out, [x, rois] if rois.requires_grad else
                                [x], grad_out)
    for t in (out, ) + tuple(grads):
        assert torch.isfinite(t).all(), t
    if op == 'ps_roi_pool':
        want, want_grad = ref_ps_roi_pool(x.detach(), rois, dims * cig,
                                          pooled, group, scale, grad_out)
    elif op == 'ps_roi_max_avg_pool':
        want, want_grad = ref_ps_roi_max_avg_pool(x.detach(), rois, dims,
                                                  cig, pooled, group, scale,
                                                  grad_out)
    else:
        want, want_grad = ref_roi_warp(x.detach(), rois.detach(), size,
                                       scale, quantize, grad_out)
    tol = 1e-5 if dtype == torch.float32 else 1e-10
    np.testing.assert_allclose(out.detach().double().numpy(), want,
                               rtol=tol, atol=tol)
    np.testing.assert_allclose(grads[0].double().numpy(), want_grad,
                               rtol=tol, atol=tol)
    return 'value'


def main(op, dtype_name, seed, num_cases):
    dtype = getattr(torch, dtype_name)
    rng = np.random.default_rng(seed)
    for i in range(num_cases):
        print(f'case {i}', flush=True)
        kind = run_case(op, dtype, rng)
        print(f'ok {i} {kind}', flush=True)


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
