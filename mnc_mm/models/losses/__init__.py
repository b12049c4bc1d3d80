# Copyright (c) OpenMMLab. All rights reserved.
from .fcis_roi_losses import fcis_per_roi_losses

__all__ = ['fcis_per_roi_losses']
