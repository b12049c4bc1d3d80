# Copyright (c) OpenMMLab. All rights reserved.
"""Every config in configs/ builds, starts from a synthetic stand-in of the
file it names (the real file's key names and shapes), runs one training
iteration and one test image on tiny data on the CPU.

Init files (see tests/test_configs/official_files.py):

- ``open-mmlab://detectron2/resnet{50,101}_caffe``: an mmdet caffe-style
  ResNet's state dict (4 stages, no fc), as mmdet converted detectron2's
  ImageNet ResNets;
- ``checkpoints/vgg16_mask_init.pth`` (``load_from`` of the VGG-16 MNC
  paper configs): daijifeng001/MNC ``VGG16.mask.caffemodel``'s layers,
  through ``convert_vgg16_imagenet_arrays`` (as ``mnc_caffe_to_mmdet.py
  --init``);
- the converted official models (for ``tools/test.py``): every array of
  the official MNC ``.caffemodel.h5`` / FCIS ``.params``, through the
  converters.

The zero-filled official stand-ins cost no touched memory; the images are
resized to 192-256 px. Set ``MNC_SMOKE_REPORT=<file.jsonl>`` to write one
line per config (init file, input, loss, time, peak RSS).
"""
import glob
import json
import os
import os.path as osp
import resource
import time

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope

from mmdet.registry import DATASETS, MODELS
from mnc_mm.converters.fcis_official import (FCIS_COCO, convert_fcis_arrays,
                                             fcis_official_params)
from mnc_mm.converters.mnc_official import (HEADS, caffe_arrays,
                                            convert_mnc_arrays,
                                            convert_vgg16_imagenet_arrays,
                                            mnc_official_params)
from mnc_mm.converters.model_check import dataset_classes
from mnc_mm.datasets import make_shapes_dataset
from official_files import synthetic_caffe_net, vgg16_mask_params

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(p for p in glob.glob(osp.join(REPO, 'configs', '*', '*.py'))
                 if osp.basename(osp.dirname(p)) != '_base_')
# (long, short) side: the paper configs' anchors (64-512 px at stride 16,
# none across the border in training) need some to fit
SCALE = (256, 192)
VGG16_MASK_INIT = 'checkpoints/vgg16_mask_init.pth'
# layers daijifeng001/MNC train.prototxt initialises with fillers
VGG16_FILLED = ('rpn_conv_3x3', 'rpn_cls_score', 'rpn_bbox_pred',
                'fc6_maskest', 'mask_pred', 'cls_score', 'seg_cls_score',
                'bbox_pred')
OFFICIAL = {
    'mnc_vgg16_official-sbd.py': 'daijifeng001/MNC mnc_model.caffemodel.h5',
    'fcis_r101-c4_official-coco.py': 'msracver/FCIS fcis_coco-0000.params',
}


def test_every_config_is_smoked():
    assert len(CONFIGS) == 12, [osp.relpath(p, REPO) for p in CONFIGS]


@pytest.fixture(scope='module')
def shapes(tmp_path_factory):
    """A tiny shapes set (3 train, 1 val image of 64-96 px)."""
    root = str(tmp_path_factory.mktemp('smoke_shapes'))
    make_shapes_dataset(root, 3, 1, seed=0, img_size=(64, 96))
    return root


def data_for(cfg, shapes, tmp_path):
    """A copy of the shapes set whose categories are the config's classes
    (the shapes become the first three); returns its root."""
    classes = dataset_classes(cfg)
    root = tmp_path / 'data'
    (root / 'annotations').mkdir(parents=True)
    for split in ('train', 'val'):
        os.symlink(osp.join(shapes, split), root / split)
        with open(osp.join(shapes, 'annotations',
                           f'instances_{split}.json')) as f:
            coco = json.load(f)
        coco['categories'] = [dict(id=i + 1, name=name)
                              for i, name in enumerate(classes)]
        with open(root / 'annotations' / f'instances_{split}.json', 'w') as f:
            json.dump(coco, f)
    return str(root) + '/'


def shrink(cfg, data_root):
    """Point the loaders at ``data_root`` and resize to ``SCALE``."""
    for split in ('train', 'val'):
        dataset = cfg[f'{split}_dataloader'].dataset
        dataset.data_root = data_root
        dataset.ann_file = f'annotations/instances_{split}.json'
        dataset.data_prefix = dict(img=f'{split}/')
        for step in dataset.pipeline:
            if step.type == 'Resize':
                step.scale = SCALE


def resnet_caffe_state(depth):
    """Key names and shapes of open-mmlab://detectron2/resnet{depth}_caffe:
    an mmdet caffe-style ResNet of 4 stages (its own random init)."""
    from mmdet.models.backbones import ResNet
    torch.manual_seed(depth)
    net = ResNet(depth=depth, style='caffe')
    net.init_weights()
    return {k: v for k, v in net.state_dict().items()
            if not k.endswith('num_batches_tracked')}


def official_state(name):
    """The converted official model of ``name``, from zero arrays (lazily
    allocated)."""
    if name.startswith('mnc'):
        arrays = {f'{layer}/{i}': np.zeros(shape, np.float32)
                  for layer, shapes in mnc_official_params().items()
                  for i, shape in enumerate(shapes)}
        return convert_mnc_arrays(arrays)[0]
    arrays = {key: np.zeros(shape, np.float32)
              for key, shape in fcis_official_params(**FCIS_COCO).items()}
    return convert_fcis_arrays(arrays)[0]


def pretrained_inits(cfg):
    """(module path, init_cfg) of every ``Pretrained`` init in the model."""
    found = []

    def walk(node, path):
        if isinstance(node, dict):
            init = node.get('init_cfg')
            if isinstance(init, dict) and init.get('type') == 'Pretrained':
                found.append((path, init))
            for key, value in node.items():
                if key != 'init_cfg':
                    walk(value, f'{path}.{key}' if path else key)

    walk(cfg.model, '')
    return found


def synthetic_pretrained(cfg, tmp_path):
    """Write a synthetic ImageNet ResNet for each ``Pretrained`` init and
    point the init at it; returns [(module path, original name, file)]."""
    inits, files = [], {}
    for module, init in pretrained_inits(cfg):
        original = init.checkpoint
        if original not in files:
            depth = int(original.split('resnet')[1].split('_')[0])
            files[original] = str(tmp_path / f'resnet{depth}_caffe.pth')
            torch.save(resnet_caffe_state(depth), files[original])
        init.checkpoint = files[original]
        inits.append((module, original, files[original]))
    return inits


def initialise(cfg, model, name, inits):
    """Initialise ``model`` as the runner would (``init_weights``, then
    ``load_from``); returns a one-line description of the init file."""
    model.init_weights()
    for module, _, path in inits:
        state = torch.load(path, weights_only=True)
        for key, value in model.get_submodule(module).state_dict().items():
            if not key.endswith('num_batches_tracked'):
                assert key in state, f'{module}.{key}: not in the file'
                torch.testing.assert_close(value, state[key], msg=key)
    if inits:
        return 'synthetic ' + ', '.join(
            sorted({original for _, original, _ in inits}))
    if cfg.load_from == VGG16_MASK_INIT:
        state, _ = convert_vgg16_imagenet_arrays(
            caffe_arrays(synthetic_caffe_net(vgg16_mask_params())))
        result = model.load_state_dict(state, strict=False)
        assert result.unexpected_keys == []
        assert sorted({k.rsplit('.', 1)[0] for k in result.missing_keys}) \
            == sorted(HEADS[layer] for layer in VGG16_FILLED)
        return 'synthetic VGG16.mask.caffemodel, converted --init'
    if name in OFFICIAL:
        model.load_state_dict(official_state(name), strict=True)
        return f'synthetic {OFFICIAL[name]}, converted'
    assert cfg.load_from is None
    return 'none (from scratch)'


def input_of(cfg):
    pre = cfg.model.data_preprocessor
    order = 'RGB' if pre.get('bgr_to_rgb', False) else 'BGR'
    return f'{order} - {list(pre.mean)} / {list(pre.std)}'


@pytest.mark.parametrize('path', CONFIGS,
                         ids=lambda p: osp.relpath(p, REPO))
def test_config_smoke(path, shapes, tmp_path):
    start = time.perf_counter()
    name = osp.basename(path)
    cfg = Config.fromfile(path)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    shrink(cfg, data_for(cfg, shapes, tmp_path))
    inits = synthetic_pretrained(cfg, tmp_path)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    init = initialise(cfg, model, name, inits)

    train_set = DATASETS.build(cfg.train_dataloader.dataset)
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    # the small trainable tensors (not the 100M-element VGG fcs)
    before = {n: p.detach().clone() for n, p in model.named_parameters()
              if p.requires_grad and p.numel() < 2**20}
    model.train()
    log_vars = model.train_step(pseudo_collate([train_set[0]]),
                                optim_wrapper)
    loss = torch.as_tensor(log_vars['loss']).item()
    assert np.isfinite(loss) and loss > 0
    changed = [n for n, p in model.named_parameters()
               if n in before and not torch.equal(p, before[n])]
    assert changed, 'one SGD step changed no parameter'
    del before, optim_wrapper

    val_set = DATASETS.build(cfg.val_dataloader.dataset)
    model.eval()
    sample = val_set[0]
    (result, ) = model.test_step(pseudo_collate([sample]))
    pred = result.pred_instances
    height, width = sample['data_samples'].ori_shape
    assert pred.masks.shape[1:] == (height, width)
    assert len(pred.bboxes) == len(pred.scores) == len(pred.labels)

    record = dict(
        config=osp.relpath(path, REPO), init=init, input=input_of(cfg),
        loss=round(loss, 4), detections=len(pred.scores),
        seconds=round(time.perf_counter() - start, 1),
        peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss //
        1024)
    print(record)
    report = os.environ.get('MNC_SMOKE_REPORT')
    if report:
        with open(report, 'a') as f:
            f.write(json.dumps(record) + '\n')
