# Copyright (c) OpenMMLab. All rights reserved.
"""FCIS (Li et al., CVPR 2017) as an mmdet two-stage detector."""
from typing import Tuple

from mmdet.models.detectors import TwoStageDetector
from mmdet.registry import MODELS
from torch import Tensor


@MODELS.register_module()
class FCIS(TwoStageDetector):
    """Fully convolutional instance-aware semantic segmentation.

    Backbone contract: ``backbone(img)`` returns a tuple of feature maps;
    the ``neck`` (a 1x1 conv to 1024 + ReLU, mmdet ``ChannelMapper``) maps
    the last one (conv5, stride 16, dilated) in place, which the
    :class:`FCISRoIHead` reads; the RPN picks its input with its own
    ``in_index`` (conv4, -2). Any backbone and neck that keep this
    contract (the maps at the strides the heads say) work. Arguments as
    mmdet's ``TwoStageDetector``.
    """

    def extract_feat(self, batch_inputs: Tensor) -> Tuple[Tensor, ...]:
        """The backbone's maps, the last one through the neck."""
        feats = self.backbone(batch_inputs)
        if not isinstance(feats, (tuple, list)) or len(feats) < 2:
            found = len(feats) if isinstance(feats, (tuple, list)) else 1
            raise ValueError('FCIS needs a backbone that returns at least '
                             'two feature maps (conv4 for the RPN, conv5 for '
                             f'the head); got {found}')
        feats = list(feats)
        if self.with_neck:
            feats[-1] = self.neck((feats[-1], ))[0]
        return tuple(feats)
