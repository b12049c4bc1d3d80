# Copyright (c) OpenMMLab. All rights reserved.
from .optimizers import MXNetOptimWrapperConstructor

__all__ = ['MXNetOptimWrapperConstructor']
