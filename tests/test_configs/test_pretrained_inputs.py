# Copyright (c) OpenMMLab. All rights reserved.
"""Every paper config feeds its weights the input they were trained on,
and starts every layer the paper initialises from ImageNet from it."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(
    glob.glob(osp.join(REPO, 'configs', 'fcis', '*.py')) +
    glob.glob(osp.join(REPO, 'configs', 'mnc', '*.py')))

CAFFE_VGG = ('BGR', (102.9801, 115.9465, 122.7717))  # py-faster-rcnn means
CAFFE_RESNET = ('BGR', (103.530, 116.280, 123.675))  # detectron2's
# ImageNet weights a trunk starts from -> (channel order, mean); std is 1.
PRETRAINED_INPUTS = {
    'open-mmlab://detectron2/resnet50_caffe': CAFFE_RESNET,
    'open-mmlab://detectron2/resnet101_caffe': CAFFE_RESNET,
}
# Configs whose trunk comes with load_from: a converted official file.
OFFICIAL_INPUTS = {
    # the official init VGG16.mask.caffemodel of daijifeng001/MNC, converted
    # with mnc_caffe_to_mmdet.py --init: Caffe VGG-16, BGR
    'mnc_vgg16_5stage_8xb1-40k_sbd.py': CAFFE_VGG,
    'mnc_vgg16_3stage_8xb1-40k_sbd.py': CAFFE_VGG,
    # MXNet resnet_v1 of msracver/FCIS: RGB minus the yaml's PIXEL_MEANS
    'fcis_r101-c4_official-coco.py': ('RGB', (123.15, 115.90, 103.06)),
    # Caffe VGG-16 of daijifeng001/MNC: BGR minus lib/mnc_config.py's
    'mnc_vgg16_official-sbd.py': CAFFE_VGG,
}


def _input(cfg):
    pre = cfg.model.data_preprocessor
    assert list(pre.std) == [1.0, 1.0, 1.0]
    order = 'RGB' if pre.get('bgr_to_rgb', False) else 'BGR'
    return order, tuple(pre.mean)


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_input_matches_the_weights(path):
    cfg = Config.fromfile(path)
    name = osp.basename(path)
    init = cfg.model.backbone.get('init_cfg')
    if name in OFFICIAL_INPUTS:
        assert init is None, f'{name}: the trunk comes with load_from'
        expected = OFFICIAL_INPUTS[name]
    else:
        assert init is not None and init.type == 'Pretrained', \
            f'{name}: a paper config trains from ImageNet weights'
        expected = PRETRAINED_INPUTS[init.checkpoint]
    order, mean = _input(cfg)
    assert order == expected[0], f'{name}: {init} expects {expected[0]}'
    assert mean == pytest.approx(expected[1], abs=1e-3)
