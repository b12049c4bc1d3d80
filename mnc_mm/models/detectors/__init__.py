# Copyright (c) OpenMMLab. All rights reserved.
from .mnc import MNC

__all__ = ['MNC']
