# Copyright (c) OpenMMLab. All rights reserved.
"""The ops as torch ops: ``torch.library.opcheck`` of every forward and
backward op, ``torch.compile(fullgraph=True)`` and ``torch.export`` of a
small module using each op, compared with eager."""
import pytest
import torch
from torch import nn

from mnc_mm.ops import (RoIWarpPool, ext_available, ps_roi_max_avg_pool,
                        ps_roi_pool, roi_warp)

pytestmark = pytest.mark.skipif(
    not ext_available(), reason='mnc_mm._ext is not built')

OPS = torch.ops.mnc_mm
# Boxes inside, across the border, inverted and with .5 corners, on two
# images of 6 x 7 cells at scale 1/8.
ROIS = torch.tensor([[0, 2., 3, 40, 30], [1, -9.5, 4, 20.5, 60],
                     [1, 30, 30, 10, 12], [0, 12.5, 8, 50, 43]],
                    dtype=torch.float64)
K, P, SCALE = 2, 3, 1 / 8


def maps(channels, seed=0, requires_grad=False, channels_last=False):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(2, channels, 6, 7, generator=gen, dtype=torch.float64)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x.requires_grad_(requires_grad)


def op_cases():
    """(op, args) of every registered op, forward ones with inputs that
    need a gradient (so opcheck also runs their backward)."""
    start = torch.tensor([0, 2, 4, 2])
    grad_pool = torch.randn(4, 2, P, P, dtype=torch.float64)
    warp_in = maps(3, seed=3, requires_grad=True)
    rois_grad = ROIS.clone().requires_grad_(True)
    return [
        (OPS.ps_roi_pool, (maps(2 * K * K, requires_grad=True), ROIS, None,
                           2, P, K, SCALE)),
        (OPS.ps_roi_pool, (maps(8 * K * K, seed=1, requires_grad=True,
                                channels_last=True), ROIS, start, 2, P, K,
                           SCALE)),
        (OPS.ps_roi_pool_backward, (grad_pool, ROIS, start, [2, 32, 6, 7],
                                    [1344, 42, 7, 1], 2, P, K, SCALE)),
        (OPS.ps_roi_pool_backward, (grad_pool, ROIS, None, [2, 8, 6, 7],
                                    [336, 1, 56, 8], 2, P, K, SCALE)),
        (OPS.ps_roi_max_avg_pool, (maps(3 * 2 * K * K, seed=2,
                                        requires_grad=True), ROIS, 3, 2, P,
                                   K, SCALE)),
        (OPS.ps_roi_max_avg_pool_backward,
         (torch.randn(4, 3, dtype=torch.float64), maps(3 * 2 * K * K), ROIS,
          2, P, K, SCALE)),
        (OPS.roi_warp, (warp_in, rois_grad, 4, 5, SCALE, False)),
        (OPS.roi_warp, (warp_in, rois_grad, 4, 5, SCALE, True)),
        (OPS.roi_warp_backward,
         (torch.randn(4, 3, 4, 5, dtype=torch.float64), maps(3), ROIS, 4, 5,
          SCALE, False, True, True)),
        (OPS.roi_warp_backward,
         (torch.randn(4, 3, 4, 5, dtype=torch.float64), maps(3), ROIS, 4, 5,
          SCALE, True, False, True)),
    ]


@pytest.mark.parametrize('case', range(len(op_cases())))
def test_opcheck(case):
    op, args = op_cases()[case]
    torch.library.opcheck(op, args)


def test_opcheck_covers_every_op_of_the_namespace():
    """Every op of mnc_mm.ops. ``mnc_mm::masked_nms`` (mmcv's NMS kernel,
    registered by mnc_mm.models.layers.nms when the models are imported)
    has its opcheck in tests/test_models/test_layers/test_nms.py: these
    tests need torch alone."""
    registered = {name.split('::')[1]
                  for name in torch._C._dispatch_get_all_op_names()
                  if name.startswith('mnc_mm::')} - {'masked_nms'}
    assert registered == {
        'ps_roi_pool', 'ps_roi_pool_backward', 'ps_roi_max_avg_pool',
        'ps_roi_max_avg_pool_backward', 'roi_warp', 'roi_warp_backward'}
    assert {op.__name__ for op, _ in op_cases()} == registered


class RoIHead(nn.Module):
    """Score maps + RoIs -> every op's output: PSRoIPool (all channels and
    one pair per RoI), PSRoIMaxAvgPool and RoIWarpPool."""

    def __init__(self):
        super().__init__()
        self.warp = RoIWarpPool(4, 2, SCALE)

    def forward(self, cls_maps, feat, rois):
        scores = ps_roi_max_avg_pool(cls_maps, rois, 3, 2, P, K, SCALE)
        labels = scores[:, 1:].argmax(dim=1) + 1
        masks = ps_roi_pool(cls_maps, rois, 2, P, K, SCALE,
                            channel_start=2 * labels)
        pooled = ps_roi_pool(cls_maps, rois, 6, P, K, SCALE)
        warped = self.warp(feat, rois) + roi_warp(feat, rois, 2, SCALE, True)
        return scores, masks, pooled, warped


def head_inputs(requires_grad=False):
    return (maps(3 * 2 * K * K, seed=4, requires_grad=requires_grad,
                 channels_last=True),
            maps(3, seed=5, requires_grad=requires_grad),
            ROIS.float().clone().requires_grad_(requires_grad))


def grads(outputs, inputs):
    loss = sum((out * torch.linspace(-1, 1, out.numel(), dtype=out.dtype)
                .view_as(out)).sum() for out in outputs)
    return torch.autograd.grad(loss, inputs)


@pytest.mark.parametrize('backend', ['aot_eager', 'inductor'])
def test_compile_fullgraph_matches_eager(backend):
    torch._dynamo.reset()
    head = RoIHead()
    compiled = torch.compile(head, fullgraph=True, backend=backend)
    inputs = head_inputs(requires_grad=True)
    eager_out = head(*inputs)
    out = compiled(*inputs)
    for got, want in zip(out, eager_out):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    for got, want in zip(grads(out, inputs), grads(eager_out, inputs)):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_export_runs_and_matches_eager_for_any_number_of_rois():
    head = RoIHead()
    inputs = head_inputs()
    num_rois = torch.export.Dim('num_rois', min=1)
    program = torch.export.export(
        head, inputs,
        dynamic_shapes=({}, {}, {0: num_rois}))
    targets = {str(node.target) for node in program.graph.nodes}
    assert {'mnc_mm.ps_roi_pool.default', 'mnc_mm.ps_roi_max_avg_pool.default',
            'mnc_mm.roi_warp.default'} <= targets
    exported = program.module()
    for rows in (slice(None), slice(1, 3)):
        args = (inputs[0], inputs[1], inputs[2][rows])
        for got, want in zip(exported(*args), head(*args)):
            torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_wrappers_read_no_tensor_values():
    """The Python layer checks shapes, dtypes and devices only: under
    FakeTensorMode (tensors without data, where reading a value raises)
    every op call of the head goes through and gives the output shapes."""
    from torch._subclasses.fake_tensor import FakeTensorMode
    head = RoIHead()
    real = head_inputs()
    with FakeTensorMode() as mode:
        fake = [mode.from_tensor(t) for t in real]
        shapes = [tuple(out.shape) for out in head(*fake)]
    assert shapes == [tuple(out.shape) for out in head(*real)]


BAD_ROWS = [([0, float('nan'), 3, 40, 30], r'rois must be finite'),
            ([0, 2, 3, float('inf'), 30], r'rois must be finite'),
            ([2, 2, 3, 40, 30],
             r'rois\[:, 0\] \(batch index\) must be an integer in \[0, 2\)'),
            ([0.5, 2, 3, 40, 30], r'rois\[:, 0\] \(batch index\)')]


@pytest.mark.parametrize('compiled', [False, True])
@pytest.mark.parametrize('row, problem', BAD_ROWS)
@pytest.mark.parametrize('op', ['ps_roi_pool', 'ps_roi_max_avg_pool',
                                'roi_warp'])
def test_bad_roi_values_raise_naming_op_and_problem(op, row, problem,
                                                    compiled):
    """The kernels check the values (the Python layer no longer does):
    eager or compiled, the error names the op and the problem."""
    calls = dict(
        ps_roi_pool=lambda x, r: ps_roi_pool(x, r, 6, P, K, SCALE),
        ps_roi_max_avg_pool=lambda x, r: ps_roi_max_avg_pool(
            x, r, 3, 2, P, K, SCALE),
        roi_warp=lambda x, r: roi_warp(x, r, 3, SCALE))
    call = calls[op]
    if compiled:
        torch._dynamo.reset()
        call = torch.compile(call, fullgraph=True, backend='aot_eager')
    rois = torch.cat([ROIS, torch.tensor([row], dtype=torch.float64)])
    with pytest.raises(ValueError, match=f'^{op}: {problem}'):
        call(maps(6 * K * K), rois)
