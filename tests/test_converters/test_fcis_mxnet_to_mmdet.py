# Copyright (c) OpenMMLab. All rights reserved.
"""tools/model_converters/fcis_mxnet_to_mmdet.py: the full-size inventory
against the official config's model (meta device), and a tiny end-to-end
conversion of a synthetic official file."""
import hashlib
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config

from mnc_mm.converters import WeightFileError, encode_ndarray_dict
from mnc_mm.converters.fcis_official import (TEST_BBOX_KEYS,
                                             bn_num_batches_tracked,
                                             fcis_name_map,
                                             fcis_official_params,
                                             resnet_v1_101_name_map)
from mnc_mm.converters.model_check import model_state_shapes

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOLS = osp.join(REPO, 'tools', 'model_converters')
CONFIG = osp.join(REPO, 'configs', 'fcis', 'fcis_r101-c4_official-coco.py')
COCO_CLASSES_HEAD = ('person', 'bicycle', 'car', 'motorcycle', 'airplane')
# A ResNet-101 FCIS at 1/16 width with 2 classes: same keys, small tensors.
TINY = f'''
_base_ = {CONFIG!r}
model = dict(
    backbone=dict(base_channels=4),
    neck=dict(in_channels=[128], out_channels=16),
    rpn_head=dict(in_channels=64, feat_channels=8),
    roi_head=dict(mask_head=dict(num_classes=2, in_channels=16)))
test_dataloader = dict(dataset=dict(metainfo=dict(classes=('a', 'b'))))
'''


@pytest.fixture(scope='module')
def tool():
    """The converter module, imported as the script imports it."""
    sys.path.insert(0, TOOLS)
    try:
        import fcis_mxnet_to_mmdet
        yield fcis_mxnet_to_mmdet
    finally:
        sys.path.remove(TOOLS)


def test_official_config_settings():
    cfg = Config.fromfile(CONFIG)
    preprocessor = cfg.model.data_preprocessor
    assert preprocessor.bgr_to_rgb is True
    assert preprocessor.mean == [123.15, 115.90, 103.06]
    assert preprocessor.std == [1.0, 1.0, 1.0]
    assert cfg.model.backbone.type == 'ResNetCeilPool'
    assert cfg.model.backbone.depth == 101
    anchors = cfg.model.rpn_head.anchor_generator
    assert len(anchors.ratios) * len(anchors.scales) == 12
    assert cfg.model.rpn_head.loss_cls.use_sigmoid is False
    stds = tuple(cfg.model.roi_head.mask_head.bbox_coder.target_stds)
    assert stds == (0.2, 0.2, 0.5, 0.5)


def test_full_size_inventory_maps_onto_the_model():
    shapes = model_state_shapes(Config.fromfile(CONFIG))
    names = fcis_name_map()
    official = fcis_official_params()  # COCO: C = 81, A = 12
    converted = {names[k]: shape for k, shape in official.items()}
    converted.update({k: () for k in bn_num_batches_tracked(names)})
    assert converted == shapes  # same keys, same shapes, nothing left over


def _synthetic_official_file(path, shapes, with_test=False):
    """Official names, shapes of the tiny model, array i = i + arange/n."""
    names = fcis_name_map()
    arrays = {}
    for i, (name, key) in enumerate(names.items()):
        size = int(np.prod(shapes[key]))
        arrays[name] = (i + np.arange(size) / (size + 1)).astype(
            np.float32).reshape(shapes[key])
    if with_test:
        for key in TEST_BBOX_KEYS:
            arrays[key] = -arrays[key[:-len('_test')]]
    path.write_bytes(encode_ndarray_dict(arrays))
    return arrays


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('fcis_convert')
    config = tmp / 'tiny_fcis.py'
    config.write_text(TINY)
    cfg = Config.fromfile(str(config))
    params = tmp / 'fcis_tiny-0000.params'
    arrays = _synthetic_official_file(params, model_state_shapes(cfg),
                                      with_test=True)
    return tmp, str(config), cfg, str(params), arrays


def test_cli_end_to_end(tiny):
    tmp, config, cfg, params, arrays = tiny
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1')
    out = subprocess.run(
        [sys.executable, osp.join(TOOLS, 'fcis_mxnet_to_mmdet.py'), params,
         str(tmp / 'out' / 'fcis_tiny.pth'), '--config', config],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.strip().splitlines()
    assert 'read 534 arrays (legacy MXNet records)' in lines[0]
    assert 'fcis_bbox_*_test arrays: present' in lines[1]
    assert 'normalised box weights' in lines[1]
    published = lines[-1]
    digest = hashlib.sha256(open(published, 'rb').read()).hexdigest()
    assert published == str(tmp / 'out' / f'fcis_tiny-{digest[:8]}.pth')
    assert os.listdir(tmp / 'out') == [osp.basename(published)]

    checkpoint = torch.load(published, weights_only=True)
    assert sorted(checkpoint) == ['meta', 'state_dict']
    meta = checkpoint['meta']
    assert meta['converted_from'] == dict(
        file='fcis_tiny-0000.params',
        sha256=hashlib.sha256(open(params, 'rb').read()).hexdigest(),
        format='mxnet-ndarray-list', variant='legacy', num_arrays=534)
    assert meta['bbox_weights'] == 'normalised'
    assert meta['test_bbox_keys_found'] is True
    assert meta['bbox_target_stds'] == (0.2, 0.2, 0.5, 0.5)
    assert meta['dataset_meta'] == dict(classes=('a', 'b'))

    from mmdet.registry import MODELS
    model = MODELS.build(cfg.model)
    model.load_state_dict(checkpoint['state_dict'], strict=True)
    model.eval()
    state = model.state_dict()
    for name, key in fcis_name_map().items():
        expected = arrays[name]
        if name.startswith('arg:rpn_cls_score'):  # (2, A) -> (A, 2), fg
            expected = expected.reshape(2, 12, -1)[::-1].transpose(
                1, 0, 2).reshape(expected.shape)
        np.testing.assert_array_equal(state[key].numpy(), expected,
                                      err_msg=key)

    # The RPN gives the official foreground probabilities.
    feat = torch.randn(1, 64, 3, 5)
    with torch.no_grad():
        cls_score = model.rpn_head.forward_single(feat)[0][0]
        hidden = torch.relu(model.rpn_head.rpn_conv(feat))[0]
        official = torch.einsum(
            'oc,chw->ohw',
            torch.from_numpy(arrays['arg:rpn_cls_score_weight'][:, :, 0, 0]),
            hidden) + torch.from_numpy(
                arrays['arg:rpn_cls_score_bias'])[:, None, None]
    ours = cls_score.permute(1, 2, 0).reshape(-1, 2).softmax(-1)[:, 0]
    reference = official.reshape(2, 12, 3, 5).softmax(0)[1]
    torch.testing.assert_close(ours, reference.permute(1, 2, 0).reshape(-1))


def test_test_box_weights_need_matching_stds(tiny, tool):
    tmp, config, _, params, arrays = tiny
    with pytest.raises(ValueError, match=r'target_stds=.*\(1.0, 1.0, 1.0, '):
        tool.convert(params, str(tmp / 'test.pth'), config, 'test')
    path, meta = tool.convert(
        params, str(tmp / 'test.pth'), config, 'test',
        {'model.roi_head.mask_head.bbox_coder.target_stds':
         (1.0, 1.0, 1.0, 1.0)})
    state_dict = torch.load(path, weights_only=True)['state_dict']
    np.testing.assert_array_equal(
        state_dict['roi_head.mask_head.conv_bbox.weight'].numpy(),
        arrays['arg:fcis_bbox_weight_test'])
    assert meta['bbox_weights'] == 'test'


def test_wrong_files_fail_clearly_and_write_nothing(tiny, tool, tmp_path):
    _, config, cfg, params, _ = tiny
    out = str(tmp_path / 'x.pth')
    # the COCO-size tiny file against the official (81-class) config
    with pytest.raises(ValueError, match=r'tensors do not have the shape.*'
                       r'backbone\.bn1\.bias: model \(64,\), converted \(4,'):
        tool.convert(params, out, CONFIG)
    bad = tmp_path / 'mnc_model.caffemodel.h5'
    bad.write_bytes(b'\x89HDF\r\n\x1a\n' + bytes(64))
    with pytest.raises(WeightFileError, match='MXNet NDArray-list magic'):
        tool.convert(str(bad), out, config)
    truncated = tmp_path / 'cut.params'
    truncated.write_bytes(open(params, 'rb').read()[:5000])
    with pytest.raises(WeightFileError, match='truncated'):
        tool.convert(str(truncated), out, config)
    assert sorted(os.listdir(tmp_path)) == ['cut.params',
                                            'mnc_model.caffemodel.h5']
    # a file of another model (ImageNet ResNet-101 with its classifier)
    backbone_only = tmp_path / 'resnet_v1_101-0000.params'
    backbone_only.write_bytes(encode_ndarray_dict(
        {'arg:fc1000_weight': np.zeros((3, 2), np.float32),
         'arg:conv1_weight': np.zeros((4, 3, 7, 7), np.float32)}))
    with pytest.raises(KeyError, match="531 missing.*1 unexpected: "
                       "'arg:fc1000_weight'"):
        tool.convert(str(backbone_only), out, config)


def test_imagenet_init_to_backbone_weights(tiny, tool, tmp_path):
    _, config, cfg, _, _ = tiny
    names = resnet_v1_101_name_map(prefix='')
    shapes = model_state_shapes(cfg, 'backbone')
    arrays = {name: np.full(shapes[key], i, np.float32)
              for i, (name, key) in enumerate(names.items())}
    arrays['arg:fc1000_weight'] = np.zeros((1000, 128), np.float32)
    arrays['arg:fc1000_bias'] = np.zeros(1000, np.float32)
    params = tmp_path / 'resnet_v1_101-0000.params'
    params.write_bytes(encode_ndarray_dict(arrays, variant='v1'))
    path, meta = tool.convert(str(params), str(tmp_path / 'r101.pth'),
                              config, backbone_only=True)
    assert meta['classifier_keys_found'] is True
    assert meta['converted_from']['variant'] == 'v1'
    from mmdet.registry import MODELS
    backbone = MODELS.build(cfg.model.backbone)
    backbone.load_state_dict(
        torch.load(path, weights_only=True)['state_dict'], strict=True)
    for i, key in enumerate(names.values()):
        assert (backbone.state_dict()[key] == i).all(), key
