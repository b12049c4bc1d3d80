# Copyright (c) OpenMMLab. All rights reserved.
"""The three demo models are like for like: the same narrow ResNet-18
GroupNorm trunk trained from scratch, the same data and the same recipe
(Mask R-CNN and FCIS identical, MNC with its 16 epochs)."""
import os.path as osp

from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


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
