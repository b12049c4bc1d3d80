# Copyright (c) OpenMMLab. All rights reserved.
"""crop_mask_targets against a cv2 reference of the official recipe."""
import cv2
import numpy as np
import pytest
import torch

from mnc_mm.models.task_modules import crop_mask_targets


def _reference(roi, gt_box, gt_mask, m=21, thr=0.4):
    """msracver/FCIS fcis/operator_py/proposal_annotator.py / daijifeng001/MNC
    lib/pylayer/proposal_target_layer.py with numpy and cv2."""
    ex = np.round(roi).astype(int)
    g = np.round(gt_box).astype(int)
    x1, y1 = max(ex[0], g[0]), max(ex[1], g[1])
    x2, y2 = min(ex[2], g[2]), min(ex[3], g[3])
    if x2 < x1 or y2 < y1:
        return np.zeros((m, m), np.float32)
    canvas = np.zeros((ex[3] - ex[1] + 1, ex[2] - ex[0] + 1), np.float32)
    crop = np.zeros((y2 - y1 + 1, x2 - x1 + 1), np.float32)
    # the part of the intersection that lies in the image
    h, w = gt_mask.shape
    sy1, sx1, sy2, sx2 = max(y1, 0), max(x1, 0), min(y2, h - 1), min(x2, w - 1)
    crop[sy1 - y1:sy2 - y1 + 1, sx1 - x1:sx2 - x1 + 1] = \
        gt_mask[sy1:sy2 + 1, sx1:sx2 + 1]
    canvas[y1 - ex[1]:y2 - ex[1] + 1, x1 - ex[0]:x2 - ex[0] + 1] = crop
    resized = cv2.resize(canvas, (m, m), interpolation=cv2.INTER_LINEAR)
    return (resized >= thr).astype(np.float32)


def test_spec_vector_t8():
    """daijifeng001/MNC lib/pylayer/proposal_target_layer.py: columns 10-20 of
    every row are 1."""
    mask = torch.ones(1, 10, 20)
    target = crop_mask_targets(torch.tensor([[0., 0., 9., 9.]]), mask,
                               torch.tensor([[5., 0., 14., 9.]]),
                               torch.tensor([0]))
    expected = torch.zeros(21, 21)
    expected[:, 10:] = 1
    assert torch.equal(target[0], expected)


@pytest.mark.parametrize('seed', range(4))
def test_matches_cv2_reference(seed):
    rng = np.random.default_rng(seed)
    h, w, num_gts, num_rois = 40, 56, 3, 24
    soft = rng.random((num_gts, h, w)).astype(np.float32)
    corners = rng.uniform(0, [w - 1, h - 1], (num_gts, 2, 2))
    gt_boxes = np.concatenate([corners.min(1), corners.max(1)], 1)
    # RoIs partly outside the image, some disjoint from their gt, .5 ends
    xy = rng.uniform(-10, [w + 5, h + 5], (num_rois, 2))
    wh = rng.uniform(1, 30, (num_rois, 2))
    rois = np.concatenate([xy, xy + wh], 1)
    rois[:3] = np.round(rois[:3]) + 0.5
    assigned = rng.integers(0, num_gts, num_rois)
    # half of them jittered copies of their gt box (partial overlaps)
    half = num_rois // 2
    rois[half:] = gt_boxes[assigned[half:]] + rng.uniform(
        -6, 6, (num_rois - half, 4))
    target = crop_mask_targets(
        torch.from_numpy(rois).float(), torch.from_numpy(soft),
        torch.from_numpy(gt_boxes).float(), torch.from_numpy(assigned))
    expected = np.stack([
        _reference(rois[i].astype(np.float32),
                   gt_boxes[assigned[i]].astype(np.float32),
                   soft[assigned[i]]) for i in range(num_rois)
    ])
    # cv2 uses fixed-point weights: allow a handful of pixels sitting on
    # the 0.4 threshold to differ
    assert (target.numpy() != expected).mean() < 2e-3
    assert expected.sum() > 0


def test_empty_and_bad_shapes():
    masks = torch.zeros(2, 8, 8)
    boxes = torch.zeros(2, 4)
    out = crop_mask_targets(torch.zeros(0, 4), masks, boxes,
                            torch.zeros(0, dtype=torch.long), mask_size=7)
    assert out.shape == (0, 7, 7)
    with pytest.raises(ValueError, match='rois must be'):
        crop_mask_targets(torch.zeros(3, 5), masks, boxes,
                          torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match='assigned_gt_inds'):
        crop_mask_targets(torch.zeros(3, 4), masks, boxes,
                          torch.zeros(2, dtype=torch.long))


def test_gt_mask_dtypes_and_layouts_agree():
    """The pixels are gathered straight from the (G, H, W) masks: bool,
    uint8, float64 and non-contiguous masks give the float32 result."""
    gen = torch.Generator().manual_seed(0)
    binary = torch.rand(3, 30, 45, generator=gen) > 0.5
    gt_boxes = torch.tensor([[2., 3., 40., 25.], [-4., 0., 20., 33.],
                             [10., 8., 44., 29.]])
    rois = torch.tensor([[0., 0., 29., 29.], [-6.5, 2.5, 50., 40.],
                         [12., 9., 30., 20.], [35., 20., 60., 45.]])
    inds = torch.tensor([0, 1, 2, 0])
    expected = crop_mask_targets(rois, binary.float(), gt_boxes, inds)
    assert expected.sum() > 0
    transposed = binary.transpose(1, 2).contiguous().transpose(1, 2)
    for masks in (binary, binary.to(torch.uint8), binary.double(),
                  transposed):
        assert torch.equal(
            crop_mask_targets(rois, masks, gt_boxes, inds), expected)
