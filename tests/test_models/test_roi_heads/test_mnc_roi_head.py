# Copyright (c) OpenMMLab. All rights reserved.
"""MNCRoIHead's training targets on a case computed by hand."""
import os.path as osp

import numpy as np
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(
    __file__)))))
TINY = osp.join(REPO, 'configs', 'demo', 'mnc_r18-tiny_shapes.py')


def test_targets_of_a_gt_box_and_a_far_away_proposal(monkeypatch):
    """One 32 x 32 square gt (class index 2) filling its box; proposals:
    the gt box itself (in the head's inclusive ends) and a disjoint box.
    Stage 2/3 RoIs: the gt (added as a candidate) and the first proposal
    are fg, the second is the only background (IoU 0, the [0, 0.1) range).
    Fresh heads predict masks of ~0.5 everywhere (>= 0.4), i.e. the whole
    box: mask IoU 1, so the mask-level labels equal the box-level ones."""
    init_default_scope('mmdet')
    cfg = Config.fromfile(TINY).model
    head_cfg = cfg.roi_head
    head_cfg.update(train_cfg=cfg.train_cfg.rcnn, test_cfg=cfg.test_cfg.rcnn)
    torch.manual_seed(0)
    head = MODELS.build(head_cfg)
    head.init_weights()

    masks = np.zeros((1, 96, 96), np.uint8)
    masks[0, 16:48, 16:48] = 1
    gt_box = torch.tensor([[16., 16., 48., 48.]])  # mmdet's exclusive ends
    sample = DetDataSample(metainfo=dict(img_shape=(96, 96)))
    sample.gt_instances = InstanceData(
        bboxes=gt_box, labels=torch.tensor([2]),
        masks=BitmapMasks(masks, 96, 96))
    proposals = InstanceData(
        bboxes=torch.tensor([[16., 16., 47., 47.], [60., 60., 90., 90.]]))

    seen = dict(mask=[], cls=[])
    mask_loss, cls_loss = head.mask_head.loss, head.bbox_head.loss

    def spy_mask(logits, targets):
        seen['mask'].append(targets)
        return mask_loss(logits, targets)

    def spy_cls(cls, seg, reg, labels, seg_labels, bbox_targets):
        seen['cls'].append((labels, seg_labels, bbox_targets))
        return cls_loss(cls, seg, reg, labels, seg_labels, bbox_targets)

    monkeypatch.setattr(head.mask_head, 'loss', spy_mask)
    monkeypatch.setattr(head.bbox_head, 'loss', spy_cls)
    x = (torch.randn(1, 64, 6, 6), )
    losses = head.loss(x, [proposals], [sample])
    assert set(losses) == {
        f's{i}.{k}' for i in (0, 1)
        for k in ('loss_mask', 'loss_cls', 'loss_seg_cls', 'loss_bbox')
    }

    # stages 2/3: [gt, proposal 0] fg, proposal 1 bg
    labels, seg_labels, bbox_targets = seen['cls'][0]
    assert labels.tolist() == [3, 3, 0]
    assert seg_labels.tolist() == [3, 3, 0]
    assert torch.equal(bbox_targets, torch.zeros(2, 4))
    # the square fills both RoIs: every target pixel is 1
    assert torch.equal(seen['mask'][0], torch.ones(2, 21, 21))

    # stages 4/5: the 3 bridged RoIs (barely moved by the fresh regressor)
    # plus the gt, none sampled away
    labels, seg_labels, bbox_targets = seen['cls'][1]
    assert labels.tolist() == [3, 3, 3, 0]
    assert seg_labels.tolist() == [3, 3, 3, 0]
    assert bbox_targets.abs().max() < 0.05
    assert seen['mask'][1].shape == (3, 21, 21)
