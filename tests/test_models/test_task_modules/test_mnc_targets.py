# Copyright (c) OpenMMLab. All rights reserved.
"""MNC's RoI sampler (daijifeng001/MNC lib/pylayer/proposal_target_layer.py)
and mask-level labels (daijifeng001/MNC lib/pylayer/mask_layer.py)."""
import cv2
import numpy as np
import pytest
import torch
from mmdet.models.task_modules.assigners import AssignResult
from mmengine.structures import InstanceData
from torch.nn import functional as F

from mnc_mm.models.task_modules import (MNCRoISampler, mask_level_labels,
                                        predicted_mask_ious)


def _assign(ious):
    """One gt of class 2; candidates with IoU >= 0.5 are assigned to it."""
    ious = torch.tensor(ious)
    gt_inds = (ious >= 0.5).long()
    return AssignResult(1, gt_inds, ious, torch.where(
        gt_inds > 0, torch.full_like(gt_inds, 2), -torch.ones_like(gt_inds)))


def _sample(sampler, ious, priors=None):
    priors = torch.rand(len(ious), 4) if priors is None else priors
    gt = InstanceData(bboxes=torch.tensor([[0., 0., 9., 9.]]),
                      labels=torch.tensor([2]))
    return sampler.sample(_assign(ious), InstanceData(priors=priors), gt)


def test_sampler_quota_split_and_no_fill_up():
    # 3 fg; bg budget 10 - 3 = 7: round(0.85 * 7) = 6 wanted from
    # [0.1, 0.5) where there are only 5, round(0.15 * 7) = 1 from [0, 0.1)
    ious = [0.9, 0.6, 0.5, 0.45, 0.3, 0.1, 0.2, 0.15, 0.05, 0.0, 0.0]
    sampler = MNCRoISampler(num=10, pos_fraction=0.3,
                            add_gt_as_proposals=False)
    torch.manual_seed(0)
    res = _sample(sampler, ious)
    assert res.pos_inds.tolist() == [0, 1, 2]
    neg = res.neg_inds.tolist()
    assert len(neg) == 6  # no fill-up: 9 RoIs, not 10
    assert set(neg) >= {3, 4, 5, 6, 7}
    assert len(set(neg) & {8, 9, 10}) == 1
    assert res.pos_gt_labels.tolist() == [2, 2, 2]


def test_sampler_fg_cap_and_gt_candidates_keep_gradients():
    ious = [0.8] * 30 + [0.3] * 60 + [0.05] * 60
    sampler = MNCRoISampler(num=64, pos_fraction=0.3)
    priors = torch.rand(len(ious), 4, requires_grad=True)
    torch.manual_seed(0)
    res = _sample(sampler, ious, priors)
    # int(64 * 0.3) = 19 fg of 31 (30 + the gt); bg 45: 38 hard, 7 easy
    assert res.pos_inds.numel() == 19
    neg_ious = torch.tensor([1.0] + ious)[res.neg_inds]
    assert (neg_ious == 0.3).sum() == 38 and (neg_ious == 0.05).sum() == 7
    res.priors.sum().backward()
    picked = torch.cat([res.pos_inds, res.neg_inds]) - 1  # gt row first
    expected = torch.zeros(len(ious))
    expected[picked[picked >= 0]] = 4
    assert torch.equal(priors.grad.sum(1), expected)


def test_sampler_checks_arguments():
    with pytest.raises(ValueError, match='same length'):
        MNCRoISampler(neg_iou_ranges=((0., .5), ), neg_fractions=(.5, .5))
    with pytest.raises(ValueError, match='lo < hi'):
        MNCRoISampler(neg_iou_ranges=((.5, .1), ), neg_fractions=(1., ))


def _square_gt(size=20, lo=5, hi=14):
    gt = torch.zeros(1, size, size, dtype=torch.uint8)
    gt[0, lo:hi + 1, lo:hi + 1] = 1
    return gt


def test_mask_level_labels_hand_cases():
    gt = _square_gt()  # 100 px at rows/cols 5-14
    half = torch.full((21, 21), 0.1)
    half[:11] = 0.9  # resized to 10 rows: rows 0-4 >= 0.4 -> 50 px
    probs = torch.stack([torch.full((21, 21), 0.9),   # IoU 1
                         torch.full((21, 21), 0.9),   # 400 px box: 0.25
                         torch.full((21, 21), 0.3),   # empty: 0
                         half])                       # exactly 0.5
    rois = torch.tensor([[5., 5., 14., 14.], [0., 0., 19., 19.],
                         [5., 5., 14., 14.], [5., 5., 14., 14.]])
    inds = torch.zeros(4, dtype=torch.long)
    ious = predicted_mask_ious(probs, rois, gt, inds)
    torch.testing.assert_close(ious, torch.tensor([1., .25, 0., .5]))
    labels = torch.tensor([3, 3, 3, 3])
    assert mask_level_labels(probs, rois, gt, inds, labels).tolist() == [
        3, 0, 0, 3]
    assert mask_level_labels(probs, rois, gt, inds, labels,
                             iou_thr=0.51).tolist() == [3, 0, 0, 0]


def test_mask_level_labels_use_the_assigned_gt():
    gts = torch.cat([_square_gt(), _square_gt(lo=0, hi=3)])
    probs = torch.full((1, 21, 21), 0.9)
    rois = torch.tensor([[5., 5., 14., 14.]])
    labels = torch.tensor([1])
    # the mask matches gt 0 perfectly, but the RoI belongs to gt 1
    assert mask_level_labels(probs, rois, gts, torch.tensor([0]),
                             labels).tolist() == [1]
    assert mask_level_labels(probs, rois, gts, torch.tensor([1]),
                             labels).tolist() == [0]


def _reference_iou(prob, roi, gt, thr=0.4):
    """The official MaskLayer recipe with cv2 (daijifeng001/MNC
    lib/pylayer/mask_layer.py)."""
    x1, y1, x2, y2 = np.round(roi).astype(int)
    pred = cv2.resize(prob, (x2 - x1 + 1, y2 - y1 + 1),
                      interpolation=cv2.INTER_LINEAR) >= thr
    canvas = np.zeros(gt.shape, bool)
    canvas[y1:y2 + 1, x1:x2 + 1] = pred
    inter = (canvas & (gt > 0)).sum()
    union = pred.sum() + (gt > 0).sum() - inter
    return inter / union if union else 0.


@pytest.mark.parametrize('seed', range(3))
def test_mask_ious_match_a_cv2_reference(seed):
    rng = np.random.default_rng(seed)
    h, w = 30, 40
    gts = (rng.random((3, h, w)) > 0.5).astype(np.uint8)
    xy1 = rng.uniform(0, 15, (12, 2))
    xy2 = xy1 + rng.uniform(1, 20, (12, 2))
    rois = np.concatenate([xy1, np.minimum(xy2, [w - 1, h - 1])], 1)
    probs = rng.random((12, 21, 21)).astype(np.float32)
    inds = rng.integers(0, 3, 12)
    ious = predicted_mask_ious(torch.from_numpy(probs),
                               torch.from_numpy(rois).float(),
                               torch.from_numpy(gts), torch.from_numpy(inds))
    expected = [_reference_iou(p, r, gts[i])
                for p, r, i in zip(probs, rois, inds)]
    np.testing.assert_allclose(ious.numpy(), expected, atol=1e-6)


def _loop_mask_ious(mask_probs, rois, gt_masks, assigned_gt_inds,
                    binarize_thr=0.4):
    """predicted_mask_ious as it was before it was batched: one RoI at a
    time, resized with F.interpolate."""
    height, width = gt_masks.shape[1:]
    boxes = torch.round(rois.detach()).long().tolist()
    ious = mask_probs.new_zeros(rois.size(0))
    gt_area = gt_masks.flatten(1).sum(1).float()
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        w, h = max(x2 - x1 + 1, 1), max(y2 - y1 + 1, 1)
        pred = F.interpolate(
            mask_probs[i][None, None].detach().float(), size=(h, w),
            mode='bilinear', align_corners=False)[0, 0] >= binarize_thr
        g = int(assigned_gt_inds[i])
        # the part of the pasted mask inside the image
        ox1, oy1 = max(x1, 0), max(y1, 0)
        ox2, oy2 = min(x1 + w, width), min(y1 + h, height)
        inter = 0.
        if ox2 > ox1 and oy2 > oy1:
            gt_crop = gt_masks[g, oy1:oy2, ox1:ox2] > 0
            pred_crop = pred[oy1 - y1:oy2 - y1, ox1 - x1:ox2 - x1]
            inter = float((gt_crop & pred_crop).sum())
        union = float(pred.sum()) + float(gt_area[g]) - inter
        if union > 0:
            ious[i] = inter / union
    return ious


@pytest.mark.parametrize('max_cells', [None, 2000])
@pytest.mark.parametrize('seed', range(3))
def test_mask_ious_match_the_per_roi_loop(seed, max_cells, monkeypatch):
    """Batched (in one group, or in many with a small memory bound) as
    the per-RoI loop: RoIs across and outside the image borders, empty
    boxes, up- and downsampling, any gt dtype."""
    if max_cells is not None:
        monkeypatch.setattr(
            'mnc_mm.models.layers.mask_resize.MAX_WINDOW_CELLS',
            max_cells)
    gen = torch.Generator().manual_seed(seed)
    h, w, num_gts, num = 37, 52, 3, 40
    gts = torch.rand(num_gts, h, w, generator=gen) > 0.4
    gts = (gts, gts.to(torch.uint8), gts.float())[seed]
    xy = torch.rand(num, 2, generator=gen) * torch.tensor([w + 30., h + 30.])
    rois = torch.cat([xy, xy + torch.rand(num, 2, generator=gen) * 50 - 3],
                     1) - 15
    rois[:4] = torch.tensor([[-30., -20., -10., -5.], [60., 5., 90., 20.],
                             [10., 10., 8., 12.], [0., 0., w - 1., h - 1.]])
    probs = torch.rand(num, 21, 21, generator=gen)
    inds = torch.randint(0, num_gts, (num, ), generator=gen)
    ious = predicted_mask_ious(probs, rois, gts, inds)
    expected = _loop_mask_ious(probs, rois, gts, inds)
    assert ious.dtype == torch.float32
    torch.testing.assert_close(ious, expected, rtol=0, atol=1e-6)
    assert (expected > 0).sum() > 5
    ious = predicted_mask_ious(probs.double(), rois, gts, inds, 0.6)
    assert ious.dtype == torch.float64
    torch.testing.assert_close(
        ious, _loop_mask_ious(probs.double(), rois, gts, inds, 0.6),
        rtol=0, atol=1e-6)


def test_mask_ious_of_no_rois():
    ious = predicted_mask_ious(torch.zeros(0, 21, 21), torch.zeros(0, 4),
                               torch.zeros(2, 5, 5, dtype=torch.uint8),
                               torch.zeros(0, dtype=torch.long))
    assert ious.shape == (0, ) and ious.dtype == torch.float32
