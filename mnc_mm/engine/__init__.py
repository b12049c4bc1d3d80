# Copyright (c) OpenMMLab. All rights reserved.
"""Training-loop parts of mnc_mm, registered into mmengine's registries."""
from .optimizers import CPUAmpOptimWrapper, MXNetOptimWrapperConstructor

__all__ = ['CPUAmpOptimWrapper', 'MXNetOptimWrapperConstructor']
