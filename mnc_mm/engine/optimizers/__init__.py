# Copyright (c) OpenMMLab. All rights reserved.
from .mxnet_constructor import MXNetOptimWrapperConstructor

__all__ = ['MXNetOptimWrapperConstructor']
