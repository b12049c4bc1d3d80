# Copyright (c) OpenMMLab. All rights reserved.
from .mnc_roi_sampler import MNCRoISampler

__all__ = ['MNCRoISampler']
