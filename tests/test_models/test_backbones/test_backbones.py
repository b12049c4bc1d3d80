# Copyright (c) OpenMMLab. All rights reserved.
"""The Caffe-style trunks: ResNetCeilPool's stem pool and CaffeVGG's
ceil-mode pools, frozen stages and outputs."""
import pytest
import torch
import torch.nn.functional as F
from mmdet.models.backbones import ResNet

from mnc_mm.models.backbones import CaffeVGG, ResNetCeilPool


@pytest.mark.parametrize('size', [33, 40, 47])
def test_resnet_ceil_pool_is_mmdet_resnet_with_the_caffe_stem_pool(size):
    """Same weights as mmdet's ResNet: the stem differs only in the pool
    (3x3/2, no padding, ceil mode), the rest is the same computation."""
    kwargs = dict(depth=18, base_channels=8, out_indices=(2, 3),
                  strides=(1, 2, 2, 1), dilations=(1, 1, 1, 2))
    torch.manual_seed(0)
    ours, ref = ResNetCeilPool(**kwargs), ResNet(**kwargs)
    ref.load_state_dict(ours.state_dict())
    ours.eval()  # mmdet's ResNet.train returns None: no chaining
    ref.eval()
    img = torch.randn(1, 3, size, size)
    stem = ref.relu(ref.norm1(ref.conv1(img)))
    pooled = F.max_pool2d(stem, 3, 2, padding=0, ceil_mode=True)
    x = pooled
    outs = []
    for i, name in enumerate(ref.res_layers):
        x = getattr(ref, name)(x)
        if i in (2, 3):
            outs.append(x)
    with torch.no_grad():
        mine = ours(img)
    assert len(mine) == 2
    for a, b in zip(mine, outs):
        torch.testing.assert_close(a, b.detach())
    # and not what mmdet's own stem pool (pad 1, floor) gives
    with torch.no_grad():
        theirs = ref(img)[0]
    assert (theirs.shape != mine[0].shape
            or not torch.allclose(theirs, mine[0]))


def test_caffe_vgg_ceil_pools_frozen_stages_and_stride_16():
    torch.manual_seed(0)
    vgg = CaffeVGG(depth=16)
    img = torch.randn(1, 3, 50, 37)
    (conv5_3, ) = vgg(img)
    # four ceil-mode 2x2 pools: 50 -> 25 -> 13 -> 7 -> 4, 37 -> 19 -> 10
    # -> 5 -> 3; no pool5
    assert conv5_3.shape == (1, 512, 4, 3)
    assert conv5_3.min() >= 0  # conv5_3 + ReLU
    frozen = [p.requires_grad for p in vgg.features[:10].parameters()]
    trained = [p.requires_grad for p in vgg.features[10:].parameters()]
    assert frozen and not any(frozen)
    assert trained and all(trained)
    pools = [m for m in vgg.features if isinstance(m, torch.nn.MaxPool2d)]
    assert len(pools) == 4 and all(p.ceil_mode for p in pools)
