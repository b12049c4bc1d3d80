# Copyright (c) OpenMMLab. All rights reserved.
from .resnet_ceil_pool import ResNetCeilPool
from .vgg import CaffeVGG

__all__ = ['CaffeVGG', 'ResNetCeilPool']
