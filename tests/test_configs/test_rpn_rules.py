# Copyright (c) OpenMMLab. All rights reserved.
"""Both methods' paper configs use the one RPN with the py-faster-rcnn
rules of the official codes (fcis_spec §4.3, §5.2; mnc_spec §5.2)."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(
    glob.glob(osp.join(REPO, 'configs', 'fcis', '*.py')) +
    glob.glob(osp.join(REPO, 'configs', 'mnc', '*.py')))
# official RPN_MIN_SIZE: FCIS COCO 2 / VOC 16 (network-input px); MNC 16
# original-image px (scaled by the resize factor)
MIN_SIZE = {'fcis': {'coco': (2, False), 'sbd': (16, False)},
            'mnc': {'coco': (16, True), 'sbd': (16, True)}}


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_one_rpn_with_the_official_rules(path):
    cfg = Config.fromfile(path)
    method = osp.basename(osp.dirname(path))
    dataset = 'coco' if 'coco' in osp.basename(path) else 'sbd'
    model = cfg.model
    assert model.rpn_head.type == 'PyFasterRCNNRPNHead'
    assert model.rpn_head.bbox_coder.type == 'PlusOneDeltaXYWHBBoxCoder'
    assigner = model.train_cfg.rpn.assigner
    assert assigner.min_pos_iou == 0.0 and assigner.gt_max_assign_all
    assert assigner.iou_calculator.type == 'BboxOverlaps2DPlusOne'
    for proposal in (model.train_cfg.rpn_proposal, model.test_cfg.rpn):
        assert proposal.nms.iou_threshold == 0.7
        assert proposal.nms.offset == 1
        assert proposal.max_per_img == 300
        assert (proposal.min_bbox_size,
                proposal.get('scale_min_bbox_size', False)) == \
            MIN_SIZE[method][dataset]
