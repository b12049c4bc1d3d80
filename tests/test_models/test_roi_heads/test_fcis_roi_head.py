# Copyright (c) OpenMMLab. All rights reserved.
"""FCISRoIHead: an mmdet RoI head around FCISHead; its RoIs (proposals +
gt), OHEM and the constant loss normalisation."""
import numpy as np
import pytest
import torch
from mmdet.models.roi_heads import BaseRoIHead
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData

from mnc_mm.models.roi_heads import FCISRoIHead

ASSIGNER = dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=(0., .5),
                min_pos_iou=0.5, match_low_quality=False,
                iou_calculator=dict(type='BboxOverlaps2DPlusOne'))


def _roi_head(ohem=None, sampler=dict(type='PseudoSampler')):
    torch.manual_seed(0)
    head = FCISRoIHead(
        mask_head=dict(type='FCISHead', num_classes=2, in_channels=8,
                       group_size=3, pooled_size=9, spatial_scale=1. / 8),
        train_cfg=ConfigDict(assigner=ASSIGNER, sampler=sampler, ohem=ohem,
                             mask_thr_binary=0.4))
    head.init_weights()
    return head


def _inputs(num_imgs=2):
    """Features (B, 8, 8, 10) of 64 x 80 images, 6 proposals and 1-2 gts
    per image (mmdet boxes, exclusive ends)."""
    torch.manual_seed(1)
    x = (torch.randn(num_imgs, 8, 8, 10), )
    samples, proposals = [], []
    for i in range(num_imgs):
        boxes = torch.tensor([[8., 8., 40., 40.], [30., 10., 70., 50.]])
        boxes = boxes[:i + 1]
        masks = np.zeros((len(boxes), 64, 80), np.uint8)
        for k, (x1, y1, x2, y2) in enumerate(boxes.long().tolist()):
            masks[k, y1:y2, x1:x2] = 1
        sample = DetDataSample(metainfo=dict(img_shape=(64, 80)))
        sample.gt_instances = InstanceData(
            bboxes=boxes, labels=torch.arange(len(boxes)),
            masks=BitmapMasks(masks, 64, 80))
        samples.append(sample)
        proposals.append(InstanceData(bboxes=torch.tensor(
            [[9., 9., 38., 41.], [0., 0., 20., 20.], [32., 12., 66., 48.],
             [50., 40., 79., 63.], [5., 30., 25., 60.], [10., 6., 40., 37.]
             ])))
    return x, proposals, samples


def _record(head, method):
    """Record what ``head.mask_head.<method>`` returns (and its args)."""
    calls = []
    original = getattr(head.mask_head, method)

    def wrapper(*args, **kwargs):
        out = original(*args, **kwargs)
        calls.append((args, out))
        return out

    setattr(head.mask_head, method, wrapper)
    return calls


def test_is_an_mmdet_roi_head_whose_mask_head_also_does_boxes():
    head = _roi_head(ohem=dict(num=4))
    assert isinstance(head, BaseRoIHead)
    assert head.with_mask and head.with_bbox
    with pytest.raises(ValueError, match="ohem=None and sampler="):
        _roi_head()


def test_rois_are_the_proposals_and_the_inclusive_gt_boxes():
    head = _roi_head(ohem=dict(num=100))
    calls = _record(head, 'assemble')
    x, proposals, samples = _inputs()
    head.loss(x, proposals, samples)
    (_, rois, labels), _ = calls[0]
    assert rois.shape == (2 * 6 + 3, 5)
    for i, sample in enumerate(samples):
        mine = rois[rois[:, 0] == i][:, 1:]
        gt = sample.gt_instances
        for box, label in zip(gt.bboxes, gt.labels):
            inclusive = torch.cat([box[:2], box[2:] - 1])
            hit = (mine == inclusive).all(1)
            assert hit.any()
            assert labels[rois[:, 0] == i][hit].tolist() == [label + 1]


def test_ohem_of_every_roi_equals_no_ohem():
    """Keeping every RoI (OHEM num >= R) is training without OHEM on the
    same RoIs with the same normalisation."""
    x, proposals, samples = _inputs()
    with_ohem = _roi_head(ohem=dict(num=64)).loss(x, proposals, samples)
    sampler = dict(type='RandomSampler', num=64, pos_fraction=1.,
                   neg_pos_ub=-1, add_gt_as_proposals=False)
    without = _roi_head(sampler=sampler).loss(x, proposals, samples)
    for key in ('loss_cls', 'loss_mask', 'loss_bbox'):
        torch.testing.assert_close(with_ohem[key], without[key])
    assert with_ohem['loss_mask'] > 0 and with_ohem['loss_bbox'] > 0


def test_ohem_keeps_the_hardest_and_normalises_by_a_constant():
    head = _roi_head(ohem=dict(num=3))
    calls = _record(head, 'per_roi_losses')
    assembled = _record(head, 'assemble')
    x, proposals, samples = _inputs()
    losses = head.loss(x, proposals, samples)
    (_, per_roi), = calls
    (_, rois, _), _ = assembled[0]
    rank = per_roi['cls'] + per_roi['mask'] + per_roi['bbox']
    cls, mask, bbox = [], [], []
    for i in range(2):
        idx = (rois[:, 0] == i).nonzero()[:, 0]
        order = idx[rank[idx].argsort(descending=True)[:3]]
        cls.append(per_roi['cls'][order])
        mask.append(per_roi['mask'][order])
        bbox.append(per_roi['bbox'][order])
    torch.testing.assert_close(losses['loss_cls'], torch.cat(cls).mean())
    # mask and box: the sum over the kept RoIs / (2 images x 3 RoIs)
    torch.testing.assert_close(losses['loss_mask'], torch.cat(mask).sum() / 6)
    torch.testing.assert_close(losses['loss_bbox'], torch.cat(bbox).sum() / 6)
