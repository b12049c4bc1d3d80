# Copyright (c) OpenMMLab. All rights reserved.
"""The FCIS and MNC test paths under ``torch.compile`` and the FCIS head
under ``torch.export``: they trace, run and match eager."""
import os.path as osp

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config
from torch import Tensor, nn
from torch._dynamo.testing import CompileCounterWithBackend

from mnc_mm.ops import ps_roi_max_avg_pool, ps_roi_pool, roi_warp

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
ROI_HEADS = osp.join('mnc_mm', 'models', 'roi_heads')


@pytest.fixture(autouse=True)
def _one_thread_fresh_dynamo():
    """One intra-op thread (shared CPU); no compiled code or graph-break
    counts carried from one test to the next."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()
    torch.set_num_threads(threads)


def _tiny(method):
    """The demo config of ``method`` ('fcis' or 'mnc'), random init,
    seeded, in eval mode."""
    cfg = Config.fromfile(
        osp.join(REPO, 'configs', 'demo', f'{method}_r18-tiny_shapes.py'))
    cfg.model.backbone.init_cfg = None
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model.eval()


def _test_path(model):
    """Backbone, RPN proposals and RoI head up to the candidates of mask
    voting, as a function of the image batch and its data samples."""

    def run(imgs, samples):
        x = model.extract_feat(imgs)
        proposals = model.rpn_head.predict(x, samples, rescale=False)
        return model.roi_head.predict_passes(x, proposals, samples)

    return run


def _flat(tree):
    return [t for t in torch.utils._pytree.tree_leaves(tree)
            if isinstance(t, Tensor)]


def _assert_same(actual, expected, atol):
    actual, expected = _flat(actual), _flat(expected)
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        torch.testing.assert_close(a, e, rtol=1e-4, atol=atol)


@pytest.mark.parametrize('method', ['fcis', 'mnc'])
def test_test_path_compiles_and_matches_eager(method, synthetic_batch):
    """torch.compile of backbone + RPN + RoI head up to mask voting: same
    candidates as eager; by default dynamo breaks the graph only at the
    RPN's NMS (``mnc_mm::masked_nms``, whose output size depends on the
    data), nowhere else."""
    model = _tiny(method)
    imgs, samples = synthetic_batch(num_imgs=1, size=(64, 96),
                                    with_gt=False)
    run = _test_path(model)
    with torch.no_grad():
        expected = run(imgs, samples)
        actual = torch.compile(run, backend='aot_eager')(imgs, samples)
        explained = torch._dynamo.explain(run)(imgs, samples)
    boxes = expected[0]
    assert len(boxes) == 2 and boxes[0][0].size(0) > 0  # two passes, RoIs
    _assert_same(actual, expected, atol=1e-5)
    reasons = [reason.reason for reason in explained.break_reasons]
    assert explained.graph_break_count > 0
    assert all('mnc_mm.masked_nms' in r for r in reasons), reasons


@pytest.mark.parametrize('method', ['fcis', 'mnc'])
def test_test_path_is_one_graph_with_captured_dynamic_shapes(
        method, synthetic_batch):
    """With dynamo capturing data-dependent output sizes (the number of
    proposals NMS keeps) the whole test path up to mask voting is one
    graph (``fullgraph=True`` raises at any break) for a batch of two
    images, and matches eager."""
    model = _tiny(method)
    imgs, samples = synthetic_batch(num_imgs=2, size=(64, 96),
                                    with_gt=False)
    run = _test_path(model)
    counter = CompileCounterWithBackend('aot_eager')
    with torch.no_grad(), torch._dynamo.config.patch(
            capture_dynamic_output_shape_ops=True):
        expected = run(imgs, samples)
        actual = torch.compile(run, backend=counter, fullgraph=True)(
            imgs, samples)
    assert expected[0][0][1].size(0) > 0  # RoIs of the second image
    _assert_same(actual, expected, atol=1e-5)
    assert counter.frame_count == 1


@pytest.mark.parametrize('method', ['fcis', 'mnc'])
def test_test_path_compiles_with_dynamic_shapes(method, synthetic_batch):
    """``torch.compile(dynamic=True, fullgraph=True)`` of the test path
    (dynamo capturing data-dependent output sizes): the ops' scale check
    traces on the SymFloat attribute, the RPN's selection through the NMS
    op; run on two image sizes without recompiling, matching eager."""
    model = _tiny(method)
    run = _test_path(model)
    counter = CompileCounterWithBackend('aot_eager')
    compiled = torch.compile(run, backend=counter, dynamic=True,
                             fullgraph=True)
    compiles = []
    with torch.no_grad(), torch._dynamo.config.patch(
            capture_dynamic_output_shape_ops=True):
        for size in ((64, 96), (48, 80)):
            imgs, samples = synthetic_batch(num_imgs=1, size=size,
                                            with_gt=False)
            expected = run(imgs, samples)
            assert expected[0][0][0].size(0) > 0
            _assert_same(compiled(imgs, samples), expected, atol=1e-5)
            compiles.append(counter.frame_count)
    # the first call traces twice (a restart specialises the ops' scale)
    assert compiles[0] == compiles[1]


@pytest.mark.parametrize('method', ['fcis', 'mnc'])
def test_roi_head_passes_compile_once_for_any_number_of_rois(
        method, synthetic_batch):
    """The RoI head from the features and proposals to the candidates of
    mask voting is one graph (``fullgraph=True`` raises at any break),
    compiled once for a dynamic number of proposals, and matches eager."""
    model = _tiny(method)
    imgs, samples = synthetic_batch(num_imgs=2, size=(64, 96),
                                    with_gt=False)
    counter = CompileCounterWithBackend('aot_eager')
    compiled = torch.compile(model.roi_head.predict_passes, fullgraph=True,
                             backend=counter)
    with torch.no_grad():
        x = model.extract_feat(imgs)
        proposals = model.rpn_head.predict(x, samples, rescale=False)
        assert min(len(p) for p in proposals) >= 12
        for num in (None, 7, 12):  # all, then fewer proposals per image
            props = [p[:num] for p in proposals]
            for p in props:
                torch._dynamo.mark_dynamic(p.bboxes, 0)
            expected = model.roi_head.predict_passes(x, props, samples)
            _assert_same(compiled(x, props, samples), expected, atol=1e-5)
    assert counter.frame_count == 1


class _TestPath(nn.Module):
    """:func:`_test_path` as a module of the image batch (the data samples
    fixed), for ``torch.export``."""

    def __init__(self, model: nn.Module, samples) -> None:
        super().__init__()
        self.model = model
        self.samples = samples

    def forward(self, imgs: Tensor):
        return _test_path(self.model)(imgs, self.samples)


@pytest.mark.parametrize('method,op', [('fcis', 'ps_roi_pool'),
                                       ('mnc', 'roi_warp')])
def test_test_path_exports(method, op, synthetic_batch):
    """torch.export of backbone + RPN + RoI head up to mask voting for one
    image size: the number of proposals NMS keeps is a data-dependent size
    in the program, which runs on other images (other proposal counts)
    and matches eager."""
    model = _tiny(method)
    imgs, samples = synthetic_batch(num_imgs=1, size=(64, 96),
                                    with_gt=False)
    module = _TestPath(model, samples).eval()
    counts = set()
    with torch.no_grad():
        program = torch.export.export(module, (imgs, ))
        for seed in (0, 1, 2):
            imgs, _ = synthetic_batch(num_imgs=1, size=(64, 96),
                                      with_gt=False, seed=seed)
            expected = module(imgs)
            _assert_same(program.module()(imgs), expected, atol=1e-5)
            counts.add(expected[0][0][0].size(0))
    assert len(counts) > 1, counts  # a size the export did not see
    targets = {str(node.target) for node in program.graph.nodes}
    assert {'mnc_mm.masked_nms.default',
            f'mnc_mm.{op}.default'} <= targets, targets


class _OpsWithScaleAttribute(nn.Module):
    """The ops reading ``spatial_scale`` from a float attribute, as the
    heads do: (N, 2 * 3 * 3, H, W) maps, (R, 5) RoIs -> PS RoI pooling
    (R, 2, 3, 3), its class-score form (R, 2, 3, 3) and RoI warping
    (R, 18, 4, 4)."""

    def __init__(self) -> None:
        super().__init__()
        self.spatial_scale = 1. / 16

    def forward(self, maps: Tensor, rois: Tensor):
        return (ps_roi_pool(maps, rois, 2, 3, 3, self.spatial_scale),
                ps_roi_max_avg_pool(maps, rois, 2, 1, 3, 3,
                                    self.spatial_scale),
                roi_warp(maps, rois, 4, self.spatial_scale))


def test_ops_compile_dynamic_with_a_float_scale_attribute():
    """Under ``dynamic=True`` dynamo makes the float attribute a SymFloat;
    the Python scale check traces (``fullgraph=True``), the compiled
    module matches eager on other sizes without recompiling, and
    eager still refuses a non-finite scale."""
    module = _OpsWithScaleAttribute()
    counter = CompileCounterWithBackend('aot_eager')
    compiled = torch.compile(module, backend=counter, dynamic=True,
                             fullgraph=True)
    compiles = []
    for num, (height, width) in ((3, (6, 8)), (5, (9, 7))):
        maps = torch.randn(1, 18, height, width)
        rois = _rois(num, height * 16, width * 16, seed=num)
        _assert_same(compiled(maps, rois), module(maps, rois), atol=1e-6)
        compiles.append(counter.frame_count)
    # dynamo traces the frame twice (it restarts once to specialise the
    # scale the ops take as a constant), then never again
    assert compiles[0] == compiles[1]
    module.spatial_scale = float('inf')
    with pytest.raises(ValueError, match='spatial_scale must be positive'):
        module(maps, rois)


class FCISRoIPredictor(nn.Module):
    """What ``torch.export`` sees of the FCIS head: head feature
    (B, Cin, H, W) and RoIs (R, 5) -> class probabilities (R, C), mask
    probabilities (R, P, P) of the best foreground class, box deltas
    (R, 4)."""

    def __init__(self, head: nn.Module) -> None:
        super().__init__()
        self.head = head

    def forward(self, feat: Tensor, rois: Tensor):
        return self.head.predict_rois(self.head.score_maps(feat), rois)


def _rois(num, height, width, seed):
    """num RoIs (num, 5) of image 0, inclusive ends inside the image."""
    gen = torch.Generator().manual_seed(seed)
    xy = torch.rand(num, 2, generator=gen) * torch.tensor(
        [width * 0.6, height * 0.6])
    wh = 4 + torch.rand(num, 2, generator=gen) * torch.tensor(
        [width * 0.4 - 4, height * 0.4 - 4])
    return torch.cat([torch.zeros(num, 1), xy, xy + wh], dim=1)


def test_fcis_roi_head_exports_with_dynamic_rois_and_map_size():
    """torch.export with the number of RoIs and the feature size dynamic:
    the program runs on other sizes than the traced ones, matches eager,
    and calls the registered ops."""
    head = _tiny('fcis').roi_head.mask_head
    module = FCISRoIPredictor(head).eval()
    channels = head.conv_bbox.in_channels
    torch.manual_seed(1)
    dims = {name: torch.export.Dim(name, min=2, max=4096)
            for name in ('num_rois', 'height', 'width')}
    with torch.no_grad():
        program = torch.export.export(
            module, (torch.randn(1, channels, 8, 12), _rois(7, 64, 96, 0)),
            dynamic_shapes=dict(
                feat={2: dims['height'], 3: dims['width']},
                rois={0: dims['num_rois']}))
        for num, (height, width) in ((2, (8, 12)), (7, (5, 9)),
                                     (31, (13, 10))):
            feat = torch.randn(1, channels, height, width)
            rois = _rois(num, height * 8, width * 8, seed=num)
            expected = module(feat, rois)
            actual = program.module()(feat, rois)
            assert actual[0].shape == (num, head.num_score_classes)
            assert actual[1].shape == (num, head.pooled_size,
                                       head.pooled_size)
            _assert_same(actual, expected, atol=1e-6)
    targets = {str(node.target) for node in program.graph.nodes}
    assert {'mnc_mm.ps_roi_pool.default',
            'mnc_mm.ps_roi_max_avg_pool.default'} <= targets, targets
