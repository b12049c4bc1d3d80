# Copyright (c) OpenMMLab. All rights reserved.
"""Every paper config keeps the py-faster-rcnn RPN of the shared fragment
(configs/_base_/models/py-faster-rcnn_rpn.py) and sets what the official
codes set per method and data set: anchor scales, the training pre-NMS
count and RPN_MIN_SIZE (daijifeng001/MNC lib/mnc_config.py; msracver/FCIS
experiments/fcis/cfgs/*.yaml, fcis/operator_py/proposal.py)."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
FRAGMENT = osp.join(REPO, 'configs', '_base_', 'models',
                    'py-faster-rcnn_rpn.py')
CONFIGS = sorted(
    glob.glob(osp.join(REPO, 'configs', 'fcis', '*.py')) +
    glob.glob(osp.join(REPO, 'configs', 'mnc', '*.py')))
# (method, data set) -> anchor scales, train pre-NMS, (RPN_MIN_SIZE, x the
# image scale): FCIS in network-input px, MNC in original-image px
OFFICIAL = {
    ('fcis', 'coco'): ([4, 8, 16, 32], 6000, (2, False)),
    ('fcis', 'sbd'): ([8, 16, 32], 6000, (16, False)),
    ('mnc', 'coco'): ([8, 16, 32], 12000, (16, True)),
    ('mnc', 'sbd'): ([8, 16, 32], 12000, (16, True)),
}


def test_every_paper_config_is_checked():
    assert len(CONFIGS) == 9


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_shared_rpn_and_official_settings(path):
    shared = Config.fromfile(FRAGMENT).model
    model = Config.fromfile(path).model
    for key, value in shared.rpn_head.items():
        if key != 'anchor_generator':
            assert model.rpn_head[key] == value, key
    for key, value in shared.rpn_head.anchor_generator.items():
        assert model.rpn_head.anchor_generator[key] == value, key
    assert model.train_cfg.rpn == shared.train_cfg.rpn
    for proposal, base in ((model.train_cfg.rpn_proposal,
                            shared.train_cfg.rpn_proposal),
                           (model.test_cfg.rpn, shared.test_cfg.rpn)):
        assert {k: proposal[k] for k in base} == base

    method = osp.basename(osp.dirname(path))
    dataset = 'coco' if 'coco' in osp.basename(path) else 'sbd'
    scales, train_pre_nms, min_size = OFFICIAL[method, dataset]
    assert model.rpn_head.anchor_generator.scales == scales
    assert model.train_cfg.rpn_proposal.nms_pre == train_pre_nms
    for proposal in (model.train_cfg.rpn_proposal, model.test_cfg.rpn):
        assert (proposal.min_bbox_size,
                proposal.get('scale_min_bbox_size', False)) == min_size
