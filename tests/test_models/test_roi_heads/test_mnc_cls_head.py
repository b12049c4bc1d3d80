# Copyright (c) OpenMMLab. All rights reserved.
"""MNCClsHead.loss: the losses of one classifier stage, with no host sync
beyond the boolean indexing of the foreground RoIs (issue #23.7)."""
import pytest
import torch
from torch.overrides import TorchFunctionMode

from mnc_mm.models.roi_heads import MNCClsHead

# Tensor -> Python conversions: each one waits for the device
SYNCS = {'__int__', '__bool__', '__float__', '__index__', 'item', 'tolist'}


class RecordSyncs(TorchFunctionMode):

    def __init__(self):
        super().__init__()
        self.syncs = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, '__name__', '')
        if name in SYNCS:
            self.syncs.append(name)
        return func(*args, **(kwargs or {}))


def _inputs():
    torch.manual_seed(0)
    cls_score, seg_cls_score = torch.randn(5, 4), torch.randn(5, 4)
    bbox_pred = torch.randn(5, 16)
    labels = torch.tensor([2, 1, 0, 0, 0])
    seg_labels = torch.tensor([2, 0, 0, 0, 0])
    bbox_targets = torch.randn(2, 4)
    return cls_score, seg_cls_score, bbox_pred, labels, seg_labels, \
        bbox_targets


def test_loss_by_hand_without_host_syncs():
    head = MNCClsHead(in_channels=4, roi_feat_size=2, num_classes=3,
                      pool='none', num_fcs=0)
    cls_score, seg_cls_score, bbox_pred, labels, seg_labels, targets = \
        _inputs()
    mode = RecordSyncs()
    with mode:
        losses = head.loss(cls_score, seg_cls_score, bbox_pred, labels,
                           seg_labels, targets)
    assert mode.syncs == []
    torch.testing.assert_close(
        losses['loss_cls'],
        torch.nn.functional.cross_entropy(cls_score, labels))
    torch.testing.assert_close(
        losses['loss_seg_cls'],
        torch.nn.functional.cross_entropy(seg_cls_score, seg_labels))
    # smooth-L1 (beta 1) of the labels' deltas, summed, over all 5 RoIs
    deltas = torch.stack([bbox_pred[0, 8:12], bbox_pred[1, 4:8]])
    diff = (deltas - targets).abs()
    smooth = torch.where(diff < 1, 0.5 * diff**2, diff - 0.5)
    torch.testing.assert_close(losses['loss_bbox'], smooth.sum() / 5)


def test_bbox_targets_of_the_wrong_count_name_both_shapes():
    head = MNCClsHead(in_channels=4, roi_feat_size=2, num_classes=3,
                      pool='none', num_fcs=0)
    *args, targets = _inputs()
    with pytest.raises(ValueError, match=r'\(2, 4\).*got \(3, 4\)'):
        head.loss(*args, torch.zeros(3, 4))
