# Copyright (c) OpenMMLab. All rights reserved.
"""The RPN of both methods: proposals (msracver/FCIS
fcis/operator_py/proposal.py, daijifeng001/MNC lib/pylayer/proposal_layer.py
(backward)) on hand-made anchors, and targets on inclusive-end gt boxes."""
import pytest
import torch
from mmengine.config import ConfigDict

from mnc_mm.models.dense_heads import PyFasterRCNNRPNHead


def _head():
    return PyFasterRCNNRPNHead(
        in_channels=4,
        feat_channels=4,
        anchor_generator=dict(
            type='PyFasterRCNNAnchorGenerator', strides=[16],
            ratios=[1.0], scales=[2]),
        bbox_coder=dict(type='PlusOneDeltaXYWHBBoxCoder'),
        loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False))


def _cfg(min_size, offset=1, scale=False):
    return ConfigDict(nms_pre=100, max_per_img=10, min_bbox_size=min_size,
                      scale_min_bbox_size=scale,
                      nms=dict(type='nms', iou_threshold=0.7, offset=offset))


def _logits(fg_probs):
    """Softmax logits (fg first, mmdet's layout) giving ``fg_probs``."""
    p = torch.tensor(fg_probs)
    return torch.stack([p.log(), (1 - p).log()], 1)


BOXES = torch.tensor([
    [0., 0., 19., 19.],     # A: IoU 0.82 with B, lower score -> suppressed
    [1., 1., 20., 20.],     # B
    [50., 50., 59., 59.],   # C: 10 px wide < 16 -> dropped, best score
    [30., 0., 49., 19.],    # D
])
META = dict(img_shape=(100, 100), scale_factor=(2., 2.))


def _proposals(head, fg_probs, boxes, cfg, deltas=None, **kwargs):
    """``proposals_by_feat`` of one image on a 1 x n feature map (one
    32 px anchor per cell) whose deltas move anchor i onto ``boxes[i]``
    (or are ``deltas``, (n, 4), if given)."""
    num = len(fg_probs)
    anchors = head.prior_generator.grid_priors([(1, num)], device='cpu')[0]
    if deltas is None:
        deltas = head.bbox_coder.encode(anchors, boxes)
    cls_scores = [_logits(fg_probs).t().reshape(1, 2, 1, num)]
    bbox_preds = [deltas.t().reshape(1, 4, 1, num)]
    out = head.proposals_by_feat(cls_scores, bbox_preds, [META], cfg,
                                 **kwargs)
    return out[0], anchors


@pytest.mark.parametrize('min_size,scale', [(8, True), (16, False)],
                         ids=['mnc-original-px', 'fcis-input-px'])
def test_min_size_nms_order_and_anchor_indices(min_size, scale):
    # MNC: 8 original px x 2 = 16 px; FCIS: 16 px of the network input
    out, _ = _proposals(_head(), [0.9, 0.95, 0.99, 0.5], BOXES,
                        _cfg(min_size, scale=scale))
    assert out.anchor_inds.tolist() == [1, 3]
    torch.testing.assert_close(out.bboxes, BOXES[[1, 3]])
    torch.testing.assert_close(out.scores, torch.tensor([0.95, 0.5]))


@pytest.mark.parametrize('offset,kept', [(1, [0]), (0, [0, 1])])
def test_nms_iou_uses_plus_one_areas(offset, kept):
    # +1 areas: 100 and 140, overlap 100 -> IoU 0.714 > 0.7 (suppressed);
    # without: 81, 117, 81 -> IoU 0.692 (kept)
    boxes = torch.tensor([[0., 0., 9., 9.], [0., 0., 9., 13.]])
    out, _ = _proposals(_head(), [0.9, 0.8], boxes,
                        _cfg(min_size=0, offset=offset))
    assert out.anchor_inds.tolist() == kept


@pytest.mark.parametrize('box_grad', [True, False])
def test_kept_proposals_are_differentiable_in_the_deltas(box_grad):
    head = _head()
    anchors = head.prior_generator.grid_priors([(1, 4)], device='cpu')[0]
    deltas = head.bbox_coder.encode(anchors, BOXES).requires_grad_()
    out, _ = _proposals(head, [0.9, 0.95, 0.99, 0.5], BOXES,
                        _cfg(min_size=16), deltas=deltas, box_grad=box_grad)
    if not box_grad:
        assert not out.bboxes.requires_grad
        return
    out.bboxes.sum().backward()
    # x1 + x2 = 2 (cx + dx w): d/d dx = 2 w, d/d dw = 0 (same for y), w
    # the anchor's (+1) width
    size = anchors[:, 2:] - anchors[:, :2] + 1
    expected = torch.zeros(4, 4)
    expected[[1, 3], :2] = 2 * size[[1, 3]]
    torch.testing.assert_close(deltas.grad, expected)


def test_in_index_picks_one_map_of_the_feature_tuple():
    head = _head()
    head.in_index = -2
    conv4, conv5 = torch.randn(1, 4, 3, 5), torch.randn(1, 8, 2, 2)
    (cls, ), (reg, ) = head((conv4, conv5))  # conv5 has the wrong width
    head.in_index = None
    (expected_cls, ), (expected_reg, ) = head((conv4, ))
    torch.testing.assert_close(cls, expected_cls)
    torch.testing.assert_close(reg, expected_reg)


def test_targets_use_inclusive_gt_boxes_of_one_class():
    """An mmdet gt box [0, 0, 16, 16) is the official [0, 0, 15, 15]: it
    matches the 16 px anchor exactly, so the regression target is 0."""
    from mmdet.models.task_modules.assigners import MaxIoUAssigner
    from mmengine.structures import InstanceData
    head = PyFasterRCNNRPNHead(
        in_channels=4, feat_channels=4,
        anchor_generator=dict(
            type='PyFasterRCNNAnchorGenerator', strides=[16],
            ratios=[1.0], scales=[1]),
        bbox_coder=dict(type='PlusOneDeltaXYWHBBoxCoder'),
        loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False),
        loss_bbox=dict(type='L1Loss', loss_weight=1.0),
        train_cfg=ConfigDict(
            assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.7,
                          neg_iou_thr=0.3, min_pos_iou=0.0,
                          iou_calculator=dict(type='BboxOverlaps2DPlusOne')),
            sampler=dict(type='RandomSampler', num=256, pos_fraction=0.5,
                         neg_pos_ub=-1, add_gt_as_proposals=False),
            allowed_border=0, pos_weight=-1, debug=False))
    assert isinstance(head.assigner, MaxIoUAssigner)
    gt = InstanceData(bboxes=torch.tensor([[0., 0., 16., 16.]]),
                      labels=torch.tensor([2]))
    meta = dict(img_shape=(32, 32), pad_shape=(32, 32), scale_factor=(1, 1))
    cls_scores = [torch.zeros(1, 2, 2, 2)]
    bbox_preds = [torch.zeros(1, 4, 2, 2, requires_grad=True)]
    losses = head.loss_by_feat(cls_scores, bbox_preds, [gt], [meta])
    assert set(losses) == {'loss_rpn_cls', 'loss_rpn_bbox'}
    # the one positive anchor (0, 0, 15, 15) needs no regression
    assert float(sum(losses['loss_rpn_bbox']).detach()) == 0
    shifted = InstanceData(bboxes=torch.tensor([[0., 0., 17., 17.]]),
                           labels=torch.tensor([0]))
    losses = head.loss_by_feat(cls_scores, bbox_preds, [shifted], [meta])
    assert float(sum(losses['loss_rpn_bbox']).detach()) > 0


def _filter_then_nms(head, cls_score, bbox_pred, meta, cfg):
    """The proposal selection indexing the size filter's ``nonzero`` first
    (the form before the masked one): anchor indices kept, in order."""
    from mmcv.ops import batched_nms
    num_anchors = head.num_base_priors
    height, width = cls_score.shape[-2:]
    anchors = head.prior_generator.grid_priors([(height, width)],
                                               device='cpu')[0]
    scores = cls_score[0].permute(1, 2, 0).reshape(-1, 2).softmax(-1)[:, 0]
    deltas = bbox_pred[0].permute(1, 2, 0).reshape(-1, 4)
    assert len(anchors) == len(scores) == height * width * num_anchors
    boxes = head.bbox_coder.decode(anchors, deltas,
                                   max_shape=meta['img_shape'])
    sx, sy = meta['scale_factor'] if cfg.scale_min_bbox_size else (1, 1)
    size = boxes[:, 2:] - boxes[:, :2] + 1
    valid = ((size[:, 0] >= cfg.min_bbox_size * sx) &
             (size[:, 1] >= cfg.min_bbox_size * sy))
    inds = valid.nonzero().squeeze(1)
    inds = inds[scores[inds].argsort(descending=True, stable=True)]
    if cfg.nms_pre > 0:
        inds = inds[:cfg.nms_pre]
    _, keep = batched_nms(boxes[inds], scores[inds],
                          inds.new_zeros(len(inds)),
                          dict(cfg.nms, class_agnostic=True))
    return inds[keep[:cfg.max_per_img]], valid


@pytest.mark.parametrize(
    'min_size,scale,nms_pre,max_per_img',
    [(16, False, 100, 50), (8, True, 60, 300), (24, False, -1, 300),
     (0, False, -1, 300), (4000, False, 100, 50)],
    ids=['nms-pre-cut', 'scaled-size', 'small-boxes-reach-nms', 'all',
         'none-valid'])
def test_masked_size_filter_keeps_what_filtering_first_kept(
        min_size, scale, nms_pre, max_per_img):
    """The size filter as a mask (small boxes sort last, masked_nms drops
    them) keeps the same proposals, in the same order, as indexing the
    valid boxes first: random scores and deltas on 9 anchors x 6 x 8
    cells, clipped to the image (so many small boxes)."""
    head = PyFasterRCNNRPNHead(
        in_channels=4, feat_channels=4,
        anchor_generator=dict(
            type='PyFasterRCNNAnchorGenerator', strides=[16],
            ratios=[0.5, 1.0, 2.0], scales=[2, 4, 8]),
        bbox_coder=dict(type='PlusOneDeltaXYWHBBoxCoder'),
        loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False))
    gen = torch.Generator().manual_seed(min_size)
    cls_score = torch.randn(1, 18, 6, 8, generator=gen)
    bbox_pred = torch.randn(1, 36, 6, 8, generator=gen) * 0.5
    cfg = ConfigDict(nms_pre=nms_pre, max_per_img=max_per_img,
                     min_bbox_size=min_size, scale_min_bbox_size=scale,
                     nms=dict(type='nms', iou_threshold=0.7, offset=1))
    expected, valid = _filter_then_nms(head, cls_score, bbox_pred, META,
                                       cfg)
    out = head.proposals_by_feat([cls_score], [bbox_pred], [META], cfg)[0]
    assert out.anchor_inds.tolist() == expected.tolist()
    assert len(out) == len(out.bboxes) == len(out.scores) == len(expected)
    if min_size == 16:  # the filter and the nms_pre cut both bite
        assert 0 < valid.sum() < len(valid) and valid.sum() > nms_pre
    if min_size == 24:  # masked_nms sees (and must drop) small boxes
        assert 0 < valid.sum() < len(valid) / 2
    if min_size == 4000:
        assert len(out) == 0


@pytest.mark.parametrize('nms', [dict(type='soft_nms', iou_threshold=0.7),
                                 dict(type='nms', offset=1),
                                 dict(type='nms', iou_threshold=0.7, sigma=1)])
def test_nms_cfg_other_than_mmcv_nms_is_refused(nms):
    cfg = _cfg(min_size=0)
    cfg.nms = nms
    with pytest.raises(ValueError, match="nms must be dict\\(type='nms'"):
        _proposals(_head(), [0.9, 0.8], BOXES[:2], cfg)
