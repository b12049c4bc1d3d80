# Copyright (c) OpenMMLab. All rights reserved.
from .fcis import FCIS
from .mnc import MNC

__all__ = ['FCIS', 'MNC']
