# Copyright (c) OpenMMLab. All rights reserved.
from .roi_warp_extractor import RoIWarpExtractor

__all__ = ['RoIWarpExtractor']
