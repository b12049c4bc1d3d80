# Copyright (c) OpenMMLab. All rights reserved.
"""Time the compiled ops of mnc_mm against their closest peers.

- ``roi_warp`` (MNC): R=300, C=512, 28x28 from a 38x63 map vs mmcv's
  ``roi_align`` with ``sampling_ratio=1`` (same number of bilinear samples).
  Target: forward+backward ratio <= 1.5 (ours also computes box gradients).
- ``ps_roi_pool`` (FCIS, msracver/FCIS fcis/symbols/resnet_v1_101_fcis.py):
  R=300, 7*7*2*81 channels, P=21, k=7 on a 38x63 map vs a vectorised PyTorch
  implementation of the same formulas (a float64 summed-area table, autograd
  backward). Target: forward+backward ratio <= 0.2 (ours >= 5x faster).
- ``ps_roi_max_avg_pool`` (the FCIS class score): the same sizes, fused on
  the head's channels-last maps vs the official chain of our own ops
  (``ps_roi_pool`` of all 2C maps, ``group_max``, mean over the bins), i.e.
  FCISRoIHead's per-RoI class scoring after and before the fusion.

Each op section is a function registered with ``@register_op(name)`` that
returns table rows; a new op only adds one such function. Example::

    python tools/analysis_tools/benchmark_ops.py --op roi_warp
    python tools/analysis_tools/benchmark_ops.py --op all --device cuda

Times are medians in milliseconds; ratios (ours / peer) come from the same
run, so compare them rather than absolute times across machines.
"""
import argparse
import functools
import importlib
import os.path as osp
import statistics
import sys
import time
from typing import Callable, Dict, List, Optional, Tuple

import torch
from torch import Tensor

OPS: Dict[str, Callable] = {}


def register_op(name: str) -> Callable:
    """Register a benchmark section ``fn(args) -> list of rows``."""

    def wrap(fn: Callable) -> Callable:
        OPS[name] = fn
        return fn

    return wrap


def median_ms(fns: List[Callable], args: argparse.Namespace) -> List[float]:
    """Median wall times (ms) of each ``fn()``, timed in alternation so a
    change of machine load hits all of them alike."""
    sync = torch.cuda.synchronize if args.device == 'cuda' else (lambda: None)
    for _ in range(args.warmup):
        for fn in fns:
            fn()
    sync()
    times = [[] for _ in fns]
    for _ in range(args.repeat):
        for fn, ts in zip(fns, times):
            start = time.perf_counter()
            fn()
            sync()
            ts.append((time.perf_counter() - start) * 1e3)
    return [statistics.median(ts) for ts in times]


def compare(ours: Callable, peer: Optional[Callable],
            args: argparse.Namespace) -> Tuple[float, Optional[float]]:
    """(ours ms, peer ms or None if there is no peer)."""
    if peer is None:
        return median_ms([ours], args)[0], None
    ours_ms, peer_ms = median_ms([ours, peer], args)
    return ours_ms, peer_ms


def row(op: str, case: str, ours: float, peer: Optional[float],
        peer_name: str) -> dict:
    return dict(op=op, case=case, ours=ours, peer_name=peer_name, peer=peer)


def print_table(rows: List[dict]) -> None:
    print('| op | case | ours (ms) | peer | peer (ms) | ours / peer |')
    print('|---|---|---:|---|---:|---:|')
    for r in rows:
        peer = 'n/a' if r['peer'] is None else f"{r['peer']:.2f}"
        ratio = 'n/a' if r['peer'] is None else f"{r['ours'] / r['peer']:.2f}"
        print(f"| {r['op']} | {r['case']} | {r['ours']:.2f} | "
              f"{r['peer_name']} | {peer} | {ratio} |")


def _random_rois(num: int, img_h: float, img_w: float,
                 device: str) -> torch.Tensor:
    """(num, 5) boxes inside an img_h x img_w image, batch index 0."""
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(num, 2, generator=g) * torch.tensor([img_w, img_h]) * 0.8
    wh = torch.rand(num, 2, generator=g) * torch.tensor([img_w, img_h]) * 0.5
    x2y2 = torch.minimum(xy + wh + 16, torch.tensor([img_w - 1, img_h - 1]))
    return torch.cat([torch.zeros(num, 1), xy, x2y2], 1).to(device)


@register_op('roi_warp')
def bench_roi_warp(args: argparse.Namespace) -> List[dict]:
    """RoI warp 28x28 (MNC stage 2) vs mmcv roi_align, sampling_ratio=1."""
    from mnc_mm.ops import roi_warp
    try:
        from mmcv.ops import roi_align
    except ImportError as err:
        print(f'peer mmcv.ops.roi_align is unavailable ({err})')
        roi_align = None
    num_rois, channels, feat_h, feat_w, size, scale = 300, 512, 38, 63, 28, \
        1 / 16
    feat = torch.randn(1, channels, feat_h, feat_w, device=args.device)
    rois = _random_rois(num_rois, feat_h / scale, feat_w / scale, args.device)
    grad = torch.randn(num_rois, channels, size, size, device=args.device)
    feat_g = feat.clone().requires_grad_()
    rois_g = rois.clone().requires_grad_()

    def ours_fwd():
        with torch.no_grad():
            roi_warp(feat, rois, size, scale)

    def ours_fb():
        roi_warp(feat_g, rois, size, scale).backward(grad)

    def ours_fb_box():
        roi_warp(feat_g, rois_g, size, scale).backward(grad)

    def peer_fwd():
        with torch.no_grad():
            roi_align(feat, rois, size, scale, 1)

    def peer_fb():
        roi_align(feat_g, rois, size, scale, 1).backward(grad)

    name = 'mmcv roi_align (sampling_ratio=1)'
    case = f'R={num_rois} C={channels} {size}x{size} on {feat_h}x{feat_w}'
    runs = [('forward', ours_fwd, peer_fwd),
            ('forward+backward (feature grad)', ours_fb, peer_fb),
            ('forward+backward (feature + box grad)', ours_fb_box, peer_fb)]
    return [
        row('roi_warp', f'{case}, {what}',
            *compare(ours, peer if roi_align else None, args), name)
        for what, ours, peer in runs
    ]


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


# FCIS at COCO size: 81 classes with (outside, inside) maps, k = 7, P = 21,
# 300 RoIs on the stride-16 map of a 600 x 1000 image.
FCIS_NUM_CLASSES, FCIS_POOLED, FCIS_GROUP, FCIS_SCALE = 81, 21, 7, 1 / 16


def _fcis_score_maps(device: str) -> Tuple[Tensor, Tensor, str]:
    """(1, 2 * 81 * 7 * 7, 38, 63) random maps in the official channel
    order, 300 RoIs and the case label of the two PS benchmarks."""
    feat_h, feat_w, num_rois = 38, 63, 300
    dims = 2 * FCIS_NUM_CLASSES
    gen = torch.Generator().manual_seed(0)
    feat = torch.randn(1, dims * FCIS_GROUP * FCIS_GROUP, feat_h, feat_w,
                       generator=gen).to(device)
    rois = _random_rois(num_rois, feat_h / FCIS_SCALE, feat_w / FCIS_SCALE,
                        device)
    case = (f'R={num_rois} C={feat.shape[1]} P={FCIS_POOLED} k={FCIS_GROUP} '
            f'on {feat_h}x{feat_w}')
    return feat, rois, case


@register_op('ps_roi_pool')
def bench_ps_roi_pool(args: argparse.Namespace) -> List[dict]:
    """PS RoI pool at FCIS sizes vs the vectorised PyTorch reference."""
    from mnc_mm.ops import ps_roi_pool
    feat, rois, case = _fcis_score_maps(args.device)
    op_args = (2 * FCIS_NUM_CLASSES, FCIS_POOLED, FCIS_GROUP, FCIS_SCALE)
    diff = (ps_roi_pool(feat, rois, *op_args) -
            reference_ps_roi_pool(feat, rois, *op_args)).abs().max().item()
    print(f'ps_roi_pool: max |ours - reference| = {diff:.2e}')
    feat_g = feat.clone().requires_grad_()

    def forward(impl):
        with torch.no_grad():
            impl(feat, rois, *op_args)

    def forward_backward(impl):
        impl(feat_g, rois, *op_args).sum().backward()
        feat_g.grad = None

    name = 'PyTorch summed-area table'
    return [
        row('ps_roi_pool', f'{case}, {what}',
            *compare(functools.partial(run, ps_roi_pool),
                     functools.partial(run, reference_ps_roi_pool), args),
            name)
        for what, run in (('forward', forward),
                          ('forward+backward', forward_backward))
    ]


def _test_reference(name: str):
    """A pure-torch reference module of ``tests/test_ops`` (the official
    chains the fused ops replace are test references, not library code)."""
    tests = osp.join(osp.dirname(osp.dirname(osp.dirname(
        osp.abspath(__file__)))), 'tests')
    if tests not in sys.path:
        sys.path.insert(0, tests)
    return importlib.import_module(f'test_ops.{name}')


@register_op('ps_roi_max_avg_pool')
def bench_ps_roi_max_avg_pool(args: argparse.Namespace) -> List[dict]:
    """Fused FCIS class score vs PSRoIPool + Group_Max + mean."""
    from mnc_mm.ops import ps_roi_max_avg_pool, ps_roi_pool
    group_max = _test_reference('fcis_channel_ops').group_max
    feat, rois, case = _fcis_score_maps(args.device)
    classes, group = FCIS_NUM_CLASSES, FCIS_GROUP
    # the layout FCISRoIHead.score_maps makes: D values of a cell contiguous
    maps = feat.view(1, 2 * classes, group, group, *feat.shape[2:]).permute(
        0, 4, 5, 2, 3, 1).contiguous().permute(0, 5, 3, 4, 1, 2)

    def chain(x):
        return group_max(
            ps_roi_pool(x, rois, 2 * classes, FCIS_POOLED, group, FCIS_SCALE),
            classes).mean(dim=(2, 3))

    def fused(x):
        return ps_roi_max_avg_pool(x, rois, classes, 2, FCIS_POOLED, group,
                                   FCIS_SCALE)

    diff = (fused(maps) - chain(feat)).abs().max().item()
    print(f'ps_roi_max_avg_pool: max |fused - chain| = {diff:.2e}')
    maps_g = maps.clone().requires_grad_()
    feat_g = feat.clone().requires_grad_()

    def forward(impl, x):
        with torch.no_grad():
            impl(x)

    def forward_backward(impl, x):
        impl(x).sum().backward()
        x.grad = None

    return [
        row('ps_roi_max_avg_pool', f'{case}, {what}',
            *compare(functools.partial(run, fused, x_fused),
                     functools.partial(run, chain, x_chain), args),
            'ps_roi_pool + group_max + mean')
        for what, run, x_fused, x_chain in (
            ('forward', forward, maps, feat),
            ('forward+backward', forward_backward, maps_g, feat_g))
    ]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--op',
        default='all',
        choices=sorted(OPS) + ['all'],
        help='op section to run')
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    parser.add_argument('--repeat', type=int, default=20)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument(
        '--threads',
        type=int,
        default=None,
        help='torch CPU threads (default: torch default); mmcv CPU ops are '
        'single-threaded, so --threads 1 compares the kernels alone')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f'device={args.device} threads={torch.get_num_threads()} '
          f'torch={torch.__version__}')
    rows = []
    for name in sorted(OPS) if args.op == 'all' else [args.op]:
        rows += OPS[name](args)
    print_table(rows)


if __name__ == '__main__':
    main()
