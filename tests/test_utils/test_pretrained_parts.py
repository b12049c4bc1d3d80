# Copyright (c) OpenMMLab. All rights reserved.
"""PretrainedParts: MNC's fc pathways start from ImageNet VGG fc6/fc7."""
import pytest
import torch
from mmdet.registry import MODELS

import mnc_mm  # noqa: F401
from mnc_mm.utils import checkpoint_io

PARTS = {'box_fcs.0': 'classifier.0', 'box_fcs.2': 'classifier.3',
         'mask_fcs.0': 'classifier.0', 'mask_fcs.2': 'classifier.3'}
DEFAULT_INIT = [
    dict(type='Xavier', layer='Linear'),
    dict(type='Normal', std=0.01,
         override=[dict(name='fc_cls'), dict(name='fc_seg_cls')]),
    dict(type='Normal', std=0.001, override=dict(name='fc_reg'))
]


def _vgg_like(fc_in=4 * 2 * 2, hidden=8):
    """An mmcv-VGG-style state dict: features.* and classifier.{0,3,6}."""
    torch.manual_seed(1)
    return {
        'features.0.weight': torch.randn(4, 3, 3, 3),
        'classifier.0.weight': torch.randn(hidden, fc_in),
        'classifier.0.bias': torch.randn(hidden),
        'classifier.3.weight': torch.randn(hidden, hidden),
        'classifier.3.bias': torch.randn(hidden),
        'classifier.6.weight': torch.randn(10, hidden),
        'classifier.6.bias': torch.randn(10),
    }


def _head(checkpoint, fc_channels=8):
    return MODELS.build(dict(
        type='MNCClsHead', in_channels=4, roi_feat_size=4, num_classes=2,
        pool='max', num_fcs=2, fc_channels=fc_channels,
        init_cfg=DEFAULT_INIT + [dict(type='PretrainedParts',
                                      checkpoint=checkpoint, parts=PARTS)]))


@pytest.mark.parametrize('wrapped', [False, True])
def test_fc_pathways_take_imagenet_fc6_fc7(tmp_path, wrapped):
    state = _vgg_like()
    path = str(tmp_path / 'vgg.pth')
    torch.save({'state_dict': state} if wrapped else state, path)
    head = _head(path)
    torch.manual_seed(0)
    with checkpoint_io():
        head.init_weights()
    for dst, src in PARTS.items():
        for name in ('weight', 'bias'):
            assert torch.equal(head.state_dict()[f'{dst}.{name}'],
                               state[f'{src}.{name}']), dst
    # the classifiers keep their own init (N(0, 0.01), zero bias)
    assert head.fc_cls.weight.std() < 0.05
    assert torch.count_nonzero(head.fc_cls.bias) == 0


def test_from_a_url(http_server):
    root, base = http_server
    state = _vgg_like()
    torch.save(state, str(root / 'vgg.pth'))
    head = _head(f'{base}/vgg.pth')
    with checkpoint_io():
        head.init_weights()
    assert torch.equal(head.mask_fcs[2].weight, state['classifier.3.weight'])


def test_missing_or_mismatched_parts_name_the_keys(tmp_path):
    state = _vgg_like()
    del state['classifier.3.bias']
    path = str(tmp_path / 'vgg.pth')
    torch.save(state, path)
    with pytest.raises(KeyError, match=r"'classifier\.3\.bias'.*missing"):
        _head(path).init_weights()
    torch.save(_vgg_like(hidden=16), path)
    with pytest.raises(KeyError, match=r'\(16, 16\).*needs \(8, 8\)'):
        _head(path).init_weights()
