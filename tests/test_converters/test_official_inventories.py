# Copyright (c) OpenMMLab. All rights reserved.
"""The official parameter inventories against the counts and sizes derived from
the released symbols and prototxts (msracver/FCIS
fcis/symbols/resnet_v1_101_fcis.py; daijifeng001/MNC
models/VGG16/mnc_5stage/train.prototxt)."""
import math

import pytest

from mnc_mm.converters import ndarray_list_nbytes
from mnc_mm.converters.fcis_official import (FCIS_COCO, FCIS_VOC,
                                             TEST_BBOX_KEYS,
                                             fcis_official_params,
                                             resnet_v1_101_params)
from mnc_mm.converters.mnc_official import (SHARED_LAYERS,
                                            mnc_official_params)


def _floats(shapes):
    return sum(math.prod(shape) for shape in shapes)


@pytest.mark.parametrize('dataset, floats, sizes', [
    (FCIS_COCO, 57_997_970, (232_022_115, 232_027_691, 232_029_819)),
    (FCIS_VOC, 51_961_736, (207_877_179, 207_882_755, 207_884_883)),
])
def test_fcis_inventory_counts_and_file_sizes(dataset, floats, sizes):
    params = fcis_official_params(**dataset)
    assert len(params) == 532
    assert sum(k.startswith('arg:') for k in params) == 324
    assert sum(k.startswith('aux:') for k in params) == 208
    assert _floats(params.values()) == floats
    for variant, size in zip(('legacy', 'v1', 'v2'), sizes):
        assert ndarray_list_nbytes(params, variant) == size


def test_fcis_test_bbox_keys_add_two_arrays():
    params = fcis_official_params(**FCIS_COCO, with_test_bbox=True)
    assert list(params)[-2:] == list(TEST_BBOX_KEYS)
    assert params['arg:fcis_bbox_weight_test'] == (392, 1024, 1, 1)
    assert params['arg:fcis_bbox_bias_test'] == (392, )
    assert ndarray_list_nbytes(params) == 233_629_431


def test_fcis_named_shapes():
    coco = fcis_official_params(**FCIS_COCO)
    voc = fcis_official_params(**FCIS_VOC)
    assert coco['arg:fcis_cls_seg_weight'] == (7938, 1024, 1, 1)
    assert voc['arg:fcis_cls_seg_weight'] == (2058, 1024, 1, 1)
    assert coco['arg:rpn_cls_score_weight'] == (24, 512, 1, 1)
    assert voc['arg:rpn_bbox_pred_bias'] == (36, )
    assert coco['arg:rpn_conv_3x3_weight'] == (512, 1024, 3, 3)
    assert coco['arg:conv_new_1_weight'] == (1024, 2048, 1, 1)
    assert coco['arg:conv1_weight'] == (64, 3, 7, 7)
    assert coco['aux:bn_conv1_moving_var'] == (64, )
    assert coco['arg:res3a_branch2a_weight'] == (128, 256, 1, 1)
    assert coco['arg:res3a_branch1_weight'] == (512, 256, 1, 1)
    assert coco['arg:res4b22_branch2c_weight'] == (1024, 256, 1, 1)
    assert coco['arg:bn4b22_branch2c_gamma'] == (1024, )
    assert coco['arg:res5c_branch2b_weight'] == (512, 512, 3, 3)
    assert 'arg:res4b23_branch2a_weight' not in coco
    assert 'arg:res2b1_branch2a_weight' not in coco


def test_resnet_backbone_has_104_convs_and_104_bns():
    params = resnet_v1_101_params()
    convs = [k for k in params if k.endswith('_weight')]
    gammas = [k for k in params if k.endswith('_gamma')]
    assert len(convs) == 104 and len(gammas) == 104
    assert len(params) == 104 + 4 * 104
    projections = sorted(k for k in convs if 'branch1' in k)
    assert projections == [f'arg:res{s}a_branch1_weight' for s in (2, 3, 4, 5)]
    assert not any(k.endswith('_bias') for k in params)


def test_mnc_inventory():
    params = mnc_official_params()
    assert len(params) == 25
    assert _floats(s for blobs in params.values() for s in blobs) == \
        283_029_933
    assert params['fc6_maskest'] == [(256, 100352), (256, )]
    assert params['mask_pred'] == [(441, 256), (441, )]
    assert params['fc6'] == [(4096, 25088), (4096, )]
    assert params['fc6_mask'] == params['fc6']
    assert params['cls_score'] == [(21, 8192), (21, )]
    assert params['seg_cls_score'] == params['cls_score']
    assert params['bbox_pred'] == [(84, 8192), (84, )]
    assert params['rpn_cls_score'] == [(18, 512, 1, 1), (18, )]
    assert params['conv1_1'] == [(64, 3, 3, 3), (64, )]
    assert params['conv4_1'] == [(512, 256, 3, 3), (512, )]
    assert not set(SHARED_LAYERS) & set(params)
    assert {name[:-len('_ext')] for name in SHARED_LAYERS} <= set(params)
