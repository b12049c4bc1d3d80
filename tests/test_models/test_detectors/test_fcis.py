# Copyright (c) OpenMMLab. All rights reserved.
"""FCIS: configs, the three modes, targets/losses, and over-fitting."""
import glob
import os.path as osp

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
TINY = osp.join(REPO, 'configs', 'demo', 'fcis_r18-tiny_shapes.py')


def _no_pretrained(cfg):
    cfg.model.backbone.init_cfg = None
    return cfg


@pytest.mark.parametrize('path', sorted(
    glob.glob(osp.join(REPO, 'configs', 'fcis', '*.py'))))
def test_every_config_builds_with_the_spec_channels(path):
    cfg = _no_pretrained(Config.fromfile(path))
    model = MODELS.build(cfg.model)
    head = model.roi_head.mask_head
    num_cls = head.num_classes + 1  # with background
    assert num_cls in (81, 21)
    # msracver/FCIS fcis/symbols/resnet_v1_101_fcis.py: 7 * 7 * 2C
    # inside/outside maps, 7 * 7 * 8 box maps
    assert head.conv_cls_seg.out_channels == 49 * 2 * num_cls
    assert head.conv_cls_seg.out_channels == {81: 7938, 21: 2058}[num_cls]
    assert head.conv_bbox.out_channels == 392
    assert head.conv_cls_seg.in_channels == 1024
    assert model.neck.convs[0].conv.in_channels == 2048
    assert (model.rpn_head.num_base_priors, num_cls) in ((12, 81), (9, 21))
    assert model.backbone.maxpool.ceil_mode
    assert model.backbone.maxpool.padding == 0


def _tiny_model(**head_test_cfg):
    cfg = Config.fromfile(TINY)
    cfg.model.backbone.base_channels = 8
    cfg.model.neck.in_channels = [64]
    cfg.model.neck.out_channels = 32
    cfg.model.rpn_head.in_channels = 32
    cfg.model.rpn_head.feat_channels = 32
    cfg.model.roi_head.mask_head.update(in_channels=32, num_classes=2)
    cfg.model.test_cfg.rcnn.update(head_test_cfg)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def test_loss_predict_tensor_modes(synthetic_batch):
    model = _tiny_model()
    imgs, samples = synthetic_batch(num_imgs=2)
    losses = model(imgs, samples, mode='loss')
    assert set(losses) == {'loss_rpn_cls', 'loss_rpn_bbox', 'loss_cls',
                           'loss_mask', 'loss_bbox'}
    total, _ = model.parse_losses(losses)
    assert torch.isfinite(total)
    total.backward()
    assert model.roi_head.mask_head.conv_cls_seg.weight.grad.abs().sum() > 0

    model.eval()
    with torch.no_grad():
        results = model(imgs, samples, mode='predict')
        (cls_score, masks, deltas), = model(imgs, samples, mode='tensor')
    pred = results[0].pred_instances
    num = len(pred)
    assert 0 < num <= 20
    assert pred.bboxes.shape == (num, 4)
    assert pred.masks.shape == (num, 64, 96) and pred.masks.dtype == \
        torch.bool
    assert pred.labels.min() >= 0 and pred.labels.max() < 2
    assert ((pred.scores >= 0) & (pred.scores <= 1)).all()
    num_rois = cls_score.size(0)
    assert cls_score.shape == (num_rois, 3)
    assert masks.shape == (num_rois, 21, 21)
    assert ((masks >= 0) & (masks <= 1)).all()
    assert deltas.shape == (num_rois, 4)


def test_predict_without_detections(synthetic_batch):
    # every RoI is smaller than min_bbox_size: nothing reaches voting
    model = _tiny_model(min_bbox_size=10**4).eval()
    imgs, samples = synthetic_batch()
    with torch.no_grad():
        pred = model.predict(imgs, samples)[0].pred_instances
    assert len(pred) == 0
    assert pred.bboxes.shape == (0, 4) and pred.masks.shape == (0, 64, 96)


def test_no_gt_and_degenerate_gt_train_without_nan(synthetic_batch):
    model = _tiny_model()
    imgs, samples = synthetic_batch(num_imgs=2)
    _, empty = synthetic_batch(with_gt=False)
    # a zero-width and an inverted gt box
    samples[1].gt_instances.bboxes[0] = torch.tensor([20., 10., 20., 30.])
    samples[1].gt_instances.bboxes[1] = torch.tensor([50., 40., 45., 30.])
    samples[0] = empty[0]
    losses = model.loss(imgs, samples)
    total, _ = model.parse_losses(losses)
    assert torch.isfinite(total)
    total.backward()
    for p in model.parameters():
        if p.grad is not None:
            assert torch.isfinite(p.grad).all()


def test_overfits_one_image(synthetic_batch):
    model = _tiny_model()
    imgs, samples = synthetic_batch()
    optim = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    first = None
    for _ in range(100):
        total, _ = model.parse_losses(model.loss(imgs, samples))
        optim.zero_grad()
        total.backward()
        optim.step()
        first = first if first is not None else total.item()
    assert total.item() < 0.5 * first
    model.eval()
    with torch.no_grad():
        pred = model.predict(imgs, samples)[0].pred_instances
    gt_masks = torch.from_numpy(samples[0].gt_instances.masks.masks).bool()
    for label, gt in zip(samples[0].gt_instances.labels, gt_masks):
        mine = pred.masks[pred.labels == label]
        assert len(mine), f'no detection of class {label}'
        iou = ((mine & gt).sum((1, 2)).float() /
               (mine | gt).sum((1, 2)).float()).max()
        assert iou > 0.5, f'class {label}: best mask IoU {iou:.2f}'
