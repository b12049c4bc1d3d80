# Copyright (c) OpenMMLab. All rights reserved.
"""tools/model_converters/mnc_caffe_to_mmdet.py: the full-size inventory
against the official config's model (meta device), and a tiny end-to-end
conversion of synthetic official files (protobuf; HDF5 where h5py is)."""
import hashlib
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config

from mnc_mm.converters import WeightFileError, encode_ndarray_list
from mnc_mm.converters.mnc_official import (SHARED_LAYERS, mnc_name_map,
                                            mnc_official_params)
from mnc_mm.converters.model_check import model_state_shapes
from protobuf_wire import blob, layer, ld, net, text, vint

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOLS = osp.join(REPO, 'tools', 'model_converters')
CONFIG = osp.join(REPO, 'configs', 'mnc', 'mnc_vgg16_official-sbd.py')
# The VGG-16 trunk at full size (its widths are fixed), narrow heads.
TINY = f'''
_base_ = {CONFIG!r}
model = dict(
    rpn_head=dict(feat_channels=8),
    roi_head=dict(
        mask_head=dict(fc_channels=4),
        cls_head=dict(num_classes=2, fc_channels=8)))
test_dataloader = dict(dataset=dict(metainfo=dict(classes=('a', 'b'))))
'''
STDS = np.array([0.1, 0.1, 0.2, 0.2], np.float32)


@pytest.fixture(scope='module')
def tool():
    """The converter module, imported as the script imports it."""
    sys.path.insert(0, TOOLS)
    try:
        import mnc_caffe_to_mmdet
        yield mnc_caffe_to_mmdet
    finally:
        sys.path.remove(TOOLS)


def test_official_config_settings():
    cfg = Config.fromfile(CONFIG)
    preprocessor = cfg.model.data_preprocessor
    assert preprocessor.bgr_to_rgb is False
    assert preprocessor.mean == [102.9801, 115.9465, 122.7717]
    assert preprocessor.std == [1.0, 1.0, 1.0]
    assert cfg.model.backbone.init_cfg is None
    anchors = cfg.model.rpn_head.anchor_generator
    assert len(anchors.ratios) * len(anchors.scales) == 9
    assert cfg.model.rpn_head.loss_cls.use_sigmoid is False
    coder = cfg.model.roi_head.cls_head.bbox_coder
    assert tuple(coder.target_stds) == (0.1, 0.1, 0.2, 0.2)
    rcnn = cfg.model.test_cfg.rcnn
    assert (rcnn.num_stages, rcnn.ext_warp, rcnn.bridge_with_bg) == (
        5, 'direct', True)


def test_full_size_inventory_maps_onto_the_model():
    shapes = model_state_shapes(Config.fromfile(CONFIG))
    names = mnc_name_map()
    converted = {names[f'{layer_name}/{i}']: shape
                 for layer_name, blobs in mnc_official_params().items()
                 for i, shape in enumerate(blobs)}
    assert converted == shapes  # same keys, same shapes, nothing left over


def _official_blobs(shapes):
    """``{layer: [weight, bias]}`` in the tiny model's shapes, array i =
    i + arange / n."""
    blobs = {}
    for i, (name, key) in enumerate(mnc_name_map().items()):
        size = int(np.prod(shapes[key]))
        array = (i + np.arange(size) / (size + 1)).astype(np.float32)
        blobs.setdefault(name.split('/')[0], []).append(
            array.reshape(shapes[key]))
    return blobs


def _caffemodel(blobs):
    """A protobuf snapshot: fc weights with legacy 4-D dims, parameter-free
    layers, and ``*_ext`` layers holding copies of their owners' blobs."""
    layers = []
    for name, (weight, bias) in blobs.items():
        if weight.ndim == 2:  # as old Caffe wrote InnerProduct blobs
            parts = [blob(weight.ravel(), legacy=(1, 1) + weight.shape),
                     blob(bias, legacy=(1, 1, 1, bias.size))]
        else:
            parts = [blob(weight.ravel(), shape=weight.shape),
                     blob(bias, shape=bias.shape)]
        layers.append(layer(name, 'Convolution', parts))
        layers.append(layer(f'relu_{name}', 'ReLU'))
    for name in SHARED_LAYERS:
        weight, bias = blobs[name[:-len('_ext')]]
        layers.append(layer(name, 'InnerProduct',
                            [blob(weight.ravel(), shape=weight.shape),
                             blob(bias, shape=bias.shape)]))
    return net(*layers, name='VGG16_mnc')


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('mnc_convert')
    config = tmp / 'tiny_mnc.py'
    config.write_text(TINY)
    cfg = Config.fromfile(str(config))
    blobs = _official_blobs(model_state_shapes(cfg))
    caffemodel = tmp / 'mnc_tiny.caffemodel'
    caffemodel.write_bytes(_caffemodel(blobs))
    return tmp, str(config), cfg, str(caffemodel), blobs


def _expected(layer_name, i, array):
    """What our model must hold for official blob i of ``layer_name``."""
    if layer_name == 'rpn_cls_score':  # (2, A) bg first -> (A, 2) fg first
        array = array.reshape(2, 9, -1)[::-1].transpose(1, 0, 2).reshape(
            array.shape)
    if layer_name == 'bbox_pred':
        stds = np.tile(STDS, array.shape[0] // 4)
        array = array / (stds if i else stds[:, None])
    return array


def test_cli_end_to_end(tiny):
    tmp, config, cfg, caffemodel, blobs = tiny
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1')
    out = subprocess.run(
        [sys.executable, osp.join(TOOLS, 'mnc_caffe_to_mmdet.py'),
         caffemodel, str(tmp / 'out' / 'mnc_tiny.pth'), '--config', config],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0].startswith('read 59 layers, 34 with parameters '
                               '(caffe-protobuf)')
    published = lines[-1]
    digest = hashlib.sha256(open(published, 'rb').read()).hexdigest()
    assert published == str(tmp / 'out' / f'mnc_tiny-{digest[:8]}.pth')

    checkpoint = torch.load(published, weights_only=True)
    assert sorted(checkpoint) == ['meta', 'state_dict']
    meta = checkpoint['meta']
    assert meta['converted_from'] == dict(
        file='mnc_tiny.caffemodel',
        sha256=hashlib.sha256(open(caffemodel, 'rb').read()).hexdigest(),
        format='caffe-protobuf', num_layers=59, num_layers_with_blobs=34)
    assert meta['bbox_pred_divided_by'] == (0.1, 0.1, 0.2, 0.2)
    assert meta['dataset_meta'] == dict(classes=('a', 'b'))

    from mmdet.registry import MODELS
    model = MODELS.build(cfg.model)
    model.load_state_dict(checkpoint['state_dict'], strict=True)
    state = model.state_dict()
    names = mnc_name_map()
    for layer_name, layer_blobs in blobs.items():
        for i, array in enumerate(layer_blobs):
            key = names[f'{layer_name}/{i}']
            np.testing.assert_allclose(
                state[key].numpy(), _expected(layer_name, i, array),
                rtol=1e-6, err_msg=key)

    # The RPN gives the official foreground probabilities.
    feat = torch.randn(1, 512, 2, 3)
    weight, bias = (torch.from_numpy(a) for a in blobs['rpn_cls_score'])
    with torch.no_grad():
        cls_score = model.rpn_head((feat, ))[0][0][0]
        hidden = torch.relu(model.rpn_head.rpn_conv(feat))
        official = torch.nn.functional.conv2d(hidden, weight, bias)[0]
    ours = cls_score.permute(1, 2, 0).reshape(-1, 2).softmax(-1)[:, 0]
    reference = official.reshape(2, 9, 2, 3).softmax(0)[1]
    torch.testing.assert_close(ours, reference.permute(1, 2, 0).reshape(-1))


def test_hdf5_release_layout(tiny, tool, tmp_path):
    h5py = pytest.importorskip(
        'h5py', reason='h5py (optional, for Caffe HDF5 weights) is not '
        'installed')
    _, config, _, caffemodel, blobs = tiny
    path = tmp_path / 'mnc_model.caffemodel.h5'
    with h5py.File(path, 'w') as f:
        data = f.create_group('data')
        for name, layer_blobs in blobs.items():
            group = data.create_group(name)
            for i, array in enumerate(layer_blobs):
                group.create_dataset(str(i), data=array)
        for name in SHARED_LAYERS + ('data', 'relu1_1', 'loss_mask'):
            data.create_group(name)
    from_h5, meta = tool.convert(str(path), str(tmp_path / 'a.pth'), config)
    from_pb, _ = tool.convert(caffemodel, str(tmp_path / 'b.pth'), config)
    assert meta['converted_from']['format'] == 'caffe-hdf5'
    a = torch.load(from_h5, weights_only=True)['state_dict']
    b = torch.load(from_pb, weights_only=True)['state_dict']
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_wrong_files_fail_clearly(tiny, tool, tmp_path):
    _, config, _, caffemodel, _ = tiny
    out = str(tmp_path / 'x.pth')
    with pytest.raises(ValueError, match=r'tensors do not have the shape.*'
                       r'roi_head\.bbox_head\.box_fcs\.0\.bias: model '
                       r'\(4096,\), converted \(8,\)'):
        tool.convert(caffemodel, out, CONFIG)
    with pytest.raises(ValueError, match=r'target_stds is \(1.0, 1.0, 1.0, '
                       r'1.0\), but the converted bbox_pred'):
        tool.convert(caffemodel, out, config, {
            'model.roi_head.cls_head.bbox_coder.target_stds': (1., ) * 4})
    params = tmp_path / 'fcis_coco-0000.params'
    params.write_bytes(encode_ndarray_list([np.zeros(3, np.float32)],
                                           ['arg:conv1_weight']))
    with pytest.raises(WeightFileError, match=str(params)):
        tool.convert(str(params), out, config)
    assert sorted(os.listdir(tmp_path)) == ['fcis_coco-0000.params']


def _v1_layer(name, type_enum, arrays=()):
    """A V1LayerParameter (``layers``, field 2) with legacy 4-D blobs."""
    blobs = b''.join(
        ld(6, blob(a.ravel(), legacy=(1, ) * (4 - a.ndim) + a.shape))
        for a in arrays)
    return ld(2, text(4, name) + vint(5, type_enum) + blobs)


def test_imagenet_init_for_load_from(tiny, tool, tmp_path):
    _, config, cfg, _, blobs = tiny
    fc8 = [np.ones((10, 8), np.float32), np.ones(10, np.float32)]
    data = text(1, 'VGG_ILSVRC_16_layers')
    for name in [n for n in blobs if n.startswith('conv')] + [
            'fc6', 'fc7', 'fc6_mask', 'fc7_mask']:
        data += _v1_layer(name, 4 if name.startswith('conv') else 14,
                          blobs[name])
        data += _v1_layer(f'relu_{name}', 18)
    data += _v1_layer('fc8', 14, fc8)
    path = tmp_path / 'VGG16.mask.caffemodel'
    path.write_bytes(data)
    out, meta = tool.convert(str(path), str(tmp_path / 'init.pth'), config,
                             init=True)
    # written as named: the paper configs' load_from names this file
    assert out == str(tmp_path / 'init.pth')
    assert meta['converted_from']['format'] == 'caffe-protobuf-v1'
    assert meta['mask_pathway_converted'] is True
    assert meta['not_converted'] == ['fc8']
    from mmdet.registry import MODELS
    model = MODELS.build(cfg.model)
    result = model.load_state_dict(
        torch.load(out, weights_only=True)['state_dict'], strict=False)
    assert not result.unexpected_keys
    assert sorted({k.rsplit('.', 1)[0] for k in result.missing_keys}) == [
        'roi_head.bbox_head.fc_cls', 'roi_head.bbox_head.fc_reg',
        'roi_head.bbox_head.fc_seg_cls', 'roi_head.mask_head.fc_mask',
        'roi_head.mask_head.mask_pred', 'rpn_head.rpn_cls',
        'rpn_head.rpn_conv', 'rpn_head.rpn_reg']
    names = mnc_name_map()
    for name in ('conv1_1', 'conv5_3', 'fc6', 'fc7_mask'):
        for i, array in enumerate(blobs[name]):
            np.testing.assert_array_equal(
                model.state_dict()[names[f'{name}/{i}']].numpy(), array)
