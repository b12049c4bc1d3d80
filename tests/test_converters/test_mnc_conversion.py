# Copyright (c) OpenMMLab. All rights reserved.
"""The MNC name map and layout changes on small synthetic Caffe blobs."""
import sys

import numpy as np
import pytest
import torch

from mnc_mm.converters.caffe_weights import load_caffe_weights
from mnc_mm.converters.mnc_official import (BBOX_STDS, caffe_arrays,
                                            convert_mnc_arrays,
                                            convert_vgg16_imagenet_arrays,
                                            mnc_name_map,
                                            mnc_official_params,
                                            plain_shape)
from protobuf_wire import blob, layer, net


def test_name_map_covers_the_inventory_once():
    names = mnc_name_map()
    assert len(names) == len(set(names.values())) == 50
    inventory = mnc_official_params()
    assert {name.split('/')[0] for name in names} == set(inventory)
    assert names['conv4_1/0'] == 'backbone.features.17.weight'
    assert names['conv5_3/1'] == 'backbone.features.28.bias'
    assert names['fc7_mask/0'] == 'roi_head.bbox_head.mask_fcs.2.weight'


def _legacy(shape):
    """A legacy 4-D Caffe blob shape: leading 1s."""
    return (1, ) * (4 - len(shape)) + tuple(shape)


def _id_arrays(legacy_dims=False):
    """Small official blobs; array i holds i + arange / n."""
    arrays = {}
    for i, name in enumerate(mnc_name_map()):
        layer, blob = name.split('/')
        rows = {'rpn_cls_score': 6, 'bbox_pred': 12}.get(layer, 3)
        shape = (rows, ) if blob == '1' else (
            (rows, 2, 1, 1) if layer.startswith(('conv', 'rpn')) else
            (rows, 5))
        if legacy_dims:
            shape = _legacy(shape)
        size = int(np.prod(shape))
        arrays[name] = (i + np.arange(size) / size).reshape(shape)
    return arrays


@pytest.mark.parametrize('legacy_dims', [False, True])
def test_every_target_gets_its_source(legacy_dims):
    arrays = _id_arrays(legacy_dims)
    arrays['fc6_ext/0'] = arrays['fc6/0']  # a protobuf copy of a shared blob
    state_dict, report = convert_mnc_arrays(arrays)
    assert report == dict(bbox_pred_divided_by=(0.1, 0.1, 0.2, 0.2))
    assert len(state_dict) == 50
    stds = np.array([0.1, 0.1, 0.2, 0.2] * 3)
    for name, key in mnc_name_map().items():
        layer, blob = name.split('/')
        source = arrays[name]
        if layer.startswith(('conv', 'rpn')):
            expected = source.reshape(-1, 2, 1, 1) if blob == '0' else \
                source.ravel()
        else:
            expected = source.reshape(-1, 5) if blob == '0' else \
                source.ravel()
        if layer == 'rpn_cls_score':  # (2, A) bg first -> (A, 2) fg first
            expected = expected.reshape(2, 3, -1)[::-1].transpose(
                1, 0, 2).reshape(expected.shape)
        if layer == 'bbox_pred':
            expected = expected / stds.reshape(-1, *[1] * (
                expected.ndim - 1))
        assert state_dict[key].dtype == torch.float32
        np.testing.assert_allclose(state_dict[key].numpy(), expected,
                                   rtol=1e-7, err_msg=f'{name} -> {key}')


def test_renormalised_regressor_decodes_the_same_boxes():
    from mmdet.registry import TASK_UTILS

    import mnc_mm  # noqa: F401
    rng = np.random.default_rng(0)
    released = rng.standard_normal((84, 8192)).astype(np.float32) * 0.01
    bias = rng.standard_normal(84).astype(np.float32) * 0.01
    feat = rng.standard_normal(8192).astype(np.float32)
    arrays = _id_arrays()
    arrays['bbox_pred/0'], arrays['bbox_pred/1'] = released, bias
    state_dict, _ = convert_mnc_arrays(arrays)
    # Both products in float64: two float32 dot products of length 8192
    # summed in different orders (numpy's BLAS vs torch's kernel, which
    # vary with the CPU and thread count) differ by ~3e-6 in a delta, and
    # the decode turns that into ~3e-4 px (dx * w, exp(dw) * w). What is
    # compared is then only the conversion: the float32 rounding of
    # released / std.
    feat = torch.from_numpy(feat).double()
    raw = (torch.from_numpy(released).double() @ feat +
           torch.from_numpy(bias).double()).view(21, 4)
    ours = (state_dict['roi_head.bbox_head.fc_reg.weight'].double() @ feat +
            state_dict['roi_head.bbox_head.fc_reg.bias'].double()).view(21, 4)
    rois = torch.tensor([[10., 20., 110., 80.]]).double().expand(21, 4)
    coder = dict(type='PlusOneDeltaXYWHBBoxCoder')
    official = TASK_UTILS.build(coder).decode(rois, raw)
    converted = TASK_UTILS.build(dict(coder, target_stds=BBOX_STDS)).decode(
        rois, ours)
    torch.testing.assert_close(converted, official, rtol=1e-5, atol=1e-4)


def test_plain_shape_only_drops_leading_ones():
    assert plain_shape(np.zeros((1, 1, 4, 3)), 2).shape == (4, 3)
    assert plain_shape(np.zeros((1, 1, 1, 4)), 1).shape == (4, )
    assert plain_shape(np.zeros((2, 1, 4, 3)), 2).shape == (2, 1, 4, 3)
    assert plain_shape(np.zeros((4, 3)), 2).shape == (4, 3)


def test_wrong_model_arrays_are_listed():
    arrays = _id_arrays()
    arrays['fc8/0'] = np.zeros((1000, 5))
    del arrays['mask_pred/1']
    with pytest.raises(KeyError) as info:
        convert_mnc_arrays(arrays, 'vgg.caffemodel')
    message = info.value.args[0]
    assert "1 missing: 'mask_pred/1'" in message
    assert "1 unexpected: 'fc8/0'" in message


def test_caffe_weights_dispatch_on_the_first_bytes(tmp_path, monkeypatch):
    path = tmp_path / 'weights.h5'  # the name does not decide
    path.write_bytes(net(layer('conv1_1', 'Convolution',
                               [blob([1, 2], shape=(2, ))])))
    caffe_net = load_caffe_weights(str(path))
    assert caffe_net.format == 'protobuf'
    assert caffe_arrays(caffe_net)['conv1_1/0'].tolist() == [1.0, 2.0]
    path.write_bytes(b'\x89HDF\r\n\x1a\n' + bytes(64))
    monkeypatch.setitem(sys.modules, 'h5py', None)
    with pytest.raises(ImportError, match='h5py'):
        load_caffe_weights(str(path))


def test_imagenet_init_takes_the_trunk_and_the_fc_pathways():
    fcs = ('fc6', 'fc7', 'fc6_mask', 'fc7_mask')
    arrays = {name: array for name, array in _id_arrays(True).items()
              if name.startswith('conv') or name.split('/')[0] in fcs}
    arrays['fc8/0'] = np.zeros((1, 1, 10, 3))
    state_dict, report = convert_vgg16_imagenet_arrays(arrays)
    assert report == dict(mask_pathway_converted=True,
                          not_converted=['fc8'])
    assert len(state_dict) == 2 * (13 + 4)
    np.testing.assert_array_equal(
        state_dict['roi_head.bbox_head.mask_fcs.2.weight'].numpy(),
        arrays['fc7_mask/0'].reshape(3, 5).astype(np.float32))
    for name in ('fc6_mask/0', 'fc6_mask/1', 'fc7_mask/0', 'fc7_mask/1'):
        del arrays[name]
    state_dict, report = convert_vgg16_imagenet_arrays(arrays)
    assert report['mask_pathway_converted'] is False
    assert not any('mask_fcs' in key for key in state_dict)
    del arrays['conv3_2/1']
    with pytest.raises(KeyError, match="1 missing: 'conv3_2/1'"):
        convert_vgg16_imagenet_arrays(arrays)
