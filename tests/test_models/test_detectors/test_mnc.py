# Copyright (c) OpenMMLab. All rights reserved.
"""The MNC detector: configs, the three forward modes, empty cases, the
box-gradient path, weight sharing of stages 4/5, and over-fitting."""
import glob
import os.path as osp

import numpy as np
import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmengine.structures import InstanceData

from mnc_mm.ops import RoIWarpPool

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(
    __file__)))))
TINY = osp.join(REPO, 'configs', 'demo', 'mnc_r18-tiny_shapes.py')
LOSSES = ('loss_mask', 'loss_cls', 'loss_seg_cls', 'loss_bbox')
STAGE23 = tuple(f's0.{k}' for k in LOSSES)
STAGE45 = tuple(f's1.{k}' for k in LOSSES)


@pytest.fixture(autouse=True)
def _scope_and_one_thread():
    """mmdet's scope; one intra-op thread while a test runs (the CPU is
    shared: two threads fight other jobs and run ~10x slower here)."""
    init_default_scope('mmdet')
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_model(train_stages=5, test_stages=5, box_grad=True,
               box_grad_clip=1 / 512, seed=0):
    """The tiny shapes config, narrower still (32-channel trunk)."""
    cfg = Config.fromfile(TINY).model
    cfg.backbone.base_channels = 8
    cfg.rpn_head.update(in_channels=32, feat_channels=32)
    cfg.roi_head.roi_extractor.out_channels = 32
    cfg.roi_head.mask_head.update(in_channels=32, fc_channels=32)
    cfg.roi_head.cls_head.update(in_channels=32, fc_channels=64)
    cfg.train_cfg.rpn_proposal.update(nms_pre=500, max_per_img=100)
    cfg.train_cfg.rcnn.num_stages = train_stages
    cfg.test_cfg.rpn.update(nms_pre=500, max_per_img=50)
    cfg.test_cfg.rcnn.num_stages = test_stages
    cfg.update(box_grad=box_grad, box_grad_clip=box_grad_clip)
    torch.manual_seed(seed)
    model = MODELS.build(cfg)
    model.init_weights()
    return model


@pytest.fixture
def make_batch(synthetic_batch):
    """Factory ``(num_gts, scale=1.) -> (imgs, data_samples)``: 96 x 96
    images, image i keeps the first ``num_gts[i]`` of (square, disc);
    ``scale`` = network input / original size."""

    def make(num_gts, scale=1.0):
        imgs, samples = synthetic_batch(len(num_gts), size=(96, 96))
        for sample, num in zip(samples, num_gts):
            sample.gt_instances = sample.gt_instances[:num]
            sample.set_metainfo(dict(
                ori_shape=(round(96 / scale), ) * 2,
                scale_factor=(scale, scale)))
        return imgs, samples

    return make


def run(model, data, mode):
    return model(*data, mode=mode)


# ----------------------------------------------------------------------
# configs
# ----------------------------------------------------------------------
# (trunk channels at the warp, RoI feature side after the shared head,
#  channels there, classes, pathway fc width or None, training stages)
HEADS = {
    'mnc/mnc_vgg16_5stage_8xb1-40k_sbd': (512, 14, 512, 20, 4096, 5),
    'mnc/mnc_vgg16_3stage_8xb1-40k_sbd': (512, 14, 512, 20, 4096, 3),
    'mnc/mnc_vgg16_official-sbd': (512, 14, 512, 20, 4096, 5),
    'mnc/mnc_r50-caffe-c4_5stage_8xb1-1x_coco': (1024, 7, 2048, 80, None, 5),
    'mnc/mnc_r101-caffe-c4_5stage_8xb1-1x_coco': (1024, 7, 2048, 80, None,
                                                  5),
    'demo/mnc_r18-tiny_shapes': (64, 14, 64, 3, 128, 5),
}


def test_every_config_is_checked():
    paths = glob.glob(osp.join(REPO, 'configs', 'mnc', '*.py')) + glob.glob(
        osp.join(REPO, 'configs', 'demo', 'mnc_*.py'))
    names = {osp.splitext(osp.relpath(p, osp.join(REPO, 'configs')))[0]
             for p in paths}
    assert names == set(HEADS)


@pytest.mark.parametrize('name', sorted(HEADS))
def test_config_builds_with_the_head_sizes(name):
    trunk, side, chans, classes, fcs, stages = HEADS[name]
    cfg = Config.fromfile(osp.join(REPO, 'configs', name + '.py'))
    cfg.model.backbone.init_cfg = None
    with torch.device('meta'):  # full-size heads without the memory
        model = MODELS.build(cfg.model)
    rpn, roi = model.rpn_head, model.roi_head
    assert rpn.rpn_conv.in_channels == trunk
    assert (rpn.rpn_cls.out_channels, rpn.rpn_reg.out_channels) == (18, 36)
    layer = roi.roi_extractor.roi_layers[0]
    assert isinstance(layer, RoIWarpPool)
    assert (layer.warp_size, layer.output_size) == ((28, 28), (14, 14))
    assert layer.spatial_scale == 1 / 16 and layer.quantize
    mask, cls = roi.mask_head, roi.bbox_head
    assert mask.fc_mask.in_features == chans * side * side
    assert mask.fc_mask.out_features == 256 or name.startswith('demo')
    assert mask.mask_pred.out_features == 21 * 21
    joint = 2 * (fcs or chans)
    assert (cls.fc_cls.in_features, cls.fc_cls.out_features) == (
        joint, classes + 1)
    assert cls.fc_seg_cls.out_features == classes + 1
    assert cls.fc_reg.out_features == 4 * (classes + 1)
    if fcs:  # two fc per pathway on the 2x2-max-pooled features
        for fcs_ in (cls.mask_fcs, cls.box_fcs):
            assert fcs_[0].in_features == chans * (side // 2)**2
            assert fcs_[2].out_features == fcs
    else:  # res5 per RoI, then average-pooled pathways
        assert roi.shared_head is not None and len(cls.mask_fcs) == 0
    assert roi.train_cfg.num_stages == stages
    assert roi.test_cfg.num_stages == 5
    # the demo trains with AdamW and box gradients off (see its config)
    assert model.box_grad == (not name.startswith('demo'))
    assert model.box_grad_clip == 1 / 512
    # set on the heads' configs at build time, as mmdet hands them over
    for cfg in (roi.train_cfg, model.train_cfg.rpn_proposal):
        assert (cfg.box_grad, cfg.box_grad_clip) == (model.box_grad, 1 / 512)


# ----------------------------------------------------------------------
# forward modes
# ----------------------------------------------------------------------
@pytest.mark.parametrize('stages', [3, 5])
def test_loss_predict_and_tensor_modes(stages, make_batch):
    model = tiny_model(train_stages=stages, test_stages=stages)
    losses = run(model, make_batch((2, 1)), 'loss')
    expected = {'loss_rpn_cls', 'loss_rpn_bbox', *STAGE23}
    if stages == 5:
        expected |= set(STAGE45)
    assert set(losses) == expected
    total, _ = model.parse_losses(losses)
    assert torch.isfinite(total) and losses['s0.loss_mask'] > 0

    model.eval()
    with torch.no_grad():
        # the original images are twice the network input
        preds = run(model, make_batch((2, 1), scale=0.5), 'predict')
        outs = run(model, make_batch((2, 1)), 'tensor')
    assert len(preds) == 2
    for pred in preds:
        inst = pred.pred_instances
        k = len(inst)
        assert 0 < k <= 20
        assert inst.masks.shape == (k, 192, 192)
        assert inst.masks.dtype == torch.bool
        assert inst.bboxes.shape == (k, 4) and inst.bboxes.max() <= 192
        assert ((inst.scores >= 0) & (inst.scores <= 1)).all()
        assert set(inst.labels.tolist()) <= {0, 1, 2}
    assert len(outs[0]) == stages // 2  # stage pairs (2, 3) [and (4, 5)]
    num_rois = outs[0][0][0].shape[0]
    for mask_logits, cls_score, seg_cls_score, bbox_pred in outs[0]:
        assert mask_logits.shape == (num_rois, 21, 21)
        assert cls_score.shape == seg_cls_score.shape == (num_rois, 4)
        assert bbox_pred.shape == (num_rois, 16)


def test_no_proposals_give_zero_detections(make_batch):
    model = tiny_model()
    model.rpn_head.test_cfg.min_bbox_size = 10**4
    model.eval()
    with torch.no_grad():
        preds = run(model, make_batch((2, 2)), 'predict')
    for pred in preds:
        inst = pred.pred_instances
        assert len(inst) == 0
        assert inst.masks.shape == (0, 96, 96)
        assert inst.bboxes.shape == (0, 4)


def test_an_image_without_gt_trains_without_nan(make_batch):
    model = tiny_model()
    losses = run(model, make_batch((0, )), 'loss')
    total, _ = model.parse_losses(losses)
    total.backward()
    for key in ('s0.loss_mask', 's0.loss_bbox', 's1.loss_mask',
                's1.loss_bbox'):
        assert losses[key] == 0
    assert losses['s0.loss_cls'] > 0 and losses['s0.loss_seg_cls'] > 0
    for name, param in model.named_parameters():
        if param.grad is not None:
            assert torch.isfinite(param.grad).all(), name


# ----------------------------------------------------------------------
# the box-gradient path
# ----------------------------------------------------------------------
def _output_grads(module, store):
    """Append the gradient of each output of ``module`` to ``store``."""

    def hook(mod, args, out):
        out.register_hook(store.append)

    module.register_forward_hook(hook)


def _backward(model, data, keys, scale=1.0):
    losses = run(model, data, 'loss')
    (scale * sum(losses[k] for k in keys)).backward()


@pytest.mark.parametrize('box_grad', [True, False])
def test_stage_2_3_losses_train_the_rpn_regressor(box_grad, make_batch):
    model = tiny_model(train_stages=3, box_grad=box_grad)
    _backward(model, make_batch((2, 1)), STAGE23)
    grad = model.rpn_head.rpn_reg.weight.grad
    if box_grad:
        assert grad is not None and grad.abs().sum() > 0
    else:
        assert grad is None or grad.abs().sum() == 0
    # the RPN classifier only learns from the RPN loss
    cls_grad = model.rpn_head.rpn_cls.weight.grad
    assert cls_grad is None or cls_grad.abs().sum() == 0


@pytest.mark.parametrize('box_grad', [True, False])
def test_stage_4_5_losses_train_the_stage_3_regressor(box_grad, make_batch):
    model = tiny_model(box_grad=box_grad)
    grads = []
    _output_grads(model.roi_head.bbox_head.fc_reg, grads)
    _backward(model, make_batch((2, 1)), STAGE45)
    # one gradient comes back for stage 5's output; stage 3's only
    # through the bridge
    assert len(grads) == (2 if box_grad else 1)
    if box_grad:
        assert grads[-1].abs().sum() > 0  # the stage-3 call ran first


@pytest.mark.parametrize('clip', [1 / 512, None])
def test_box_gradients_are_clamped(clip, make_batch):
    model = tiny_model(box_grad_clip=clip)
    rpn_grads, reg_grads = [], []
    _output_grads(model.rpn_head.rpn_reg, rpn_grads)
    _output_grads(model.roi_head.bbox_head.fc_reg, reg_grads)
    # only the stage-4/5 losses, which reach stage 3's regressor through
    # the bridge alone and the RPN's through the bridged RoIs; blown up so
    # that the clamp bites
    _backward(model, make_batch((2, 1)), STAGE45, scale=1e4)
    rpn, stage3 = rpn_grads[0].abs().max(), reg_grads[-1].abs().max()
    if clip is None:
        assert rpn > 1 / 512 and stage3 > 1 / 512
    else:  # saturated, never beyond
        assert rpn == pytest.approx(clip) and stage3 == pytest.approx(clip)


# ----------------------------------------------------------------------
# stages 4/5
# ----------------------------------------------------------------------
def test_stages_4_5_reuse_the_stage_2_3_modules(make_batch):
    three, five = tiny_model(train_stages=3), tiny_model(train_stages=5)
    assert {k: v.shape for k, v in three.state_dict().items()} == {
        k: v.shape for k, v in five.state_dict().items()}
    rois, calls = [], []
    five.roi_head.roi_extractor.register_forward_pre_hook(
        lambda mod, args: rois.append(args[1]))
    five.roi_head.mask_head.register_forward_pre_hook(
        lambda mod, args: calls.append(1))
    run(five, make_batch((2, 1)), 'loss')
    assert len(rois) == len(calls) == 2
    # stage 4/5 RoIs: every stage-2/3 RoI, bridged, plus the gts
    # (daijifeng001/MNC lib/pylayer/stage_bridge_layer.py)
    for img, num_gts in enumerate((2, 1)):
        first = int((rois[0][:, 0] == img).sum())
        assert int((rois[1][:, 0] == img).sum()) == first + num_gts


# ----------------------------------------------------------------------
# learning
# ----------------------------------------------------------------------
def _mask_iou(a, b):
    return float((a & b).sum()) / float((a | b).sum())


def test_overfits_one_image(make_batch):
    """~100 SGD steps on one image: the total loss halves and, for each
    gt, the best-scored detection of its class covers it (mask IoU)."""
    model = tiny_model(seed=0)
    packed = make_batch((2, ))
    optim = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    history = []
    for _ in range(100):
        loss, _ = model.parse_losses(run(model, packed, 'loss'))
        optim.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 35)
        optim.step()
        history.append(float(loss.detach()))
    assert np.mean(history[-5:]) < 0.5 * history[0]

    model.eval()
    with torch.no_grad():
        inst = run(model, packed, 'predict')[0].pred_instances
    gt = packed[1][0].gt_instances
    gt_masks = gt.masks.to_tensor(torch.bool, 'cpu')
    for label, gt_mask in zip(gt.labels, gt_masks):
        same = (inst.labels == label).nonzero().flatten()
        assert same.numel() > 0
        best = same[inst.scores[same].argmax()]
        assert _mask_iou(inst.masks[best], gt_mask) > 0.5


def test_demo_config_trains_and_tests_with_the_runner(shapes_root,
                                                      tiny_config, tmp_path):
    """The real data pipeline, two training iterations, then evaluation;
    then the same test loop with the RoI head answering the gt instances,
    which both metrics must score 1."""
    cfg = tiny_config(shapes_root, str(tmp_path), max_iters=2, config=TINY)
    runner = Runner.from_cfg(cfg)
    runner.train()
    metrics = runner.test()
    keys = ('coco/segm_mAP', 'coco/bbox_mAP', 'voc_mask/mAP_r@0.5')
    assert all(np.isfinite(metrics[k]) for k in keys)

    def gt_as_predictions(x, rpn_results_list, batch_data_samples,
                          rescale=True):
        assert rescale  # the gts are at the original size
        return [
            InstanceData(
                bboxes=gt.bboxes, labels=gt.labels,
                scores=torch.ones(len(gt)),
                masks=gt.masks.to_tensor(torch.bool, 'cpu'))
            for gt in (s.gt_instances for s in batch_data_samples)
        ]

    runner.model.roi_head.predict = gt_as_predictions
    metrics = runner.test()
    for key in keys:
        assert metrics[key] == pytest.approx(1.0, abs=1e-9), key
