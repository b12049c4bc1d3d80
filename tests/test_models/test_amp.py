# Copyright (c) OpenMMLab. All rights reserved.
"""FCIS and MNC under CPU bfloat16 autocast: a training step through
CPUAmpOptimWrapper and predictions, compared with float32."""
import os.path as osp

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = dict(fcis='configs/demo/fcis_r18-tiny_shapes.py',
               mnc='configs/demo/mnc_r18-tiny_shapes.py')

@pytest.fixture(autouse=True)
def _scope_and_one_thread():
    init_default_scope('mmdet')
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_model(method, **overrides):
    """The demo model, narrower (32-channel trunk)."""
    cfg = Config.fromfile(osp.join(REPO, CONFIGS[method])).model
    cfg.update(overrides)
    cfg.backbone.base_channels = 8
    if method == 'fcis':
        cfg.neck.update(in_channels=[64], out_channels=32)
        cfg.rpn_head.update(in_channels=32, feat_channels=32)
        cfg.roi_head.mask_head.update(in_channels=32)
    else:
        cfg.rpn_head.update(in_channels=32, feat_channels=32)
        cfg.roi_head.roi_extractor.out_channels = 32
        cfg.roi_head.mask_head.update(in_channels=32, fc_channels=32)
        cfg.roi_head.cls_head.update(in_channels=32, fc_channels=64)
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def _record_conv_output_dtypes(model):
    """Records the dtypes of every Conv2d output."""
    dtypes = []
    for module in model.modules():
        if isinstance(module, torch.nn.Conv2d):
            module.register_forward_hook(
                lambda m, i, out: dtypes.append(out.dtype))
    return dtypes


@pytest.mark.parametrize('method,overrides', [
    ('fcis', {}), ('mnc', {}),
    # the RoI coordinates' gradient through the bf16 warp
    ('mnc', dict(box_grad=True))])
def test_train_step_under_cpu_bf16_autocast(method, overrides,
                                            synthetic_batch):
    model = tiny_model(method, **overrides)
    optim_wrapper = build_optim_wrapper(
        model, dict(type='CPUAmpOptimWrapper',
                    optimizer=dict(type='SGD', lr=0.01, momentum=0.9)))
    imgs, samples = synthetic_batch(num_imgs=2, size=(96, 96))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    dtypes = _record_conv_output_dtypes(model)
    log_vars = model.train_step(dict(inputs=list(imgs),
                                     data_samples=samples), optim_wrapper)
    assert dtypes and set(dtypes) == {torch.bfloat16}
    assert all(torch.isfinite(torch.as_tensor(v)) for v in log_vars.values())
    assert log_vars['loss'] > 0
    moved = [k for k, v in model.state_dict().items()
             if v.is_floating_point() and not torch.equal(v, before[k])]
    assert len(moved) > len(before) // 2
    # parameters and the optimizer state (from the gradients) stay float32
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    state = optim_wrapper.optimizer.state.values()
    assert {s['momentum_buffer'].dtype for s in state} == {torch.float32}


@pytest.mark.parametrize('method', ['fcis', 'mnc'])
def test_roi_outputs_under_autocast_match_float32(method, synthetic_batch):
    """The RoI head's raw outputs for fixed proposals (float32 RoIs, which
    the ops keep float32 under autocast) agree with float32 to bf16
    accuracy; predict runs and gives bool masks."""
    model = tiny_model(method).eval()
    imgs, samples = synthetic_batch(num_imgs=1, size=(96, 96))
    data = model.data_preprocessor(dict(inputs=list(imgs),
                                        data_samples=samples))
    proposals = torch.tensor([[8., 10., 36., 34.], [52., 26., 81., 55.],
                              [20., 20., 70., 60.], [5., 40., 40., 90.]])
    # the same float32 RoIs in both runs (the RPN's would differ)
    model.rpn_head.predict = lambda x, data_samples, rescale=False: [
        InstanceData(bboxes=proposals.clone(), scores=torch.ones(4))
        for _ in data_samples
    ]
    with torch.no_grad():
        ref = model(**data, mode='tensor')[-1]
        with torch.autocast('cpu', dtype=torch.bfloat16):
            low = model(**data, mode='tensor')[-1]
    if method == 'mnc':
        # stages 2-3 only: the RoIs of stages 4-5 depend on an argmax over
        # the near-uniform class scores of the untrained model
        ref, low = ref[0], low[0]
    ref_flat = [t for t in _flatten(ref) if t.is_floating_point()]
    low_flat = [t for t in _flatten(low) if t.is_floating_point()]
    assert len(ref_flat) == len(low_flat) > 0
    for r, lo in zip(ref_flat, low_flat):
        assert lo.shape == r.shape
        scale = r.abs().max().clamp(min=1e-3)
        err = (lo.float() - r).abs().max() / scale
        assert err < 0.05, (method, err)

    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
        [pred] = model.test_step(dict(inputs=list(imgs),
                                      data_samples=samples))
    masks = pred.pred_instances.masks
    assert masks.dtype == torch.bool and masks.shape[-2:] == (96, 96)
    assert torch.isfinite(pred.pred_instances.scores).all()


@pytest.mark.parametrize('method', ['fcis', 'mnc'])
def test_probabilities_of_bf16_logits_are_float32(method, synthetic_batch):
    """bf16 logits (MNC's linear layers under autocast; FCIS's ops on bf16
    maps, which autocast runs in float32, so given bf16 maps here) give
    the float32 softmax / sigmoid as class and mask probabilities, which
    mask voting ranks (bf16 scores tie and inflate the detections)."""
    model = tiny_model(method).eval()
    imgs, samples = synthetic_batch(num_imgs=1, size=(96, 96))
    data = model.data_preprocessor(dict(inputs=list(imgs),
                                        data_samples=samples))
    boxes = torch.tensor([[8., 10., 36., 34.], [52., 26., 81., 55.],
                          [20., 20., 70., 60.]])
    head = model.roi_head
    with torch.no_grad():
        x = model.extract_feat(data['inputs'])
        if method == 'fcis':
            maps = [m.bfloat16() for m in head.mask_head.score_maps(x[-1])]
            rois = torch.cat([torch.zeros(3, 1), boxes], 1)
            probs, masks, _ = head.mask_head.predict_rois(maps, rois)
            outs = head.mask_head.assemble(maps, rois)
            logits, mask_logits = outs['cls_score'], outs['seg_logits']
            expected_mask = mask_logits.float().softmax(dim=1)[:, 1]
        else:
            with torch.autocast('cpu', dtype=torch.bfloat16):
                _, masks, probs = head.predict_passes(
                    x, [InstanceData(bboxes=boxes)], data['data_samples'])
                masks, probs = masks[0], probs[0]  # stages 2-3
                stage = head._predict_stages(x, [boxes],
                                             [samples[0].metainfo])[0]
            logits, mask_logits = stage['seg_cls_score'], stage['mask_logits']
            expected_mask = mask_logits.float().sigmoid()
    assert logits.dtype == mask_logits.dtype == torch.bfloat16
    assert probs.dtype == masks.dtype == torch.float32
    torch.testing.assert_close(probs, logits.float().softmax(dim=1))
    torch.testing.assert_close(masks, expected_mask)


@pytest.mark.parametrize('direct', [False, True])
def test_roi_warp_extractor_keeps_float32_rois_under_autocast(direct):
    """MNC's extractor hands the float32 RoIs to the warp as they are
    (mmdet's ``rois.type_as(feats[0])`` would round 301.3 px to 302 in
    bf16), so under autocast it returns the float32 warp of the bf16 maps."""
    from mnc_mm.models.roi_heads import RoIWarpExtractor
    extractor = RoIWarpExtractor(
        out_channels=4, featmap_strides=[16],
        roi_layer=dict(type='RoIWarpPool', warp_size=14, output_size=7))
    feats = (torch.randn(1, 4, 38, 63).bfloat16(), )
    rois = torch.tensor([[0., 301.3, 200.7, 611.1, 455.9]])
    forward = extractor.forward_direct if direct else extractor
    with torch.autocast('cpu', dtype=torch.bfloat16):
        got = forward(feats, rois)
    want = forward((feats[0].float(), ), rois)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    empty = forward(feats, rois[:0])
    assert empty.shape == (0, 4) + want.shape[2:]


def _flatten(outs):
    if isinstance(outs, torch.Tensor):
        return [outs]
    return [t for o in outs for t in _flatten(o)]


def test_cpu_amp_optim_wrapper_refuses_other_dtypes():
    model = torch.nn.Linear(2, 2)
    with pytest.raises(ValueError, match="dtype must be 'bfloat16', got "
                       "'float16'"):
        build_optim_wrapper(model, dict(type='CPUAmpOptimWrapper',
                                        dtype='float16',
                                        optimizer=dict(type='SGD', lr=0.1)))
