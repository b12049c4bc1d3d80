# Copyright (c) OpenMMLab. All rights reserved.
from .mask_paste import paste_masks
from .mask_voting import VOTING_PRESETS, MaskVoting, mask_voting

__all__ = ['paste_masks', 'mask_voting', 'MaskVoting', 'VOTING_PRESETS']
