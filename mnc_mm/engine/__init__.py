# Copyright (c) OpenMMLab. All rights reserved.
"""Training-loop parts of mnc_mm, registered into mmengine's registries."""
from .optimizers import CPUAmpOptimWrapper

__all__ = ['CPUAmpOptimWrapper']
