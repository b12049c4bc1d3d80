# Copyright (c) OpenMMLab. All rights reserved.
from .resnet_ceil_pool import ResNetCeilPool

__all__ = ['ResNetCeilPool']
