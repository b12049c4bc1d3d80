# Copyright (c) OpenMMLab. All rights reserved.
"""Training on images without ground truth (issue #27): FCIS (OHEM on and
off) and MNC train a step on a batch with no gt at all and on a batch
mixing an empty and an annotated image; the FCIS demo config with
``filter_empty_gt=False`` trains with the Runner on a set of empty
images."""
import json
import os.path as osp

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
FCIS_TINY = osp.join(REPO, 'configs', 'demo', 'fcis_r18-tiny_shapes.py')
MNC_TINY = osp.join(REPO, 'configs', 'demo', 'mnc_r18-tiny_shapes.py')
NO_OHEM_SAMPLER = dict(type='RandomSampler', num=32, pos_fraction=0.25,
                       neg_pos_ub=-1, add_gt_as_proposals=False)


@pytest.fixture(autouse=True)
def _scope():
    init_default_scope('mmdet')


def _fcis(ohem):
    cfg = Config.fromfile(FCIS_TINY).model
    cfg.backbone.base_channels = 8
    cfg.neck.update(in_channels=[64], out_channels=32)
    cfg.rpn_head.update(in_channels=32, feat_channels=32)
    cfg.roi_head.mask_head.update(in_channels=32, num_classes=2)
    if not ohem:
        cfg.train_cfg.rcnn.update(sampler=NO_OHEM_SAMPLER, ohem=None)
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def _mnc():
    cfg = Config.fromfile(MNC_TINY).model
    cfg.backbone.base_channels = 8
    cfg.rpn_head.update(in_channels=32, feat_channels=32)
    cfg.roi_head.roi_extractor.out_channels = 32
    cfg.roi_head.mask_head.update(in_channels=32, fc_channels=32)
    cfg.roi_head.cls_head.update(in_channels=32, fc_channels=64)
    cfg.roi_head.cls_head.num_classes = 2
    cfg.box_grad = False  # the regressor's gradient comes from fg RoIs only
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def _batch(synthetic_batch, annotated):
    """Two 64 x 96 images; image i has its two gts iff ``annotated[i]``."""
    imgs, samples = synthetic_batch(num_imgs=2)
    _, empty = synthetic_batch(num_imgs=2, with_gt=False)
    return imgs, [s if keep else e
                  for s, e, keep in zip(samples, empty, annotated)]


def _train_step(model, imgs, samples, box_layer):
    """One backward pass; returns the losses and the gradient of
    ``box_layer``'s output."""
    out_grads = []

    def hook(module, args, out):
        out.register_hook(out_grads.append)

    box_layer.register_forward_hook(hook)
    losses = model.loss(imgs, samples)
    total, _ = model.parse_losses(losses)
    total.backward()
    assert torch.isfinite(total)
    for name, param in model.named_parameters():
        if param.grad is not None:
            assert torch.isfinite(param.grad).all(), name
    return losses, out_grads


@pytest.mark.parametrize('ohem', [True, False])
def test_fcis_trains_on_a_batch_without_gt(ohem, synthetic_batch):
    model = _fcis(ohem)
    head = model.roi_head.mask_head
    losses, grads = _train_step(model, *_batch(synthetic_batch, (0, 0)),
                                head.conv_bbox)
    assert losses['loss_bbox'] == 0 and losses['loss_mask'] == 0
    assert losses['loss_cls'] > 0
    # nothing is foreground: the box maps get no gradient at all
    assert len(grads) == 1 and grads[0].abs().max() == 0
    assert head.conv_bbox.weight.grad.abs().max() == 0
    assert head.conv_cls_seg.weight.grad.abs().sum() > 0


@pytest.mark.parametrize('ohem', [True, False])
def test_fcis_trains_on_a_batch_mixing_empty_and_annotated(
        ohem, synthetic_batch):
    model = _fcis(ohem)
    losses, grads = _train_step(model, *_batch(synthetic_batch, (0, 1)),
                                model.roi_head.mask_head.conv_bbox)
    assert losses['loss_bbox'] > 0 and losses['loss_mask'] > 0
    # (B, k*k*4*slots, H, W) box maps: the empty image's get no gradient
    box_map_grad = grads[0]
    assert box_map_grad[0].abs().max() == 0
    assert box_map_grad[1].abs().max() > 0


def test_mnc_trains_on_a_batch_without_gt(synthetic_batch):
    model = _mnc()
    losses, grads = _train_step(model, *_batch(synthetic_batch, (0, 0)),
                                model.roi_head.bbox_head.fc_reg)
    for key in ('s0.loss_bbox', 's1.loss_bbox', 's0.loss_mask'):
        assert losses[key] == 0, key
    assert losses['s0.loss_cls'] > 0
    assert all(g.abs().max() == 0 for g in grads)
    assert model.roi_head.bbox_head.fc_reg.weight.grad.abs().max() == 0


def test_mnc_trains_on_a_batch_mixing_empty_and_annotated(synthetic_batch):
    model = _mnc()
    rois = []
    model.roi_head.roi_extractor.register_forward_pre_hook(
        lambda mod, args: rois.append(args[1]))
    losses, grads = _train_step(model, *_batch(synthetic_batch, (1, 0)),
                                model.roi_head.bbox_head.fc_reg)
    assert losses['s0.loss_bbox'] > 0 and losses['s0.loss_mask'] > 0
    # stage 2/3: the rows of the RoIs of the empty image 1 get no gradient
    stage3 = grads[-1]  # hooks run backwards: stage 3's output comes last
    empty = rois[0][:, 0] == 1
    assert empty.any() and stage3[empty].abs().max() == 0
    assert stage3[~empty].abs().max() > 0


def test_demo_config_trains_on_empty_images(shapes_root, tmp_path):
    """The FCIS demo config, ``filter_empty_gt=False``, on a copy of the
    shapes set where one training image keeps its annotations (the data
    set refuses a file without any) and the others have none."""
    root = tmp_path / 'empty'
    root.mkdir()
    (root / 'annotations').mkdir()
    (root / 'train').symlink_to(osp.join(shapes_root, 'train'))
    with open(osp.join(shapes_root, 'annotations',
                       'instances_train.json')) as f:
        coco = json.load(f)
    kept = coco['annotations'][0]['image_id']
    coco['annotations'] = [
        a for a in coco['annotations'] if a['image_id'] == kept
    ]
    with open(root / 'annotations' / 'instances_train.json', 'w') as f:
        json.dump(coco, f)
    cfg = Config.fromfile(FCIS_TINY)
    cfg.work_dir = str(tmp_path / 'work')
    loader = cfg.train_dataloader
    loader.update(batch_size=2, num_workers=0, persistent_workers=False)
    loader.dataset.update(data_root=str(root) + '/',
                          filter_cfg=dict(filter_empty_gt=False, min_size=8))
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=4,
                         val_interval=10**6)
    for key in ('val_dataloader', 'test_dataloader', 'val_cfg', 'test_cfg',
                'val_evaluator', 'test_evaluator'):
        cfg.pop(key)
    cfg.param_scheduler = []
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=10,
                                        by_epoch=False)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    cfg.log_processor = dict(by_epoch=False)
    cfg.randomness = dict(seed=0)
    runner = Runner.from_cfg(cfg)
    assert len(runner.train_dataloader.dataset) == len(coco['images'])
    losses = []

    class RecordLosses(Hook):

        def after_train_iter(self, runner, batch_idx, data_batch=None,
                             outputs=None):
            losses.append({k: float(v) for k, v in outputs.items()})

    runner.register_hook(RecordLosses())
    runner.train()
    assert len(losses) == 4
    for step in losses:
        assert all(torch.isfinite(torch.tensor(v)) for v in step.values())
    # 3 of the 4 batches of 2 have no annotated image
    assert sum(step['loss_bbox'] == 0 and step['loss_mask'] == 0
               for step in losses) == 3
