# Copyright (c) OpenMMLab. All rights reserved.
from .cpu_amp_optim_wrapper import CPUAmpOptimWrapper
from .mxnet_constructor import MXNetOptimWrapperConstructor

__all__ = ['CPUAmpOptimWrapper', 'MXNetOptimWrapperConstructor']
