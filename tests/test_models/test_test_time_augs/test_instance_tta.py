# Copyright (c) OpenMMLab. All rights reserved.
"""InstanceTTAModel: un-flipping, the per-view test_cfg, and merging."""
import os.path as osp

import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.structures import InstanceData

from mnc_mm.models.test_time_augs import (InstanceTTAModel, unflip_instances,
                                          vote_instances)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
FLIPS = dict(horizontal=np.fliplr, vertical=np.flipud,
             diagonal=lambda m: np.flipud(np.fliplr(m)))


def _instances(masks, scores, labels):
    """InstanceData of bool (K, H, W) numpy masks with their tight boxes."""
    boxes = []
    for m in masks:
        ys, xs = np.nonzero(m)
        boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    return InstanceData(bboxes=torch.tensor(boxes, dtype=torch.float32),
                        scores=torch.tensor(scores),
                        labels=torch.tensor(labels),
                        masks=torch.from_numpy(np.stack(masks)))


def _two_objects(h=20, w=30):
    a = np.zeros((h, w), bool)
    a[2:9, 3:12] = True
    a[2, 20:23] = True  # a second blob: the box spans both
    b = np.zeros((h, w), bool)
    b[10:19, 15:29] = True
    return [a, b]


@pytest.mark.parametrize('direction', list(FLIPS))
def test_unflip_restores_boxes_and_masks(direction):
    masks = _two_objects()
    original = _instances(masks, [0.9, 0.8], [0, 1])
    flipped = _instances([FLIPS[direction](m).copy() for m in masks],
                         [0.9, 0.8], [0, 1])
    back = unflip_instances(flipped, direction, (20, 30))
    assert torch.equal(back.masks, original.masks)
    assert torch.equal(back.bboxes, original.bboxes)
    assert torch.equal(back.scores, original.scores)
    # the input is not modified
    assert not torch.equal(flipped.masks, original.masks)


def test_unflip_refuses_unknown_direction():
    with pytest.raises(ValueError, match="one of .*got 'sideways'"):
        unflip_instances(_instances(_two_objects(), [0.9, 0.8], [0, 1]),
                         'sideways', (20, 30))


class _Recorder(torch.nn.Module):
    """Stands in for a detector: TTA only needs ``test_step``."""

    def test_step(self, data):
        return data['data_samples']


def _view(instances, flip, ori_shape=(20, 30)):
    sample = DetDataSample(metainfo=dict(
        img_id=7, ori_shape=ori_shape, flip=flip,
        flip_direction='horizontal' if flip else None))
    sample.pred_instances = instances
    return sample


def test_merge_preds_votes_unflipped_views():
    masks = _two_objects()
    plain = _instances(masks, [0.9, 0.6], [0, 1])
    shifted = [np.roll(m, 1, axis=1) for m in masks]
    flipped = _instances([np.fliplr(m).copy() for m in shifted], [0.7, 0.8],
                         [0, 1])
    tta = InstanceTTAModel(_Recorder(), tta_cfg=dict(max_per_img=10))
    flipped_view, plain_view = _view(flipped, True), _view(plain, False)
    plain_view.gt_instances = InstanceData(labels=torch.tensor([0]))
    [merged] = tta.merge_preds([[flipped_view, plain_view]])
    # the unflipped view's sample (its gt) carries the result
    assert merged.img_id == 7 and merged.flip is False
    assert merged.gt_instances.labels.tolist() == [0]

    candidates = InstanceData.cat(
        [_instances(shifted, [0.7, 0.8], [0, 1]), plain])
    expected = vote_instances(candidates.bboxes, candidates.scores,
                              candidates.labels, candidates.masks,
                              max_per_img=10)
    pred = merged.pred_instances
    for got, want in zip((pred.bboxes, pred.scores, pred.labels, pred.masks),
                         expected):
        assert torch.equal(got, want)
    # one instance per object, scored by its best view
    assert pred.labels.tolist() == [0, 1]
    assert pred.scores.tolist() == pytest.approx([0.9, 0.8])


def test_test_step_runs_every_view():
    masks = _two_objects()
    views = [_view(_instances(masks, [0.9, 0.6], [0, 1]), False),
             _view(_instances([np.fliplr(m).copy() for m in masks],
                              [0.8, 0.7], [0, 1]), True)]
    tta = InstanceTTAModel(_Recorder())
    data = dict(inputs=[[None], [None]], data_samples=[[views[0]],
                                                       [views[1]]])
    [merged] = tta.test_step(data)
    # identical masks once unflipped: the vote is each object's mask
    assert torch.equal(merged.pred_instances.masks,
                       torch.from_numpy(np.stack(masks)))


def test_masks_must_be_at_the_original_size():
    tta = InstanceTTAModel(_Recorder())
    view = _view(_instances(_two_objects(), [0.9, 0.6], [0, 1]), False,
                 ori_shape=(40, 60))
    with pytest.raises(ValueError, match=r'original size \(40, 60\)'):
        tta.merge_preds([[view]])


def test_view_test_cfg_reaches_the_detector():
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'demo',
                                   'fcis_r18-tiny_shapes.py'))
    voting = cfg.model.test_cfg.rcnn.mask_voting
    assert voting.max_per_img == 20
    tta = InstanceTTAModel(
        cfg.model, view_test_cfg=dict(rcnn=dict(mask_voting=dict(
            max_per_img=100))))
    test_cfg = tta.module.test_cfg
    assert test_cfg.rcnn.mask_voting == dict(voting, max_per_img=100)
    # the rest of the test_cfg is kept, the config is not modified
    assert test_cfg.rpn == cfg.model.test_cfg.rpn
    assert cfg.model.test_cfg.rcnn.mask_voting.max_per_img == 20
    with pytest.raises(TypeError, match='needs the detector as a config'):
        InstanceTTAModel(_Recorder(), view_test_cfg=dict(rcnn=dict()))
