# Copyright (c) OpenMMLab. All rights reserved.
from .fcis_mask_loss import FCISMaskLoss, fcis_mask_loss

__all__ = ['FCISMaskLoss', 'fcis_mask_loss']
