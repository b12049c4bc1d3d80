# Copyright (c) OpenMMLab. All rights reserved.
"""The layout of mnc_mm/ops/csrc: the CPU sources use only the torch-free
helpers under common/ (never a CUDA header), and those helpers build with a
plain C++ compiler, without torch or CUDA."""
import re
import shutil
import subprocess
from pathlib import Path

import pytest

CSRC = Path(__file__).resolve().parents[2] / 'mnc_mm' / 'ops' / 'csrc'
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.MULTILINE)


def _local_includes(path):
    return INCLUDE.findall(path.read_text())


@pytest.mark.parametrize('source',
                         sorted((CSRC / 'pytorch' / 'cpu').glob('*.cpp')),
                         ids=lambda p: p.name)
def test_cpu_sources_include_no_cuda_header(source):
    cuda_headers = {p.name for p in (CSRC / 'common' / 'cuda').iterdir()}
    for header in _local_includes(source):
        assert Path(header).name not in cuda_headers, (source.name, header)
        assert not header.endswith('.cuh'), (source.name, header)


@pytest.mark.parametrize('header',
                         ['ps_roi_pool_utils.hpp', 'roi_warp_utils.hpp'])
def test_shared_helpers_include_nothing_torch_or_cuda(header):
    text = (CSRC / 'common' / header).read_text()
    assert _local_includes(CSRC / 'common' / header) == ['host_device.hpp']
    for system in re.findall(r'#\s*include\s*<([^>]+)>', text):
        assert not system.startswith(('torch', 'ATen', 'c10', 'cuda')), system
    assert 'at::' not in text


@pytest.mark.skipif(shutil.which('c++') is None, reason='requires c++')
def test_shared_helpers_build_and_run_with_plain_cxx(tmp_path):
    """The helpers the CPU and CUDA kernels share compile with g++ alone and
    give the values of their documented rules."""
    src = tmp_path / 'helpers.cpp'
    src.write_text('''
#include <cstdio>
#include "ps_roi_pool_utils.hpp"
#include "roi_warp_utils.hpp"

template <typename T>
int check() {
  int bad = 0;
  // round half away from zero, unlike torch.round
  bad += roi_warp_round(T(2.5)) != T(3);
  bad += roi_warp_round(T(-2.5)) != T(-3);
  // x1 = 4, x2 = 12 at scale 1/2, 4 cells: start 2, bin 1
  RoIWarpAxis<T> ax = roi_warp_axis<T>(T(4), T(12), T(0.5), false, 4);
  bad += ax.start != T(2) || ax.bin != T(1) || ax.d_step != T(0.125);
  // inverted box: every sample on the first line
  ax = roi_warp_axis<T>(T(12), T(4), T(0.5), false, 4);
  bad += ax.bin != T(0) || ax.d_step != T(0);
  int lo, hi;
  T frac;
  bad += !roi_warp_taps<T>(T(1.25), 4, &lo, &hi, &frac) || lo != 1 ||
         hi != 2 || frac != T(0.25);
  bad += !roi_warp_taps<T>(T(-0.25), 4, &lo, &hi, &frac) || lo != 0 ||
         hi != 0;
  bad += roi_warp_taps<T>(T(-0.75), 4, &lo, &hi, &frac);
  bad += !roi_warp_taps<T>(T(3.25), 4, &lo, &hi, &frac) || lo != 3 ||
         hi != 3;
  bad += roi_warp_bilinear<T>(T(0), T(1), T(2), T(3), T(0.5), T(0.5)) !=
         T(1.5);
  T dx, dy;
  roi_warp_bilinear_grad<T>(T(0), T(1), T(2), T(3), T(0.5), T(0.5), &dx,
                            &dy);
  bad += dx != T(1) || dy != T(2);
  // PSRoIPool: [0, 0, 7, 7] at scale 1/2, 2 bins: start 0, bin 2
  PSRoIPoolBox<T> box = ps_roi_pool_box<T>(T(0), T(0), T(7), T(7), T(0.5),
                                           2);
  bad += box.start_w != T(0) || box.bin_w != T(2) || box.bin_h != T(2);
  ps_roi_pool_bin_range<T>(box.start_w, box.bin_w, 1, 3, &lo, &hi);
  bad += lo != 2 || hi != 3;
  bad += ps_roi_pool_group(6, 3, 7) != 2;
  return bad;
}

int main() {
  const int bad = check<float>() + check<double>();
  std::printf("%d\\n", bad);
  return bad != 0;
}
''')
    exe = tmp_path / 'helpers'
    proc = subprocess.run([
        'c++', '-std=c++17', '-Wall', '-Werror',
        str(src), '-o',
        str(exe), f'-I{CSRC / "common"}'
    ],
                          capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    run = subprocess.run([str(exe)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
