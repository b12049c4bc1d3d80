# Copyright (c) OpenMMLab. All rights reserved.
"""The configs of the converted official models set every test-time switch
to the official test code's value, and their READMEs list each one.

``OFFICIAL`` holds the values read from the official code (daijifeng001/MNC
lib/mnc_config.py, lib/caffeWrapper/TesterWrapper.py, models/VGG16/
mnc_5stage/test.prototxt, lib/pylayer/stage_bridge_layer.py; msracver/FCIS
experiments/fcis/cfgs/resnet_v1_101_coco_fcis_end2end_ohem.yaml,
fcis/core/tester.py, lib/mask/mask_transform.py). Each README table row is
``| `key` | `official` | `ours` | source |``."""
import ast
import os.path as osp
import re

import pytest
from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
OFFICIAL = {
    'configs/mnc/mnc_vgg16_official-sbd.py': {
        'model.data_preprocessor.bgr_to_rgb': False,
        'model.data_preprocessor.mean': [102.9801, 115.9465, 122.7717],
        'model.data_preprocessor.std': [1.0, 1.0, 1.0],
        'test_dataloader.dataset.pipeline[1].scale': (1000, 600),
        'model.test_cfg.rpn.nms_pre': 6000,
        'model.test_cfg.rpn.max_per_img': 300,
        'model.test_cfg.rpn.nms.iou_threshold': 0.7,
        'model.test_cfg.rpn.nms.offset': 1,
        'model.test_cfg.rpn.min_bbox_size': 16,
        'model.test_cfg.rpn.scale_min_bbox_size': True,
        'model.test_cfg.rcnn.num_stages': 5,
        'model.test_cfg.rcnn.ext_warp': 'direct',
        'model.test_cfg.rcnn.bridge_with_bg': True,
        'model.roi_head.cls_head.bbox_coder.target_stds': (0.1, 0.1, 0.2,
                                                           0.2),
        'model.test_cfg.rcnn.mask_voting.preset': 'mnc',
        'model.test_cfg.rcnn.mask_voting.nms_thr': 0.3,
        'model.test_cfg.rcnn.mask_voting.max_per_class': 100,
        'model.test_cfg.rcnn.mask_voting.max_per_img': 100,
        'model.test_cfg.rcnn.mask_voting.merge_iou_thr': 0.5,
        'model.test_cfg.rcnn.mask_voting.mask_thr': 0.4,
        'model.test_cfg.rcnn.mask_thr_binary': 0.4,
        'model.test_cfg.rcnn.paste_binarize_first': True,
        'test_evaluator.voc_iou_thrs': (0.5, 0.7),
    },
    'configs/fcis/fcis_r101-c4_official-coco.py': {
        'model.data_preprocessor.bgr_to_rgb': True,
        'model.data_preprocessor.mean': [123.15, 115.90, 103.06],
        'model.data_preprocessor.std': [1.0, 1.0, 1.0],
        'test_dataloader.dataset.pipeline[1].scale': (1000, 600),
        'model.rpn_head.anchor_generator.scales': [4, 8, 16, 32],
        'model.rpn_head.anchor_generator.ratios': [0.5, 1.0, 2.0],
        'model.test_cfg.rpn.nms_pre': 6000,
        'model.test_cfg.rpn.max_per_img': 300,
        'model.test_cfg.rpn.nms.iou_threshold': 0.7,
        'model.test_cfg.rpn.min_bbox_size': 2,
        'model.test_cfg.rpn.scale_min_bbox_size': False,
        'model.test_cfg.rcnn.min_bbox_size': 2,
        'model.roi_head.mask_head.num_reg_classes': 2,
        'model.roi_head.mask_head.bbox_coder.target_stds':
        (0.2, 0.2, 0.5, 0.5),
        'model.test_cfg.rcnn.mask_voting.preset': 'fcis',
        'model.test_cfg.rcnn.mask_voting.nms_thr': 0.3,
        'model.test_cfg.rcnn.mask_voting.max_per_class': 100,
        'model.test_cfg.rcnn.mask_voting.max_per_img': 100,
        'model.test_cfg.rcnn.mask_voting.merge_iou_thr': 0.5,
        'model.test_cfg.rcnn.mask_voting.mask_thr': 0.4,
        'model.test_cfg.rcnn.mask_thr_binary': 0.4,
        'test_evaluator.metric': ['bbox', 'segm'],
    },
}
# keys a model reads with .get() and a default when the config omits them
DEFAULTS = {'model.test_cfg.rpn.scale_min_bbox_size': False}
ROW = re.compile(r'^\| `([^`]+)` \| `([^`]+)` \| `([^`]+)` \|')


def lookup(cfg, key):
    """``cfg`` at a dotted key with optional ``[i]`` list indices."""
    value = cfg
    for part in key.split('.'):
        match = re.fullmatch(r'(\w+)((?:\[\d+\])*)', part)
        name, indices = match.group(1), re.findall(r'\[(\d+)\]',
                                                   match.group(2))
        if name not in value:
            if key in DEFAULTS:
                return DEFAULTS[key]
            raise KeyError(f'{key}: no {name!r} in {sorted(value)}')
        value = value[name]
        for i in indices:
            value = value[int(i)]
    return value


def normalise(value):
    """Lists and tuples compare as tuples, as configs may hold either."""
    if isinstance(value, (list, tuple)):
        return tuple(normalise(v) for v in value)
    return value


def readme_rows(config):
    """``{key: (official, ours)}`` of the config's README table."""
    readme = osp.join(REPO, osp.dirname(config), 'README.md')
    rows = {}
    with open(readme) as f:
        for line in f:
            match = ROW.match(line)
            if match:
                key, official, ours = match.groups()
                rows[key] = (ast.literal_eval(official),
                             ast.literal_eval(ours))
    return rows


@pytest.mark.parametrize('config', sorted(OFFICIAL))
def test_config_has_the_official_test_settings(config):
    cfg = Config.fromfile(osp.join(REPO, config))
    wrong = {
        key: (lookup(cfg, key), official)
        for key, official in OFFICIAL[config].items()
        if normalise(lookup(cfg, key)) != normalise(official)
    }
    assert not wrong, f'{config}: (ours, official) {wrong}'


@pytest.mark.parametrize('config', sorted(OFFICIAL))
def test_readme_lists_every_setting(config):
    rows = readme_rows(config)
    assert rows.keys() == OFFICIAL[config].keys()
    cfg = Config.fromfile(osp.join(REPO, config))
    for key, (official, ours) in rows.items():
        assert normalise(official) == normalise(OFFICIAL[config][key]), key
        assert normalise(ours) == normalise(lookup(cfg, key)), key
