# Copyright (c) OpenMMLab. All rights reserved.
"""Time the compiled ops of mnc_mm against their closest mmcv peers.

Each op section is a function registered with ``@register_op(name)`` that
returns table rows; a new op only adds one such function. Example::

    python tools/analysis_tools/benchmark_ops.py --op roi_warp
    python tools/analysis_tools/benchmark_ops.py --op all --device cuda

Times are medians in milliseconds; ratios (ours / peer) come from the same
run, so compare them rather than absolute times across machines.
"""
import argparse
import statistics
import time
from typing import Callable, Dict, List, Optional, Tuple

import torch

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
