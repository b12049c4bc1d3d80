# Copyright (c) OpenMMLab. All rights reserved.
"""The CUDA kernels and launchers, run on the host and compared with the CPU
kernels.

``cuda_host/gen_host_cuda.py`` rewrites the launches of
``mnc_mm/ops/csrc/pytorch/cuda/*.cu`` for ``cuda_host/host_cuda.h`` (blocks
in a seeded random order, the threads of a block as fibers with random
switches at memory writes, a real barrier for ``__syncthreads``); g++
compiles the result against the torch CPU headers into a test extension in
pytest's cache. Every op and gradient then runs on CPU tensors through the
CUDA code and through ``mnc_mm._ext``'s CPU kernels, on the random problems
of ``test_ps_roi_pool.py`` and ``test_roi_warp.py``: once compiled plainly,
once with multiply-adds fused (``-mfma -ffp-contract=fast``, as nvcc
compiles), where the CPU and CUDA bin limits must still agree (the shared
helpers write the fused expressions as ``fma()``); without those fma()
calls the plain and fused builds pool different cells (a test below). A
last build plants four bugs in a copy of the sources and shows that each
is caught.
"""
import hashlib
import os
import os.path as osp
import shutil

import pytest
import torch

from mnc_mm.ops import ext_available, load_ext

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not ext_available(), reason='mnc_mm._ext is not built')
]

HERE = osp.dirname(osp.abspath(__file__))
HOST_DIR = osp.join(HERE, 'cuda_host')
CSRC = osp.join(HERE, '..', '..', 'mnc_mm', 'ops', 'csrc')
MODES = {
    'plain': ['-ffp-contract=off'],
    # GCC forms FMAs in a pass that -O1 skips: -fexpensive-optimizations.
    'fma': ['-mfma', '-ffp-contract=fast', '-fexpensive-optimizations'],
}
# Probability that a GPU thread is switched out at a memory write.
PREEMPT = 0.2
# Problems per op and dtype (each with its own schedule seed).
NUM_CASES = 24


def has_fma() -> bool:
    try:
        with open('/proc/cpuinfo') as f:
            return ' fma ' in f.read()
    except OSError:
        return False


def build_host_ext(csrc: str, mode: str, cache_dir: str):
    """Generate and compile the host-run CUDA extension of ``csrc``."""
    from torch.utils.cpp_extension import load

    from cuda_host.gen_host_cuda import generate
    cu_dir = osp.join(csrc, 'pytorch', 'cuda')
    cu_files = sorted(
        osp.join(cu_dir, f) for f in os.listdir(cu_dir) if f.endswith('.cu'))
    source = generate(cu_files)
    deps = ''.join(
        open(osp.join(root, f)).read()
        for root, _, files in sorted(os.walk(osp.join(csrc, 'common')))
        for f in sorted(files))
    deps += ''.join(
        open(osp.join(HOST_DIR, f)).read()
        for f in ('host_cuda.h', 'tsan_hooks.h'))
    digest = hashlib.sha1(
        (source + deps + ' '.join(MODES[mode])).encode()).hexdigest()[:12]
    name = f'mnc_mm_host_cuda_{mode}_{digest}'
    build_dir = osp.join(cache_dir, name)
    os.makedirs(build_dir, exist_ok=True)
    tu = osp.join(build_dir, 'host_cuda_ops.cpp')
    with open(tu, 'w') as f:
        f.write(source)
    return load(
        name=name,
        sources=[tu],
        extra_include_paths=[
            osp.join(HOST_DIR, 'stubs'), HOST_DIR,
            osp.join(csrc, 'common'),
            osp.join(csrc, 'common', 'cuda')
        ],
        extra_cflags=['-O1', '-std=c++20', '-fsanitize=thread'] +
        MODES[mode],
        build_directory=build_dir,
        verbose=False)


@pytest.fixture(scope='session')
def host_cache(request, tmp_path_factory):
    """pytest's cache (builds survive between runs), else a temp dir."""
    cache = getattr(request.config, 'cache', None)
    if cache is None:  # -p no:cacheprovider
        return str(tmp_path_factory.mktemp('mnc_mm_host_cuda'))
    return str(cache.mkdir('mnc_mm_host_cuda'))


@pytest.fixture(scope='module', params=list(MODES))
def host_ext(request, host_cache):
    if request.param == 'fma' and not has_fma():
        pytest.skip('this CPU has no FMA instructions')
    return build_host_ext(CSRC, request.param, host_cache)


# --------------------------------------------------------------------------
# The problems, and one comparison per op.
# --------------------------------------------------------------------------
TOLS = {
    torch.float64: 1e-12,
    torch.float32: 1e-5,
    torch.float16: 2.0**-10,
    torch.bfloat16: 2.0**-7,
}


def close(got, want, dtype, what):
    tol = TOLS[dtype]
    scale = max(want.abs().max().item(), 1.) if want.numel() else 1.
    torch.testing.assert_close(
        got.double(), want.double(), rtol=tol, atol=tol * scale, msg=what)


def ps_problem(seed, dtype, channels_last):
    """A random PSRoIPool problem of test_ps_roi_pool.py: the (N, D, k, k,
    H, W) maps (official or channels-last strides), RoIs, sizes, scale."""
    from test_ps_roi_pool import random_case
    x, rois, dims, pooled, group, scale = random_case(seed, torch.float64)
    if dtype in (torch.float16, torch.bfloat16):
        rois = rois.clamp(-6e4, 6e4)  # finite in half
    n, c, h, w = x.shape
    maps = x.to(dtype).view(n, c // group**2, group, group, h, w)
    if channels_last:
        maps = maps.permute(0, 4, 5, 2, 3, 1).contiguous().permute(
            0, 5, 3, 4, 1, 2)
    return maps, rois.to(dtype).contiguous(), dims, pooled, scale


def output_grad(shape, dtype, seed):
    """Random output gradient with a zero first row (an OHEM-dropped RoI)."""
    grad = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
    if grad.numel():
        grad[:1] = 0
    return grad.to(dtype)


def check_ps_roi_pool(host, seed, dtype, channels_last, with_start):
    cpu = load_ext()
    maps, rois, dims, pooled, scale = ps_problem(seed, dtype, channels_last)
    start = torch.empty(0, dtype=torch.int64)
    if with_start:  # pool rows start[n] + d of dims + 2 rows
        maps = torch.cat([maps, maps[:, :1], maps[:, -1:]], 1)
        start = torch.randint(0, 3, (rois.shape[0], ),
                              generator=torch.Generator().manual_seed(seed))
    outs = []
    for forward in (cpu.ps_roi_pool_forward,
                    host.PSRoIPoolForwardCUDAKernelLauncher):
        out = maps.new_empty(rois.shape[0], dims, pooled, pooled)
        forward(maps, rois, start, out, dims, pooled, scale)
        outs.append(out)
    close(outs[1], outs[0], dtype, 'ps_roi_pool forward')
    grad_out = output_grad(outs[0].shape, dtype, seed)
    grads = []
    for backward in (cpu.ps_roi_pool_backward,
                     host.PSRoIPoolBackwardCUDAKernelLauncher):
        grad = torch.zeros_like(maps)
        backward(grad_out, rois, start, grad, dims, pooled, scale)
        grads.append(grad)
    close(grads[1], grads[0], dtype, 'ps_roi_pool backward')


def check_ps_roi_max_avg_pool(host, seed, dtype, channels_last,
                              backward=True):
    cpu = load_ext()
    maps, rois, dims, pooled, scale = ps_problem(seed, dtype, channels_last)
    cig = 1 + seed % 3
    maps = torch.cat([maps] * cig, 1)  # dims groups of cig rows
    outs = []
    for forward in (cpu.ps_roi_max_avg_pool_forward,
                    host.PSRoIMaxAvgPoolForwardCUDAKernelLauncher):
        out = maps.new_empty(rois.shape[0], dims)
        forward(maps, rois, out, cig, pooled, scale)
        outs.append(out)
    close(outs[1], outs[0], dtype, 'ps_roi_max_avg_pool forward')
    if not backward:
        return
    grad_out = output_grad(outs[0].shape, dtype, seed)
    grads = []
    for backward in (cpu.ps_roi_max_avg_pool_backward,
                     host.PSRoIMaxAvgPoolBackwardCUDAKernelLauncher):
        grad = torch.zeros_like(maps)
        backward(grad_out, maps, rois, grad, cig, pooled, scale)
        grads.append(grad)
    close(grads[1], grads[0], dtype, 'ps_roi_max_avg_pool backward')


def check_roi_warp(host, seed, dtype, quantize):
    from test_roi_warp import random_case
    cpu = load_ext()
    feat, rois, (ph, pw), scale = random_case(seed)
    feat, rois = feat.to(dtype), rois.to(dtype)
    outs = []
    for forward in (cpu.roi_warp_forward, host.roi_warp_forward_cuda):
        out = feat.new_empty(rois.shape[0], feat.shape[1], ph, pw)
        forward(feat, rois, out, ph, pw, scale, quantize)
        outs.append(out)
    close(outs[1], outs[0], dtype, 'roi_warp forward')
    grad_out = output_grad(outs[0].shape, dtype, seed)
    grads = []
    for backward in (cpu.roi_warp_backward, host.roi_warp_backward_cuda):
        grad_input, grad_rois = torch.empty_like(feat), torch.empty_like(rois)
        backward(grad_out, feat, rois, grad_input, grad_rois, ph, pw, scale,
                 quantize)
        grads.append((grad_input, grad_rois))
    close(grads[1][0], grads[0][0], dtype, 'roi_warp grad input')
    # Box gradient: sums of many products in different orders.
    box_tol = {torch.float64: 1e-10, torch.float32: 1e-4}.get(dtype, 5e-2)
    scale_r = max(grads[0][1].abs().max().item(), 1.)
    torch.testing.assert_close(
        grads[1][1].double(), grads[0][1].double(), rtol=box_tol,
        atol=box_tol * scale_r, msg='roi_warp grad rois')


DTYPES = [torch.float64, torch.float32, torch.float16, torch.bfloat16]
DTYPE_IDS = [str(d).split('.')[-1] for d in DTYPES]


def run_cases(host, check, dtype, **kwargs):
    for seed in range(NUM_CASES):
        host.set_schedule(seed, PREEMPT)
        check(host, seed, dtype, **kwargs)


@pytest.mark.parametrize('dtype', DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize('channels_last', [False, True])
def test_ps_roi_pool(host_ext, dtype, channels_last):
    run_cases(host_ext, check_ps_roi_pool, dtype,
              channels_last=channels_last, with_start=channels_last)


@pytest.mark.parametrize('dtype', DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize('channels_last', [False, True])
def test_ps_roi_max_avg_pool(host_ext, dtype, channels_last):
    run_cases(host_ext, check_ps_roi_max_avg_pool, dtype,
              channels_last=channels_last)


@pytest.mark.parametrize('dtype', DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize('quantize', [False, True])
def test_roi_warp(host_ext, dtype, quantize):
    run_cases(host_ext, check_roi_warp, dtype, quantize=quantize)


def test_bad_launch_is_reported_at_the_launch_check(host_ext):
    """A RoI with a batch index out of range traps in the kernel; the error
    is pending until the launcher's C10_CUDA_KERNEL_LAUNCH_CHECK."""
    maps = torch.randn(1, 1, 1, 1, 4, 4)
    rois = torch.tensor([[3., 0., 0., 3., 3.]])
    out = maps.new_empty(1, 1, 2, 2)
    with pytest.raises(RuntimeError, match='CUDA error: device-side trap'):
        host_ext.PSRoIPoolForwardCUDAKernelLauncher(
            maps, rois, torch.empty(0, dtype=torch.int64), out, 1, 2, 1.0)
    # The error was consumed: a good launch runs again.
    rois[0, 0] = 0
    host_ext.PSRoIPoolForwardCUDAKernelLauncher(
        maps, rois, torch.empty(0, dtype=torch.int64), out, 1, 2, 1.0)


# --------------------------------------------------------------------------
# Planted bugs: each must make its op disagree with the CPU kernels.
# --------------------------------------------------------------------------
PLANTED = {
    'missing atomicAdd': (
        'common/cuda/ps_roi_pool_cuda_kernel.cuh',
        'atomicAdd(channel + h * maps.stride_h + w * maps.stride_w, value);',
        'channel[h * maps.stride_h + w * maps.stride_w] += value;', 1),
    'missing __syncthreads': (
        'common/cuda/roi_warp_cuda_kernel.cuh',
        'partial[k][threadIdx.x + stride];\n    __syncthreads();',
        'partial[k][threadIdx.x + stride];', 1),
    'swapped indices': (
        'common/cuda/ps_roi_pool_cuda_kernel.cuh',
        'const int pw = index % pooled_size;\n'
        '  const int ph = (index / pooled_size) % pooled_size;\n'
        '  const int64_t d',
        'const int ph = index % pooled_size;\n'
        '  const int pw = (index / pooled_size) % pooled_size;\n'
        '  const int64_t d', 1),
    'swapped launcher argument': (
        'pytorch/cuda/roi_warp_cuda.cu',
        'input.size(2), input.size(3)', 'input.size(3), input.size(2)', 1),
}

# The op whose comparison each bug must break, and the problems to try.
CATCHES = {
    'missing atomicAdd':
    lambda host, seed: check_ps_roi_max_avg_pool(host, seed, torch.float64,
                                                 False),
    'missing __syncthreads':
    lambda host, seed: check_roi_warp(host, seed, torch.float64, False),
    'swapped indices':
    lambda host, seed: check_ps_roi_pool(host, seed, torch.float64, False,
                                         False),
    'swapped launcher argument':
    lambda host, seed: check_roi_warp(host, seed, torch.float64, False),
}


@pytest.fixture(scope='module')
def planted_ext(tmp_path_factory, host_cache):
    """The host extension of a copy of the sources with all four bugs, each
    in a different kernel or launcher."""
    csrc = str(tmp_path_factory.mktemp('planted') / 'csrc')
    shutil.copytree(CSRC, csrc)
    for what, (path, old, new, count) in PLANTED.items():
        full = osp.join(csrc, path)
        with open(full) as f:
            text = f.read()
        assert old in text, f'cannot plant {what}: {old!r} not in {path}'
        with open(full, 'w') as f:
            f.write(text.replace(old, new, count))
    return build_host_ext(csrc, 'plain', host_cache)


@pytest.mark.parametrize('bug', list(PLANTED))
def test_planted_bug_is_caught(planted_ext, bug):
    caught = 0
    for seed in range(NUM_CASES):
        planted_ext.set_schedule(seed, PREEMPT)
        try:
            CATCHES[bug](planted_ext, seed)
        except AssertionError:
            caught += 1
    assert caught > 0, f'{bug}: no problem of {NUM_CASES} noticed it'


def test_planted_build_control(planted_ext):
    """The one kernel without a planted bug (PSRoIMaxAvgPool forward) still
    agrees: the failures above come from the bugs, not from the build."""
    run_cases(planted_ext, check_ps_roi_max_avg_pool, torch.float64,
              channels_last=False, backward=False)


def test_backward_launchers_alert_nondeterminism(host_ext):
    """The atomic CUDA backwards call alertNotDeterministic: an error under
    torch.use_deterministic_algorithms(True), as torchvision's roi_align."""
    maps = torch.randn(1, 1, 1, 1, 4, 4)
    rois = torch.tensor([[0., 0., 0., 3., 3.]])
    feat = maps.view(1, 1, 4, 4)
    none = torch.empty(0, dtype=torch.int64)
    calls = [
        lambda: host_ext.PSRoIPoolBackwardCUDAKernelLauncher(
            torch.ones(1, 1, 2, 2), rois, none, torch.zeros_like(maps), 1,
            2, 1.0),
        lambda: host_ext.PSRoIMaxAvgPoolBackwardCUDAKernelLauncher(
            torch.ones(1, 1), maps, rois, torch.zeros_like(maps), 1, 2, 1.0),
        lambda: host_ext.roi_warp_backward_cuda(
            torch.ones(1, 1, 2, 2), feat, rois, torch.empty_like(feat),
            torch.empty_like(rois), 2, 2, 1.0, False),
    ]
    torch.use_deterministic_algorithms(True)
    try:
        for call in calls:
            with pytest.raises(RuntimeError,
                               match='does not have a deterministic'):
                call()
    finally:
        torch.use_deterministic_algorithms(False)
    for call in calls:  # and run without the switch
        call()


# --------------------------------------------------------------------------
# Why the helpers spell out fma(): the same sources without it give
# different bins once multiply-adds are fused (as nvcc does).
# --------------------------------------------------------------------------
UNFUSED = [
    ('common/ps_roi_pool_utils.hpp',
     'fma(round(x2) + T(1), spatial_scale, -start_w)',
     '(round(x2) + T(1)) * spatial_scale - start_w'),
    ('common/ps_roi_pool_utils.hpp',
     'fma(round(y2) + T(1), spatial_scale, -start_h)',
     '(round(y2) + T(1)) * spatial_scale - start_h'),
    ('common/ps_roi_pool_utils.hpp', 'fma(static_cast<T>(p), bin, start)',
     'static_cast<T>(p) * bin + start'),
    ('common/ps_roi_pool_utils.hpp', 'fma(static_cast<T>(p + 1), bin, start)',
     'static_cast<T>(p + 1) * bin + start'),
]


def test_without_fma_the_fused_build_differs(tmp_path_factory, host_cache):
    """PSRoIPool with the helpers' fma() calls written as plain `a * b + c`:
    compiled plainly and with FMA contraction it pools different cells on
    some random problems of test_ps_roi_pool.py (scales 0.3 and 1/13); with
    the fma() calls both builds match the CPU kernels (tests above)."""
    csrc = str(tmp_path_factory.mktemp('unfused') / 'csrc')
    shutil.copytree(CSRC, csrc)
    for path, old, new in UNFUSED:
        full = osp.join(csrc, path)
        with open(full) as f:
            text = f.read()
        assert old in text, f'{old!r} not in {path}'
        with open(full, 'w') as f:
            f.write(text.replace(old, new))
    builds = [build_host_ext(csrc, mode, host_cache) for mode in MODES]
    differ = 0
    for seed in range(150):
        maps, rois, dims, pooled, scale = ps_problem(seed, torch.float32,
                                                     False)
        outs = []
        for host in builds:
            host.set_schedule(seed, 0.)
            out = maps.new_empty(rois.shape[0], dims, pooled, pooled)
            host.PSRoIPoolForwardCUDAKernelLauncher(
                maps, rois, torch.empty(0, dtype=torch.int64), out, dims,
                pooled, scale)
            outs.append(out)
        differ += not torch.allclose(outs[0], outs[1], rtol=1e-5, atol=1e-5)
    print(f'unfused helpers: plain and FMA builds differ on {differ} of '
          f'150 problems')
    assert differ > 0
