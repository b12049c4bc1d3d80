# Copyright (c) OpenMMLab. All rights reserved.
from .fcis_roi_head import FCISRoIHead

__all__ = ['FCISRoIHead']
