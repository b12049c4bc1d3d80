# Copyright (c) OpenMMLab. All rights reserved.
"""Stage 3 of MNC: mask-based and box-based pathways, two classifiers and a
box regressor (daijifeng001/MNC models/VGG16/mnc_5stage/train.prototxt;
daijifeng001/caffe-mnc src/caffe/layers/mask_pooling_layer.cu; daijifeng001/MNC
lib/pylayer/mask_layer.py)."""
from typing import Dict, Tuple

import torch
from mmdet.registry import MODELS, TASK_UTILS
from mmdet.utils import ConfigType, OptMultiConfig
from mmengine.model import BaseModule
from torch import Tensor, nn

from ...layers import resize_masks_top_left
from ...task_modules import select_class_deltas

_POOLS = ('max', 'avg', 'none')


def _pathway(in_features: int, num_fcs: int, fc_channels: int) -> nn.Module:
    layers = []
    for _ in range(num_fcs):
        layers += [nn.Linear(in_features, fc_channels), nn.ReLU(inplace=True)]
        in_features = fc_channels
    return nn.Sequential(*layers)


@MODELS.register_module()
class MNCClsHead(BaseModule):
    """The classifier stage of MNC.

    The mask pathway multiplies the RoI features by the stage-2 soft mask
    (resized to the feature side with the official top-left rule,
    daijifeng001/caffe-mnc src/caffe/layers/mask_resize_layer.cu); the box
    pathway takes the features as they are. Each pathway pools (``pool``) and
    runs ``num_fcs`` fc + ReLU layers (``fc6_mask, fc7_mask`` and
    ``fc6, fc7``); their outputs are concatenated as **[mask, box]**
    (daijifeng001/MNC models/VGG16/mnc_5stage/train.prototxt) and feed three fc
    outputs: ``fc_cls`` ((N+1)-way, box-level labels), ``fc_seg_cls``
    ((N+1)-way, mask-level labels; the only score used at test) and ``fc_reg``
    (4(N+1) deltas, normalised by the coder's stds). Column 0 is the background
    everywhere.

    Args:
        in_channels (int): channels C of the RoI features.
        roi_feat_size (int): side S of the RoI features.
        num_classes (int): foreground classes N.
        pool (str): pooling of each pathway before its fcs: ``'max'``
            (2x2 stride 2, VGG-16: 14 -> 7), ``'avg'`` (global average, the
            ResNet C4 heads) or ``'none'``.
        num_fcs (int): fc + ReLU layers per pathway (2).
        fc_channels (int): their width (4096).
        bbox_coder (dict): coder of the regression targets.
        loss_cls, loss_seg_cls (dict): losses of the two classifiers.
        loss_bbox (dict): box loss, averaged over all RoIs
            (daijifeng001/caffe-mnc src/caffe/layers/smooth_L1_loss_layer.cu).
        init_cfg (dict | list[dict]): N(0, 0.01) classifiers, N(0, 0.001)
            regressor, Xavier pathway fcs (the official ones come from
            ImageNet), zero biases.
    """

    def __init__(self,
                 in_channels: int = 512,
                 roi_feat_size: int = 14,
                 num_classes: int = 20,
                 pool: str = 'max',
                 num_fcs: int = 2,
                 fc_channels: int = 4096,
                 bbox_coder: ConfigType = dict(
                     type='PlusOneDeltaXYWHBBoxCoder',
                     target_stds=(0.1, 0.1, 0.2, 0.2)),
                 loss_cls: ConfigType = dict(
                     type='CrossEntropyLoss', use_sigmoid=False,
                     loss_weight=1.0),
                 loss_seg_cls: ConfigType = dict(
                     type='CrossEntropyLoss', use_sigmoid=False,
                     loss_weight=1.0),
                 loss_bbox: ConfigType = dict(
                     type='SmoothL1Loss', beta=1.0, loss_weight=1.0),
                 init_cfg: OptMultiConfig = [
                     dict(type='Xavier', layer='Linear'),
                     dict(type='Normal', std=0.01,
                          override=[dict(name='fc_cls'),
                                    dict(name='fc_seg_cls')]),
                     dict(type='Normal', std=0.001,
                          override=dict(name='fc_reg'))
                 ]) -> None:
        super().__init__(init_cfg)
        if pool not in _POOLS:
            raise ValueError(f'pool must be one of {_POOLS}, got {pool!r}')
        self.in_channels = in_channels
        self.roi_feat_size = roi_feat_size
        self.num_classes = num_classes
        self.pool_type = pool
        if pool == 'max':
            self.pool = nn.MaxPool2d(2, 2)
            pooled = in_channels * (roi_feat_size // 2)**2
        elif pool == 'avg':
            self.pool = nn.AdaptiveAvgPool2d(1)
            pooled = in_channels
        else:
            self.pool = nn.Identity()
            pooled = in_channels * roi_feat_size**2
        self.mask_fcs = _pathway(pooled, num_fcs, fc_channels)
        self.box_fcs = _pathway(pooled, num_fcs, fc_channels)
        joint = 2 * (fc_channels if num_fcs else pooled)
        self.fc_cls = nn.Linear(joint, num_classes + 1)
        self.fc_seg_cls = nn.Linear(joint, num_classes + 1)
        self.fc_reg = nn.Linear(joint, 4 * (num_classes + 1))
        self.bbox_coder = TASK_UTILS.build(bbox_coder)
        self.loss_cls = MODELS.build(loss_cls)
        self.loss_seg_cls = MODELS.build(loss_seg_cls)
        self.loss_bbox = MODELS.build(loss_bbox)

    def forward(self, feats: Tensor,
                masks: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Scores and deltas of each RoI.

        Args:
            feats (Tensor): (R, C, S, S) RoI features.
            masks (Tensor): (R, m, m) soft masks in [0, 1] from stage 2.

        Returns:
            tuple: ``cls_score`` (R, N+1), ``seg_cls_score`` (R, N+1) and
            ``bbox_pred`` (R, 4(N+1)); logits and normalised deltas.
        """
        size = self.roi_feat_size
        if feats.shape[1:] != (self.in_channels, size, size):
            raise ValueError(f'feats must be (R, {self.in_channels}, {size}, '
                             f'{size}), got {tuple(feats.shape)}')
        if masks.dim() != 3 or masks.size(0) != feats.size(0):
            raise ValueError(f'masks must be ({feats.size(0)}, m, m), got '
                             f'{tuple(masks.shape)}')
        masked = feats * resize_masks_top_left(masks, size)[:, None]
        x = torch.cat([self.mask_fcs(self.pool(masked).flatten(1)),
                       self.box_fcs(self.pool(feats).flatten(1))], dim=1)
        return self.fc_cls(x), self.fc_seg_cls(x), self.fc_reg(x)

    def loss(self, cls_score: Tensor, seg_cls_score: Tensor,
             bbox_pred: Tensor, labels: Tensor, seg_labels: Tensor,
             bbox_targets: Tensor) -> Dict[str, Tensor]:
        """Losses of one classifier stage.

        Args:
            cls_score, seg_cls_score (Tensor): (R, N+1) logits.
            bbox_pred (Tensor): (R, 4(N+1)) normalised deltas.
            labels (Tensor): (R,) box-level labels, 0 = background.
            seg_labels (Tensor): (R,) mask-level labels, 0 = background.
            bbox_targets (Tensor): (P, 4) normalised targets of the P RoIs
                with ``labels > 0``, in their order.

        Returns:
            dict: ``loss_cls``, ``loss_seg_cls`` and ``loss_bbox``; the box
            loss is summed over the fg RoIs and divided by R
            (daijifeng001/caffe-mnc src/caffe/layers/smooth_L1_loss_layer.cu).
        """
        num_rois = labels.numel()
        if num_rois == 0:
            zero = cls_score.sum() * 0 + seg_cls_score.sum() * 0
            return dict(loss_cls=zero, loss_seg_cls=zero,
                        loss_bbox=bbox_pred.sum() * 0)
        pos = labels > 0
        pos_deltas = select_class_deltas(bbox_pred[pos], labels[pos])
        # compared after the indexing, which knows P: no extra host sync
        if bbox_targets.shape != pos_deltas.shape:
            raise ValueError(f'bbox_targets must be {tuple(pos_deltas.shape)}'
                             ' (P, 4) for the P RoIs with labels > 0, got '
                             f'{tuple(bbox_targets.shape)}')
        if pos_deltas.numel():
            loss_bbox = self.loss_bbox(
                pos_deltas, bbox_targets, avg_factor=num_rois)
        else:
            loss_bbox = bbox_pred.sum() * 0
        return dict(
            loss_cls=self.loss_cls(cls_score, labels),
            loss_seg_cls=self.loss_seg_cls(seg_cls_score, seg_labels),
            loss_bbox=loss_bbox)
