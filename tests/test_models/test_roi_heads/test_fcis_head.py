# Copyright (c) OpenMMLab. All rights reserved.
"""FCISHead: score maps and assembly against the official operator chain,
targets, and the per-RoI losses by hand (any number of foreground RoIs)."""
import pytest
import torch
from mmdet.models.task_modules.assigners import AssignResult
from mmdet.models.task_modules.samplers import PseudoSampler
from mmengine.structures import InstanceData

from mnc_mm.models.roi_heads import FCISHead
from mnc_mm.ops import ps_roi_pool
from test_ops.fcis_channel_ops import group_max, label_pick, score_pick


def _head(**kwargs):
    torch.manual_seed(0)
    cfg = dict(num_classes=2, in_channels=8, group_size=3, pooled_size=9,
               spatial_scale=1. / 16)
    cfg.update(kwargs)
    return FCISHead(**cfg)


def test_assemble_equals_the_official_operator_chain():
    """score_maps + assemble (channels-last maps, fused class score, one
    pair per RoI) give what the official chain gives on conv_cls_seg's
    output: PSROIPooling of all 2C maps, Group_Max + average for the class
    score, Score_Pick by the softmax (test) or Label_Pick (train)."""
    head = _head().double()
    feat = torch.randn(2, 8, 9, 12, dtype=torch.float64)
    rois = torch.tensor([[0, 8, 8, 120, 90], [1, 0, 0, 191, 143],
                         [1, 40.5, 30, 60, 100], [0, 150, 100, 300, 200]],
                        dtype=torch.float64)
    k, p, s = head.group_size, head.pooled_size, head.spatial_scale
    num_cls = head.num_score_classes
    with torch.no_grad():
        official = head.conv_cls_seg(feat)
        full = ps_roi_pool(official, rois, 2 * num_cls, p, k, s)
        cls_score = group_max(full, num_cls).mean(dim=(2, 3))
        maps = head.score_maps(feat)
        test = head.assemble(maps, rois)
        labels = torch.tensor([0, 1, 2, 1])
        train = head.assemble(maps, rois, labels)
        probs, masks, deltas = head.predict_rois(maps, rois)
    torch.testing.assert_close(maps[0].reshape(official.shape), official)
    torch.testing.assert_close(test['cls_score'], cls_score)
    picked = score_pick(full, num_cls, cls_score.softmax(dim=1))
    torch.testing.assert_close(test['seg_logits'], picked)
    torch.testing.assert_close(train['seg_logits'],
                               label_pick(full, num_cls, labels))
    # class-agnostic boxes: slot 1 of the averaged box maps
    box_maps = ps_roi_pool(head.conv_bbox(feat), rois, 8, p, k, s)
    torch.testing.assert_close(deltas, box_maps.mean(dim=(2, 3))[:, 4:])
    torch.testing.assert_close(probs, cls_score.softmax(dim=1))
    torch.testing.assert_close(masks, picked.softmax(dim=1)[:, 1])


def _per_roi(head, num_fg):
    """RoI 0 (fg when num_fg): a 2x2 mask with one ignored pixel; RoI 1:
    background."""
    cls_score = torch.tensor([[0., 1., 0.], [2., 0., 0.]])
    seg = torch.zeros(2, 2, 2, 2)
    seg[0, 1] = torch.tensor([[1., -1.], [0., 3.]])  # inside logits
    targets = torch.tensor([[[1., 0.], [-1., 1.]], [[-1., -1.], [-1., -1.]]])
    bbox_pred = torch.tensor([[0.5, -2., 0., 0.], [9., 9., 9., 9.]],
                             requires_grad=True)
    weights = torch.tensor([[float(num_fg)] * 4, [0.] * 4])
    if not num_fg:
        targets[0] = -1
    out = head.per_roi_losses(
        dict(cls_score=cls_score, seg_logits=seg, bbox_pred=bbox_pred),
        dict(labels=torch.tensor([num_fg, 0]), mask_targets=targets,
             bbox_targets=torch.zeros(2, 4), bbox_weights=weights))
    return out, cls_score, bbox_pred


def test_per_roi_losses_by_hand():
    head = _head()
    for loss in (head.loss_cls, head.loss_mask, head.loss_bbox):
        loss.loss_weight = 1.
    out, cls_score, _ = _per_roi(head, num_fg=1)

    def ce(logit_in, target):  # 2-way CE with outside logit 0
        p_in = torch.sigmoid(torch.tensor(logit_in))
        return -torch.log(p_in if target == 1 else 1 - p_in)

    # the per-RoI mean is over all 4 pixels, the ignored one counting 0
    expected_mask = (ce(1., 1) + ce(-1., 0) + ce(3., 1)) / 4
    torch.testing.assert_close(out['mask'],
                               torch.stack([expected_mask, torch.tensor(0.)]))
    torch.testing.assert_close(out['cls'], torch.stack([
        -torch.log_softmax(cls_score[0], 0)[1],
        -torch.log_softmax(cls_score[1], 0)[0]]))
    # smooth-L1 with beta 1: 0.5 * 0.25 + (2 - 0.5)
    torch.testing.assert_close(out['bbox'], torch.tensor([0.125 + 1.5, 0.]))


def test_per_roi_losses_without_foreground_rois():
    """Issue #27: no positive box weight still gives (R,) losses, and the
    box branch gets a zero gradient."""
    out, _, bbox_pred = _per_roi(_head(), num_fg=0)
    for key in ('cls', 'mask', 'bbox'):
        assert out[key].shape == (2, ), key
    assert out['bbox'].abs().max() == 0 and out['mask'].abs().max() == 0
    out['bbox'].sum().backward()
    assert bbox_pred.grad.abs().max() == 0


def test_targets_put_each_image_fg_first_and_ignore_background_masks():
    head = _head(pooled_size=3)
    masks = torch.zeros(1, 40, 40, dtype=torch.uint8)
    masks[0, 10:30, 10:30] = 1
    gt = InstanceData(bboxes=torch.tensor([[10., 10., 29., 29.]]),
                      labels=torch.tensor([1]), masks=masks)
    priors = torch.tensor([[10., 10., 29., 29.], [0., 0., 5., 5.],
                           [12., 10., 31., 29.]])
    assign = AssignResult(1, torch.tensor([1, 0, 1]), None,
                          labels=torch.tensor([1, -1, 1]))
    res = PseudoSampler().sample(assign, InstanceData(priors=priors), gt)
    empty = InstanceData(bboxes=torch.zeros(0, 4),
                         labels=torch.zeros(0, dtype=torch.long),
                         masks=torch.zeros(0, 40, 40, dtype=torch.uint8))
    res_empty = PseudoSampler().sample(
        AssignResult(0, torch.zeros(2, dtype=torch.long), None,
                     labels=torch.full((2, ), -1)),
        InstanceData(priors=priors[:2]), empty)
    t = head.get_targets([res, res_empty], [gt, empty], mask_thr=0.4)
    assert t['labels'].tolist() == [2, 2, 0, 0, 0]
    assert t['bbox_weights'].sum(1).tolist() == [4, 4, 0, 0, 0]
    torch.testing.assert_close(t['bbox_targets'][0], torch.zeros(4))
    assert t['bbox_targets'][1, 0] < 0  # shifted right: move left
    assert (t['mask_targets'][0] == 1).all()  # the RoI is the gt
    assert (t['mask_targets'][2:] == -1).all()
    assert t['mask_targets'].shape == (5, 3, 3)


def test_num_reg_classes_is_checked():
    with pytest.raises(ValueError, match='2 .* or num_classes \\+ 1 = 3'):
        _head(num_reg_classes=5)
