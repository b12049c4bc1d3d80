# Copyright (c) OpenMMLab. All rights reserved.
"""Stage 2 of MNC: class-agnostic mask regression (daijifeng001/MNC
models/VGG16/mnc_5stage/train.prototxt)."""
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptMultiConfig
from mmengine.model import BaseModule
from torch import Tensor, nn


@MODELS.register_module()
class MNCMaskHead(BaseModule):
    """fc + ReLU, then fc to ``m * m`` mask logits (``fc6_maskest``,
    ``mask_pred``); the mask is their sigmoid.

    Args:
        in_channels (int): channels C of the RoI features.
        roi_feat_size (int): side S of the RoI features (14 for VGG-16).
        fc_channels (int): hidden width (256).
        mask_size (int): side m of the predicted mask (21 as the official
            code; the paper says 28).
        loss_mask (dict): per-pixel loss on the logits of foreground RoIs;
            sigmoid CE with weight 2 (daijifeng001/MNC
            lib/pylayer/proposal_target_layer.py), averaged over all
            ``n_fg * m * m`` pixels.
        init_cfg (dict | list[dict]): N(0, 0.001) weights, zero biases.
    """

    def __init__(self,
                 in_channels: int = 512,
                 roi_feat_size: int = 14,
                 fc_channels: int = 256,
                 mask_size: int = 21,
                 loss_mask: ConfigType = dict(
                     type='CrossEntropyLoss', use_sigmoid=True,
                     loss_weight=2.0),
                 init_cfg: OptMultiConfig = dict(
                     type='Normal', layer='Linear', std=0.001)) -> None:
        super().__init__(init_cfg)
        self.in_channels = in_channels
        self.roi_feat_size = roi_feat_size
        self.mask_size = mask_size
        self.fc_mask = nn.Linear(in_channels * roi_feat_size**2, fc_channels)
        self.mask_pred = nn.Linear(fc_channels, mask_size**2)
        self.relu = nn.ReLU(inplace=True)
        self.loss_mask = MODELS.build(loss_mask)

    def forward(self, feats: Tensor) -> Tensor:
        """RoI features (R, C, S, S) -> mask logits (R, m, m)."""
        if feats.shape[1:] != (self.in_channels, self.roi_feat_size,
                               self.roi_feat_size):
            raise ValueError(
                f'feats must be (R, {self.in_channels}, '
                f'{self.roi_feat_size}, {self.roi_feat_size}), got '
                f'{tuple(feats.shape)}')
        x = self.relu(self.fc_mask(feats.flatten(1)))
        return self.mask_pred(x).view(-1, self.mask_size, self.mask_size)

    def loss(self, mask_logits: Tensor, mask_targets: Tensor) -> Tensor:
        """Mask loss of the foreground RoIs.

        Args:
            mask_logits (Tensor): (P, m, m) logits of the fg RoIs.
            mask_targets (Tensor): (P, m, m) binary targets.

        Returns:
            Tensor: scalar; 0 (still in the graph) when P = 0.
        """
        if mask_logits.shape != mask_targets.shape:
            raise ValueError('mask_logits and mask_targets must have the '
                             f'same shape, got {tuple(mask_logits.shape)} '
                             f'and {tuple(mask_targets.shape)}')
        if mask_logits.numel() == 0:
            return mask_logits.sum() * 0
        return self.loss_mask(mask_logits.flatten(1),
                              mask_targets.flatten(1).float())
