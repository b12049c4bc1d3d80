# Copyright (c) OpenMMLab. All rights reserved.
"""Seeded fuzz of every op, forward and backward, on degenerate, huge, NaN
and inf boxes and scales (fuzz_ops_child.py has the cases and the numpy
reference). Each op and dtype runs in a child process that announces every
case before running it, so a crash fails the test naming the case, instead
of killing the run; each child is bounded in time."""
import os.path as osp
import subprocess
import sys

import pytest

from mnc_mm.ops import ext_available

pytestmark = pytest.mark.skipif(
    not ext_available(), reason='mnc_mm._ext is not built')

CHILD = osp.join(osp.dirname(osp.abspath(__file__)), 'fuzz_ops_child.py')
NUM_CASES = 150
SEED = 2026


@pytest.mark.parametrize('dtype', ['float32', 'float64'])
@pytest.mark.parametrize('op',
                         ['ps_roi_pool', 'ps_roi_max_avg_pool', 'roi_warp'])
def test_fuzz(op, dtype):
    proc = subprocess.run(
        [sys.executable, CHILD, op, dtype, str(SEED), str(NUM_CASES)],
        capture_output=True, text=True, timeout=600)
    lines = proc.stdout.splitlines()
    started = [line for line in lines if line.startswith('case ')]
    done = [line.split() for line in lines if line.startswith('ok ')]
    assert proc.returncode == 0, (
        f'{op} {dtype}: child exited with {proc.returncode} (negative: '
        f'killed by that signal) in {started[-1] if started else "setup"} '
        f'(seed {SEED})\n{proc.stderr[-3000:]}')
    kinds = [kind for _, _, kind in done]
    assert len(kinds) == NUM_CASES
    # Both outcomes are exercised: clear errors and reference-equal values.
    assert kinds.count('error') > 10 and kinds.count('value') > 10, kinds
