# Copyright (c) OpenMMLab. All rights reserved.
"""Benchmark the compiled PSRoIPool against a vectorised PyTorch peer.

FCIS sizes (fcis_spec.md §3.4): R = 300 RoIs, 7 * 7 * 2 * 81 input channels,
P = 21, k = 7, a 38 x 63 feature map at scale 1/16. The peer implements the
same formulas with a float64 summed-area table (the exact fast idea of
fcis_spec.md §1.5 item 4) and index tensors; its backward is autograd's.
Prints a markdown table of median times and ratios from one run::

    PYTHONPATH=. python tools/analysis_tools/benchmark_ps_roi_pool.py
"""
import argparse
import functools
import statistics
import time
from typing import Callable, Dict, List

import torch
from torch import Tensor

from mnc_mm.ops import ps_roi_pool

NUM_ROIS, NUM_CLASSES, POOLED, GROUP = 300, 81, 21, 7
HEIGHT, WIDTH, SCALE = 38, 63, 1 / 16


def reference_ps_roi_pool(input: Tensor, rois: Tensor, output_dim: int,
                          pooled_size: int, group_size: int,
                          spatial_scale: float) -> Tensor:
    """Vectorised PyTorch PSRoIPool: (N, D*k*k, H, W), (R, 5) -> (R, D, P, P).

    Bin sums come from a float64 summed-area table, four lookups per bin.
    Bin limits use unfused float math (the compiled op fuses them like the
    official nvcc build; the two differ only within an ulp of an integer).
    """
    num, channels, height, width = input.shape
    dtype = input.dtype
    # C round (halves away from zero), +1 on the end, >= 0.1 cell.
    rounded = rois[:, 1:].abs().add(0.5).floor().copysign(rois[:, 1:])
    start = rounded[:, :2] * spatial_scale
    end = (rounded[:, 2:] + 1) * spatial_scale
    bin_size = (end - start).clamp(min=0.1) / pooled_size
    p = torch.arange(pooled_size + 1, device=input.device, dtype=dtype)
    # limits[r, axis, p] for axis 0 = x (columns), 1 = y (rows)
    limits = p.view(1, 1, -1) * bin_size.unsqueeze(2) + start.unsqueeze(2)
    size = limits.new_tensor([width, height]).view(1, 2, 1)
    lo = torch.minimum(limits[..., :-1].floor().clamp(min=0), size).long()
    hi = torch.minimum(limits[..., 1:].ceil().clamp(min=0), size).long()
    ws, hs = lo[:, 0], lo[:, 1]  # (R, P)
    we, he = hi[:, 0], hi[:, 1]

    table = input.double().cumsum(2).cumsum(3)
    table = torch.nn.functional.pad(table, (1, 0, 1, 0)).flatten()
    arange = functools.partial(torch.arange, device=input.device)
    g = torch.clamp(arange(pooled_size) * group_size // pooled_size,
                    max=group_size - 1)
    chan = ((arange(output_dim).view(-1, 1, 1) * group_size +
             g.view(1, -1, 1)) * group_size + g.view(1, 1, -1))
    plane = (rois[:, 0].long().view(-1, 1, 1, 1) * channels +
             chan.unsqueeze(0)) * ((height + 1) * (width + 1))

    def corner(h: Tensor, w: Tensor) -> Tensor:
        offset = h.unsqueeze(2) * (width + 1) + w.unsqueeze(1)  # (R, P, P)
        return table.take(plane + offset.unsqueeze(1))

    sums = (corner(he, we) - corner(hs, we) - corner(he, ws) +
            corner(hs, ws))
    area = ((he - hs).unsqueeze(2) * (we - ws).unsqueeze(1)).unsqueeze(1)
    out = torch.where(area > 0, sums / area.clamp(min=1), sums.new_zeros(()))
    return out.to(dtype)


def _median_ms(fn: Callable[[], None], repeats: int, device: str) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        if device == 'cuda':
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device == 'cuda':
            torch.cuda.synchronize()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def make_inputs(device: str):
    """FCIS-sized input (1, 7938, 38, 63) and 300 RoIs in a 600 x 1000
    image, float32."""
    gen = torch.Generator().manual_seed(0)
    output_dim = 2 * NUM_CLASSES
    x = torch.randn(1, output_dim * GROUP * GROUP, HEIGHT, WIDTH,
                    generator=gen)
    img_h, img_w = HEIGHT / SCALE, WIDTH / SCALE
    xy = torch.rand(NUM_ROIS, 2, generator=gen) * torch.tensor([img_w, img_h])
    wh = torch.rand(NUM_ROIS, 2, generator=gen) * torch.tensor(
        [img_w, img_h]) / 2 + 8
    rois = torch.cat([torch.zeros(NUM_ROIS, 1), xy, xy + wh], dim=1)
    return x.to(device), rois.to(device), output_dim


def run_ps_roi_pool_benchmark(repeats: int = 5,
                              device: str = 'cpu') -> List[Dict]:
    """Median forward and forward+backward times of ours and the peer.

    Returns one row per pass: op, pass, device, ours_ms, reference_ms,
    speedup (reference / ours) and max_abs_diff of the forward outputs.
    """
    x, rois, output_dim = make_inputs(device)
    args = (output_dim, POOLED, GROUP, SCALE)
    impls = {'ours': ps_roi_pool, 'reference': reference_ps_roi_pool}
    max_diff = (ps_roi_pool(x, rois, *args) -
                reference_ps_roi_pool(x, rois, *args)).abs().max().item()
    rows = []
    for name in ('forward', 'forward+backward'):
        times = {}
        for impl_name, impl in impls.items():
            if name == 'forward':

                def fn(impl=impl):
                    with torch.no_grad():
                        impl(x, rois, *args)
            else:
                x_grad = x.detach().requires_grad_(True)

                def fn(impl=impl, x_grad=x_grad):
                    impl(x_grad, rois, *args).sum().backward()
                    x_grad.grad = None

            times[impl_name] = _median_ms(fn, repeats, device)
        rows.append(
            dict(
                op='ps_roi_pool',
                pass_=name,
                device=device,
                ours_ms=times['ours'],
                reference_ms=times['reference'],
                speedup=times['reference'] / times['ours'],
                max_abs_diff=max_diff))
    return rows


def format_rows(rows: List[Dict]) -> str:
    """Markdown table of benchmark rows."""
    lines = [
        '| op | pass | device | ours (ms) | reference (ms) | speedup | '
        'max abs diff |', '|---|---|---|---:|---:|---:|---:|'
    ]
    for r in rows:
        lines.append(f"| {r['op']} | {r['pass_']} | {r['device']} | "
                     f"{r['ours_ms']:.1f} | {r['reference_ms']:.1f} | "
                     f"{r['speedup']:.1f}x | {r['max_abs_diff']:.2e} |")
    return '\n'.join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument(
        '--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    args = parser.parse_args()
    print(f'torch {torch.__version__}, {torch.get_num_threads()} threads')
    print(format_rows(run_ps_roi_pool_benchmark(args.repeats, args.device)))


if __name__ == '__main__':
    main()
