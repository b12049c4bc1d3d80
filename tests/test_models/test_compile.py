# Copyright (c) OpenMMLab. All rights reserved.
"""The FCIS and MNC test paths under ``torch.compile``: they trace, run
and match eager."""
import os.path as osp

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config
from torch import Tensor

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


def _test_path(model, samples):
    """Backbone, RPN proposals and RoI head up to the candidates of mask
    voting, as a function of the image batch."""

    def run(imgs):
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
    candidates as eager; it breaks the graph only in the RPN's proposal
    selection (``nonzero`` of the size filter, mmcv's ``batched_nms``),
    never in the RoI heads."""
    model = _tiny(method)
    imgs, samples = synthetic_batch(num_imgs=1, size=(64, 96),
                                    with_gt=False)
    run = _test_path(model, samples)
    with torch.no_grad():
        expected = run(imgs)
        actual = torch.compile(run, backend='aot_eager')(imgs)
        explained = torch._dynamo.explain(run)(imgs)
    boxes = expected[0]
    assert len(boxes) == 2 and boxes[0][0].size(0) > 0  # two passes, RoIs
    _assert_same(actual, expected, atol=1e-5)
    frames = [frame.filename for reason in explained.break_reasons
              for frame in reason.user_stack]
    assert explained.graph_break_count > 0  # the RPN's NMS breaks it
    assert not [f for f in frames if ROI_HEADS in f], frames


@pytest.mark.parametrize('method', ['fcis', 'mnc'])
def test_roi_head_passes_compile_in_one_graph(method, synthetic_batch):
    """The RoI head from the features and proposals to the candidates of
    mask voting is one graph (``fullgraph=True`` raises at any break) and
    matches eager."""
    model = _tiny(method)
    imgs, samples = synthetic_batch(num_imgs=2, size=(64, 96),
                                    with_gt=False)
    with torch.no_grad():
        x = model.extract_feat(imgs)
        proposals = model.rpn_head.predict(x, samples, rescale=False)
        expected = model.roi_head.predict_passes(x, proposals, samples)
        compiled = torch.compile(model.roi_head.predict_passes,
                                 fullgraph=True, backend='aot_eager')
        actual = compiled(x, proposals, samples)
    _assert_same(actual, expected, atol=1e-5)
