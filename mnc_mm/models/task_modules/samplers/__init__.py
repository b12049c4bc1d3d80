# Copyright (c) OpenMMLab. All rights reserved.
from .mnc_roi_sampler import MNCRoISampler
from .ohem import ohem_select

__all__ = ['MNCRoISampler', 'ohem_select']
