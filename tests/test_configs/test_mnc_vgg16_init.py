# Copyright (c) OpenMMLab. All rights reserved.
"""The VGG-16 MNC paper configs start from the official init
``VGG16.mask.caffemodel`` (daijifeng001/MNC experiments/scripts/
mnc_5stage.sh), converted with ``mnc_caffe_to_mmdet.py --init``: the
converted file covers every layer of the model except those the official
train prototxt initialises with fillers, and holds nothing else."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmdet.registry import MODELS
from mnc_mm.converters.mnc_official import (HEADS, caffe_arrays,
                                            convert_vgg16_imagenet_arrays)
from official_files import synthetic_caffe_net, vgg16_mask_params

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
VGG_CONFIGS = sorted(
    p for p in glob.glob(osp.join(REPO, 'configs', 'mnc', 'mnc_vgg16_*.py'))
    if 'official' not in p)
# Layers with a weight_filler in models/VGG16/mnc_5stage/train.prototxt.
FILLED = ('rpn_conv_3x3', 'rpn_cls_score', 'rpn_bbox_pred', 'fc6_maskest',
          'mask_pred', 'cls_score', 'seg_cls_score', 'bbox_pred')
INIT_FILE = 'checkpoints/vgg16_mask_init.pth'


def test_every_vgg16_paper_config_is_checked():
    assert [osp.basename(p) for p in VGG_CONFIGS] == [
        'mnc_vgg16_3stage_8xb1-40k_sbd.py',
        'mnc_vgg16_5stage_8xb1-40k_sbd.py']


@pytest.fixture(scope='module')
def converted_init():
    """The full-size synthetic VGG16.mask.caffemodel, converted."""
    state_dict, report = convert_vgg16_imagenet_arrays(
        caffe_arrays(synthetic_caffe_net(vgg16_mask_params())))
    assert report == dict(mask_pathway_converted=True,
                          not_converted=['fc8'])
    return state_dict


@pytest.mark.parametrize('path', VGG_CONFIGS, ids=osp.basename)
def test_paper_config_loads_the_official_init(path, converted_init):
    cfg = Config.fromfile(path)
    assert cfg.load_from == INIT_FILE
    # nothing else initialises the trunk or the fcs from another file
    assert cfg.model.backbone.init_cfg is None
    assert all(init.type in ('Xavier', 'Normal')
               for init in cfg.model.roi_head.cls_head.init_cfg)
    pre = cfg.model.data_preprocessor
    assert (pre.bgr_to_rgb, pre.mean, pre.std) == (
        False, [102.9801, 115.9465, 122.7717], [1.0, 1.0, 1.0])

    init_default_scope('mmdet')
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    # meta parameters: shapes are checked, nothing is copied
    result = model.load_state_dict(converted_init, strict=False,
                                   assign=True)
    assert result.unexpected_keys == []
    assert sorted({k.rsplit('.', 1)[0] for k in result.missing_keys}) == \
        sorted(HEADS[layer] for layer in FILLED)
