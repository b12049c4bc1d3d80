# Copyright (c) OpenMMLab. All rights reserved.
"""Inputs at the edges of the float range: each case runs in a child
process, so a crash (a kernel reading out of bounds) fails the test instead
of killing the run."""
import subprocess
import sys
import textwrap

import pytest

from mnc_mm.ops import ext_available

pytestmark = pytest.mark.skipif(
    not ext_available(), reason='mnc_mm._ext is not built')


def run_child(code: str, timeout: float = 120) -> str:
    """Run ``code`` in a fresh interpreter; return its stdout. Fails the
    test with the signal or exit status and stderr if the child dies."""
    proc = subprocess.run([sys.executable, '-c', textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, (
        f'child exited with {proc.returncode} (negative: killed by that '
        f'signal)\nstderr:\n{proc.stderr[-4000:]}')
    return proc.stdout


@pytest.mark.parametrize('dtype', ['float32', 'float64'])
def test_overflowing_box_is_empty_not_a_crash(dtype):
    """A finite box whose scaled extent overflows (bin size inf, lower limit
    NaN = 0 * inf) once segfaulted both PS ops; every such bin is now
    empty: output 0, no gradient."""
    big = '3e38' if dtype == 'float32' else '1e308'
    out = run_child(f'''
        import torch
        from mnc_mm.ops import ps_roi_max_avg_pool, ps_roi_pool
        x = torch.randn(1, 8, 4, 4, dtype=torch.{dtype}, requires_grad=True)
        rois = torch.tensor([[0., -{big}, 0., {big}, 3.],
                             [0., 0., -{big}, 3., {big}]],
                            dtype=torch.{dtype})
        for pooled in (1, 2, 3):
            out = ps_roi_pool(x[:, :2], rois, 2, pooled, 1, 1.0)
            out.sum().backward()
            assert out.abs().max() == 0, out
            pooled_avg = ps_roi_max_avg_pool(x, rois, 4, 2, pooled, 1, 1.0)
            pooled_avg.sum().backward()
            assert pooled_avg.abs().max() == 0, pooled_avg
        assert x.grad.abs().max() == 0, x.grad
        print('ok')
        ''')
    assert out.strip() == 'ok'


@pytest.mark.parametrize('scale', [1e39, 1e-46])
def test_spatial_scale_checked_in_float32(scale):
    """1e39 and 1e-46 are fine doubles but inf and 0 in float32, the dtype
    the kernels compute a float32 op in: refused by every op, in C++."""
    import torch

    from mnc_mm.ops import ps_roi_max_avg_pool, ps_roi_pool, roi_warp
    x = torch.randn(1, 4, 5, 5)
    rois = torch.tensor([[0., 1., 1., 3., 3.]])
    calls = {
        'ps_roi_pool': lambda: ps_roi_pool(x, rois, 1, 2, 2, scale),
        'ps_roi_max_avg_pool':
        lambda: ps_roi_max_avg_pool(x, rois, 2, 2, 2, 1, scale),
        'roi_warp': lambda: roi_warp(x, rois, 2, scale),
    }
    for op, call in calls.items():
        with pytest.raises(ValueError,
                           match=f'^{op}: spatial_scale must be positive and '
                           'finite in float32'):
            call()
    # In float64 the same scale is representable and accepted.
    assert roi_warp(x.double(), rois.double(), 2, scale).shape == (1, 4, 2, 2)


def test_roi_warp_output_size_bound():
    import torch

    from mnc_mm.ops import roi_warp
    x, rois = torch.randn(1, 1, 4, 4), torch.tensor([[0., 0., 0., 3., 3.]])
    with pytest.raises(ValueError,
                       match=r'^roi_warp: output_size must be at most '
                       r'2147483647 per side, got \(2147483648, 1\)'):
        roi_warp(x, rois, (2**31, 1), 1.0)
    with pytest.raises(TypeError, match='^roi_warp: output_size'):
        roi_warp(x, rois, 2.5, 1.0)


def test_kernels_check_roi_values():
    """Calling mnc_mm._ext directly (no Python checks): a batch index out of
    range or a non-finite RoI is a ValueError from the kernel's own check
    (RoIWarp used to read out of bounds)."""
    out = run_child('''
        import torch
        from mnc_mm.ops import load_ext
        ext = load_ext()
        x = torch.randn(2, 4, 6, 7)
        maps = x.view(2, 1, 2, 2, 6, 7)
        none = torch.empty(0, dtype=torch.int64)
        calls = {
            'roi_warp': lambda r: ext.roi_warp_forward(
                x, r, x.new_empty(1, 4, 2, 2), 2, 2, 1.0, False),
            'roi_warp backward': lambda r: ext.roi_warp_backward(
                x.new_ones(1, 4, 2, 2), x, r, torch.empty_like(x),
                torch.empty_like(r), 2, 2, 1.0, False),
            'ps_roi_pool': lambda r: ext.ps_roi_pool_forward(
                maps, r, none, x.new_empty(1, 1, 2, 2), 1, 2, 1.0),
            'ps_roi_max_avg_pool': lambda r: ext.ps_roi_max_avg_pool_forward(
                maps, r, x.new_empty(1, 1), 1, 2, 1.0),
        }
        for name, call in calls.items():
            for row in ([2., 0, 0, 3, 3], [-1., 0, 0, 3, 3],
                        [0.5, 0, 0, 3, 3], [0., float('nan'), 0, 3, 3],
                        [0., 0, float('inf'), 3, 3]):
                try:
                    call(torch.tensor([row]))
                except ValueError as err:
                    print(name, '|', err)
                else:
                    print(name, '| no error for', row)
        ''')
    lines = out.strip().splitlines()
    assert len(lines) == 4 * 5, out
    for line in lines:
        op, message = line.split(' | ')
        prefix = op.split()[0]
        assert message.startswith(prefix + ': rois'), line
        assert ('(batch index) must be an integer in [0, 2)' in message
                or 'rois must be finite' in message), line
