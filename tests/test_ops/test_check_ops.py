# Copyright (c) OpenMMLab. All rights reserved.
"""tools/analysis_tools/check_ops.py: the CPU mode runs every check and
passes; the CUDA mode says why it cannot run where there is no CUDA."""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

from mnc_mm.ops import ext_available

pytestmark = pytest.mark.skipif(
    not ext_available(), reason='mnc_mm._ext is not built')

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(REPO, 'tools', 'analysis_tools', 'check_ops.py')


def run_tool(*args):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep +
               os.environ.get('PYTHONPATH', ''))
    return subprocess.run([sys.executable, TOOL, *args], capture_output=True,
                          text=True, timeout=600, env=env, cwd=REPO)


def test_cpu_mode_passes():
    proc = run_tool('--device', 'cpu', '--cases', '2', '--bench-op',
                    'ps_roi_max_avg_pool', '--bench-repeat', '1')
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    for check in ('parity', 'gradcheck', 'determinism', 'benchmark'):
        assert any(line.startswith(f'{check}: ok') for line in lines), (
            proc.stdout)
    assert '| ps_roi_max_avg_pool |' in proc.stdout
    assert lines[-1] == 'VERDICT: PASS on cpu'


@pytest.mark.skipif(torch.cuda.is_available(), reason='CUDA is available')
def test_cuda_mode_without_cuda_says_so():
    proc = run_tool('--device', 'cuda')
    assert proc.returncode == 2
    assert 'cannot check --device cuda: no CUDA device' in proc.stdout
    assert proc.stdout.strip().endswith('VERDICT: NOT RUN')
