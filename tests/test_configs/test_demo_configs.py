# Copyright (c) OpenMMLab. All rights reserved.
"""The three demo models are like for like: the same narrow ResNet-18
GroupNorm trunk trained from scratch, the same data and the same recipe,
``_base_/schedules/schedule_adamw_20e_demo.py`` (Mask R-CNN and FCIS
identical, MNC with its 16 epochs)."""
import os.path as osp

from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


SCHEDULE = osp.join(REPO, 'configs', '_base_', 'schedules',
                    'schedule_adamw_20e_demo.py')


def demo(name):
    return Config.fromfile(osp.join(REPO, 'configs', 'demo', name))


def trunk(cfg):
    backbone = cfg.model.backbone
    return (backbone.depth, backbone.base_channels, backbone.norm_cfg,
            backbone.frozen_stages, backbone.init_cfg)


def recipe(cfg):
    return (cfg.optim_wrapper.optimizer, cfg.optim_wrapper.clip_grad,
            cfg.train_dataloader.batch_size, cfg.randomness,
            cfg.train_dataloader.dataset.ann_file,
            cfg.val_dataloader.dataset.ann_file)


def test_mask_rcnn_is_the_peer_of_fcis_and_mnc():
    mask_rcnn, fcis, mnc = (demo(f'{m}_r18-tiny_shapes.py')
                            for m in ('mask-rcnn', 'fcis', 'mnc'))
    assert trunk(mask_rcnn) == trunk(fcis) == trunk(mnc) == (
        18, 16, dict(type='GN', num_groups=8, requires_grad=True), -1, None)
    assert recipe(mask_rcnn) == recipe(fcis) == recipe(mnc)
    assert mask_rcnn.train_cfg.max_epochs == fcis.train_cfg.max_epochs
    assert mask_rcnn.param_scheduler == fcis.param_scheduler


def test_demos_override_only_their_own_part_of_the_shared_schedule():
    """Every key of the shared recipe reaches each demo unchanged, except
    MNC's epochs and FCIS's neck learning rate; each trains at the batch
    the recipe's learning rate is for."""
    shared = Config.fromfile(SCHEDULE)
    own_keys = dict(fcis={'optim_wrapper'},
                    mnc={'max_epochs', 'train_cfg', 'param_scheduler'})
    for name in ('mask-rcnn', 'fcis', 'mnc'):
        cfg = demo(f'{name}_r18-tiny_shapes.py')
        overridden = {key for key in shared if cfg[key] != shared[key]}
        assert overridden == own_keys.get(name, set()), name
        assert (cfg.train_dataloader.batch_size ==
                shared.auto_scale_lr.base_batch_size == 4), name

    fcis = demo('fcis_r18-tiny_shapes.py').optim_wrapper
    assert fcis.paramwise_cfg.pop('custom_keys') == dict(
        neck=dict(lr_mult=3.0))
    assert fcis == shared.optim_wrapper
    mnc = demo('mnc_r18-tiny_shapes.py')
    assert mnc.train_cfg == dict(shared.train_cfg, max_epochs=16,
                                 val_interval=16)
    warmup, steps = mnc.param_scheduler
    assert warmup == shared.param_scheduler[0]
    assert steps == dict(shared.param_scheduler[1], end=16,
                         milestones=[12, 15])
