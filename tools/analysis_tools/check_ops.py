# Copyright (c) OpenMMLab. All rights reserved.
"""Check the installed compiled ops of mnc_mm on one device; builds nothing.

Runs, for ``ps_roi_pool``, ``ps_roi_max_avg_pool`` and ``roi_warp``:

- parity: ``--device cuda``: every op and gradient on CUDA against the CPU
  kernels, in float64, float32, float16 and bfloat16; ``--device cpu``:
  float16 and bfloat16 against float32 on the CPU;
- gradcheck in float64 on the device;
- determinism: the CPU backward must repeat bit for bit; the CUDA backward
  (atomics) must raise under ``torch.use_deterministic_algorithms(True)``
  and repeat within rounding otherwise;
- the op benchmark (``benchmark_ops.py``) on the device;

then prints one line per check and a verdict. Exit status 0 if every check
passed, 1 if one failed, 2 if the device is not available (e.g.
``--device cuda`` on a machine without CUDA or a CPU-only build)::

    python tools/analysis_tools/check_ops.py --device cuda
"""
import argparse
import os.path as osp
import sys
import traceback
from typing import Callable, Dict, List, Tuple

import torch
from torch import Tensor

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

# Relative tolerance of each dtype against the reference (float64 of the
# other device, or float32 for the low-precision CPU parity).
TOLS = {
    torch.float64: 1e-10,
    torch.float32: 1e-4,
    torch.float16: 1e-2,
    torch.bfloat16: 5e-2,
}


def problem(seed: int, dtype: torch.dtype) -> Tuple[Tensor, Tensor, dict]:
    """Random maps (N, 2 * 2 * k * k, H, W) and RoIs whose values are exact
    in ``dtype`` (integer corners below 256), and the op sizes."""
    gen = torch.Generator().manual_seed(seed)
    k, pooled = 1 + seed % 3, 2 + seed % 4
    maps = torch.randn(2, 4 * k * k, 9 + seed % 5, 11, generator=gen)
    # [[x1, y1], [x2, y2]] sorted per coordinate: x1 <= x2, y1 <= y2
    corners = torch.randint(-16, 200, (5, 2, 2), generator=gen).sort(1)[0]
    rois = torch.cat([
        torch.randint(0, 2, (5, 1), generator=gen),
        corners.reshape(5, 4)
    ], 1).double()
    sizes = dict(
        group=k, pooled=pooled, scale=[1.0, 0.5, 0.25, 1 / 16][seed % 4])
    return maps.to(dtype), rois.to(dtype), sizes


def op_calls() -> Dict[str, Callable]:
    """op name -> fn(maps, rois, sizes) returning the op output."""
    from mnc_mm.ops import ps_roi_max_avg_pool, ps_roi_pool, roi_warp
    return {
        'ps_roi_pool':
        lambda x, r, s: ps_roi_pool(x, r, 4, s['pooled'], s['group'],
                                    s['scale']),
        'ps_roi_max_avg_pool':
        lambda x, r, s: ps_roi_max_avg_pool(x, r, 2, 2, s['pooled'],
                                            s['group'], s['scale']),
        'roi_warp':
        lambda x, r, s: roi_warp(x, r, (s['pooled'], s['pooled'] + 1),
                                 s['scale']),
    }


def run(name: str, call: Callable, maps: Tensor, rois: Tensor, sizes: dict,
        device: str, dtype: torch.dtype, seed: int) -> List[Tensor]:
    """Output and gradients (maps, and the boxes for roi_warp) as float64
    CPU tensors; the output gradient is random and exact in ``dtype``."""
    x = maps.to(device, dtype).requires_grad_(True)
    r = rois.to(device, dtype).requires_grad_(True)
    out = call(x, r, sizes)
    gen = torch.Generator().manual_seed(seed)
    grad = torch.randn(out.shape, generator=gen).to(dtype).to(device)
    inputs = [x, r] if name == 'roi_warp' else [x]  # only it has box grads
    grads = torch.autograd.grad(out, inputs, grad)
    return [t.detach().double().cpu() for t in [out, *grads]]


def assert_close(got: List[Tensor], want: List[Tensor], tol: float,
                 what: str) -> None:
    for g, w in zip(got, want):
        scale = max(w.abs().max().item(), 1.) if w.numel() else 1.
        torch.testing.assert_close(
            g, w, rtol=tol, atol=tol * scale, msg=lambda m: f'{what}: {m}')


def check_parity(device: str, cases: int) -> str:
    calls = op_calls()
    dtypes = list(TOLS) if device == 'cuda' else [torch.float16,
                                                  torch.bfloat16]
    count = 0
    for name, call in calls.items():
        for dtype in dtypes:
            for seed in range(cases):
                maps, rois, sizes = problem(seed, dtype)
                if device == 'cuda':  # CUDA vs the CPU kernels, same dtype
                    got = run(name, call, maps, rois, sizes, 'cuda', dtype,
                              seed)
                    want = run(name, call, maps, rois, sizes, 'cpu', dtype,
                               seed)
                else:  # low precision vs float32 on the CPU
                    got = run(name, call, maps, rois, sizes, 'cpu', dtype,
                              seed)
                    want = run(name, call, maps, rois, sizes, 'cpu',
                               torch.float32, seed)
                assert_close(got, want, TOLS[dtype],
                             f'{name} {dtype} seed {seed}')
                count += 1
    return f'{count} problems agree'


def check_gradcheck(device: str) -> str:
    from mnc_mm.ops import ps_roi_max_avg_pool, ps_roi_pool, roi_warp
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, 8, 6, 7, generator=gen, dtype=torch.float64)
    x = x.to(device).requires_grad_(True)
    rois = torch.tensor([[0., 1.3, 0.6, 9.2, 8.7], [0., 4.1, 2.2, 6.9, 11.4]],
                        dtype=torch.float64, device=device)
    # The box columns only: the batch index must stay an integer.
    boxes = rois[:, 1:].clone().requires_grad_(True)
    checks = {
        'ps_roi_pool': (lambda t: ps_roi_pool(t, rois, 2, 3, 2, 0.5), (x, )),
        'ps_roi_max_avg_pool':
        (lambda t: ps_roi_max_avg_pool(t, rois, 2, 1, 3, 2, 0.5), (x, )),
        'roi_warp': (lambda t, b: roi_warp(
            t, torch.cat([rois[:, :1], b], 1), (4, 3), 0.5), (x, boxes)),
    }
    for name, (fn, inputs) in checks.items():
        if not torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-6):
            raise AssertionError(f'{name}: gradcheck failed')
    return f'{len(checks)} ops pass'


def check_determinism(device: str) -> str:
    calls = op_calls()
    maps, rois, sizes = problem(3, torch.float32)
    for name, call in calls.items():
        first = run(name, call, maps, rois, sizes, device, torch.float32, 0)
        second = run(name, call, maps, rois, sizes, device, torch.float32, 0)
        if device == 'cpu':
            if not all(torch.equal(a, b) for a, b in zip(first, second)):
                raise AssertionError(f'{name}: CPU backward not repeatable')
            continue
        assert_close(second, first, TOLS[torch.float32], name)
        torch.use_deterministic_algorithms(True)
        try:
            run(name, call, maps, rois, sizes, device, torch.float32, 0)
        except RuntimeError as err:
            if 'deterministic' not in str(err):
                raise
        else:
            raise AssertionError(f'{name}: the CUDA backward did not alert '
                                 f'under use_deterministic_algorithms')
        finally:
            torch.use_deterministic_algorithms(False)
    if device == 'cpu':
        return 'CPU backward repeats bit for bit'
    return ('CUDA backward repeats within rounding and alerts in '
            'deterministic mode')


def check_benchmark(device: str, op: str, repeat: int) -> str:
    import benchmark_ops
    args = argparse.Namespace(device=device, repeat=repeat, warmup=1,
                              op=op, threads=None)
    rows = []
    for name in sorted(benchmark_ops.OPS) if op == 'all' else [op]:
        rows += benchmark_ops.OPS[name](args)
    benchmark_ops.print_table(rows)
    return f'{len(rows)} timings (table above)'


def device_problem(device: str) -> str:
    """Why ``device`` cannot be checked here, or '' if it can."""
    from mnc_mm.ops import ext_available, load_ext
    if not ext_available():
        return 'mnc_mm._ext is not built (make install)'
    if device == 'cuda':
        if not torch.cuda.is_available():
            return 'no CUDA device is visible to torch on this machine'
        if load_ext().get_compiling_cuda_version() == 'not available':
            return ('mnc_mm._ext was built without CUDA; rebuild it with '
                    'FORCE_CUDA=1')
    return ''


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', required=True, choices=['cpu', 'cuda'])
    parser.add_argument('--cases', type=int, default=20,
                        help='random problems per op and dtype for parity')
    parser.add_argument('--bench-op', default='all',
                        help='benchmark_ops.py section, or "all"')
    parser.add_argument('--bench-repeat', type=int, default=10)
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    problem_text = device_problem(args.device)
    if problem_text:
        print(f'check_ops: cannot check --device {args.device}: '
              f'{problem_text}')
        print('VERDICT: NOT RUN')
        return 2
    checks = [
        ('parity', lambda: check_parity(args.device, args.cases)),
        ('gradcheck', lambda: check_gradcheck(args.device)),
        ('determinism', lambda: check_determinism(args.device)),
        ('benchmark',
         lambda: check_benchmark(args.device, args.bench_op,
                                 args.bench_repeat)),
    ]
    failed = []
    for name, check in checks:
        try:
            print(f'{name}: ok, {check()}', flush=True)
        except Exception as err:  # report every check, then the verdict
            traceback.print_exc()
            print(f'{name}: FAILED, {type(err).__name__}: {err}', flush=True)
            failed.append(name)
    verdict = f'FAIL ({", ".join(failed)})' if failed else 'PASS'
    print(f'VERDICT: {verdict} on {args.device}')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
