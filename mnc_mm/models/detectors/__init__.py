# Copyright (c) OpenMMLab. All rights reserved.
from .fcis import FCIS

__all__ = ['FCIS']
