# Copyright (c) OpenMMLab. All rights reserved.
"""The FCIS name map and layout changes, on small synthetic arrays and with
mmdet's own RPNHead reading the converted classifier."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmdet.models.dense_heads import RPNHead

from mnc_mm.converters.fcis_official import (TEST_BBOX_KEYS,
                                             convert_fcis_arrays,
                                             fcis_name_map,
                                             fcis_official_params)
from mnc_mm.converters.model_check import check_state_dict
from mnc_mm.converters.rpn_layout import rpn_cls_official_to_mmdet_softmax


def _official_fg_probability(score, num_anchors):
    """FCIS: reshape (2, A, H, W), softmax over axis 0, take k = 1; in
    mmdet's (h, w, a) order."""
    by_class = score.reshape(2, num_anchors, *score.shape[1:])
    exp = np.exp(by_class - by_class.max(0))
    fg = exp[1] / exp.sum(0)
    return fg.transpose(1, 2, 0).ravel()


def test_mmdet_rpn_head_reads_converted_scores_and_deltas(monkeypatch):
    num_anchors, channels, height, width = 12, 6, 3, 4
    head = RPNHead(
        in_channels=channels, feat_channels=channels,
        anchor_generator=dict(type='AnchorGenerator', strides=[16],
                              ratios=[0.5, 1.0, 2.0],
                              scales=[2, 4, 8, 16]),
        loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False))
    assert head.rpn_cls.out_channels == 2 * num_anchors
    rng = np.random.default_rng(0)
    cls_w = rng.standard_normal((2 * num_anchors, channels, 1, 1)) * 2
    cls_b = rng.standard_normal(2 * num_anchors)
    reg_w = rng.standard_normal((4 * num_anchors, channels, 1, 1)) * 0.1
    reg_b = rng.standard_normal(4 * num_anchors) * 0.1
    with torch.no_grad():
        head.rpn_cls.weight.copy_(torch.from_numpy(
            rpn_cls_official_to_mmdet_softmax(cls_w)))
        head.rpn_cls.bias.copy_(torch.from_numpy(
            rpn_cls_official_to_mmdet_softmax(cls_b)))
        head.rpn_reg.weight.copy_(torch.from_numpy(reg_w))
        head.rpn_reg.bias.copy_(torch.from_numpy(reg_b))
    feat = torch.randn(1, channels, height, width)
    captured = {}
    monkeypatch.setattr(head, '_bbox_post_process',
                        lambda results, **kwargs: captured.update(
                            results=results))
    with torch.no_grad():
        cls_scores, bbox_preds = head((feat, ))
        head.predict_by_feat(
            cls_scores, bbox_preds,
            batch_img_metas=[dict(img_shape=(48, 64))],
            cfg=dict(nms_pre=-1))
        hidden = F.relu(head.rpn_conv(feat))[0].double()
        score = F.conv2d(hidden[None], torch.from_numpy(cls_w),
                         torch.from_numpy(cls_b))[0].numpy()
        deltas = F.conv2d(hidden[None], torch.from_numpy(reg_w),
                          torch.from_numpy(reg_b))[0].numpy()
    results = captured['results']
    np.testing.assert_allclose(results.scores.numpy(),
                               _official_fg_probability(score, num_anchors),
                               atol=1e-6)
    # official rpn_bbox_pred channel a * 4 + c, read per (h, w, a)
    official_rows = deltas.transpose(1, 2, 0).reshape(-1, 4)
    anchors = head.prior_generator.grid_priors(
        [(height, width)], device='cpu')[0]
    expected = head.bbox_coder.decode(
        anchors, torch.from_numpy(official_rows).float(),
        max_shape=(48, 64))
    torch.testing.assert_close(results.bboxes, expected, atol=1e-4,
                               rtol=1e-5)


def test_rpn_layout_by_hand():
    old = np.array([10, 11, 12, 20, 21, 22])  # bg a0..a2, fg a0..a2
    np.testing.assert_array_equal(rpn_cls_official_to_mmdet_softmax(old),
                                  [20, 10, 21, 11, 22, 12])
    with pytest.raises(ValueError, match=r'even first dim.*\(5, 2\)'):
        rpn_cls_official_to_mmdet_softmax(np.zeros((5, 2)))


def _id_arrays(names, size=6):
    """Array i holds i * 100 + [0, 1, ..., size - 1]."""
    return {name: (i * 100 + np.arange(size)).astype(np.float32)
            for i, name in enumerate(names)}


def test_name_map_covers_the_inventory_once():
    names = fcis_name_map()
    assert set(names) == set(fcis_official_params())
    assert len(set(names.values())) == len(names) == 532


@pytest.mark.parametrize('with_test', [False, True])
def test_every_target_gets_its_source(with_test):
    names = fcis_name_map()
    official = list(names) + (list(TEST_BBOX_KEYS) if with_test else [])
    arrays = _id_arrays(official)
    state_dict, report = convert_fcis_arrays(arrays)
    assert report == dict(test_bbox_keys_found=with_test,
                          bbox_weights='normalised',
                          bbox_target_stds=(0.2, 0.2, 0.5, 0.5))
    tracked = {k for k in state_dict if k.endswith('num_batches_tracked')}
    assert len(tracked) == 104
    assert all(state_dict[k].dtype == torch.long and state_dict[k] == 0
               for k in tracked)
    assert len(state_dict) == 532 + 104
    for name, key in names.items():
        expected = arrays[name]
        if name.startswith('arg:rpn_cls_score'):
            expected = expected.reshape(2, 3)[::-1].T.ravel()
        assert state_dict[key].dtype == torch.float32
        np.testing.assert_array_equal(state_dict[key].numpy(), expected,
                                      err_msg=f'{name} -> {key}')


def test_bbox_weights_test_takes_the_test_copies():
    arrays = _id_arrays(list(fcis_name_map()) + list(TEST_BBOX_KEYS))
    state_dict, report = convert_fcis_arrays(arrays, 'test')
    assert report['bbox_target_stds'] == (1.0, 1.0, 1.0, 1.0)
    np.testing.assert_array_equal(
        state_dict['roi_head.mask_head.conv_bbox.weight'].numpy(),
        arrays['arg:fcis_bbox_weight_test'])
    np.testing.assert_array_equal(
        state_dict['roi_head.mask_head.conv_bbox.bias'].numpy(),
        arrays['arg:fcis_bbox_bias_test'])
    del arrays[TEST_BBOX_KEYS[1]]
    with pytest.raises(KeyError, match='found only .arg:fcis_bbox_weight_'):
        convert_fcis_arrays(arrays)
    del arrays[TEST_BBOX_KEYS[0]]
    with pytest.raises(KeyError, match='does not hold'):
        convert_fcis_arrays(arrays, 'test')
    with pytest.raises(ValueError, match="one of \\('normalised', 'test'\\)"):
        convert_fcis_arrays(arrays, 'raw')


def test_wrong_model_files_are_listed():
    arrays = _id_arrays(fcis_name_map())
    arrays['arg:fc1000_weight'] = np.zeros(2, np.float32)
    del arrays['arg:fcis_cls_seg_bias']
    with pytest.raises(KeyError) as info:
        convert_fcis_arrays(arrays, source='x.params')
    message = info.value.args[0]
    assert "1 missing: 'arg:fcis_cls_seg_bias'" in message
    assert "1 unexpected: 'arg:fc1000_weight'" in message
    assert message.startswith('x.params: expected the 532 arrays')
    arrays = _id_arrays(fcis_name_map())
    arrays['arg:conv1_weight'] = None
    with pytest.raises(ValueError, match="'arg:conv1_weight'.*found none"):
        convert_fcis_arrays(arrays)


def test_check_state_dict_lists_problems():
    shapes = {'a.weight': (2, 3), 'b.bias': (4, )}
    check_state_dict({'a.weight': torch.zeros(2, 3),
                      'b.bias': torch.zeros(4)}, shapes)
    with pytest.raises(KeyError, match=r"1 missing keys \['b.bias'\], 1 "
                       r"unexpected keys \['c.bias'\]"):
        check_state_dict({'a.weight': torch.zeros(2, 3),
                          'c.bias': torch.zeros(4)}, shapes)
    with pytest.raises(ValueError,
                       match=r'b.bias: model \(4,\), converted \(5,\)'):
        check_state_dict({'a.weight': torch.zeros(2, 3),
                          'b.bias': torch.zeros(5)}, shapes)
