# Copyright (c) OpenMMLab. All rights reserved.
"""FCIS's position-sensitive inside/outside head (Li et al., CVPR 2017,
Sec. 3; msracver/FCIS fcis/symbols/resnet_v1_101_fcis.py)."""
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from mmdet.models.task_modules.samplers import SamplingResult
from mmdet.registry import MODELS, TASK_UTILS
from mmdet.utils import ConfigType, InstanceList, OptMultiConfig
from mmengine.model import BaseModule
from torch import Tensor, nn

from mnc_mm.ops import ps_roi_max_avg_pool, ps_roi_pool
from ...task_modules import (best_class, ohem_select, sampled_roi_targets,
                             select_class_deltas)
from ..score_dtype import at_least_float32


@MODELS.register_module()
class FCISHead(BaseModule):
    """Score maps, their per-RoI assembly, targets and losses of FCIS.

    Two 1x1 convs on the (1024-channel, stride-16) head feature make
    ``k * k * 2 * (num_classes + 1)`` inside/outside score maps, channel
    ``((cls * 2 + j) * k + gh) * k + gw`` (j = 0 outside, 1 inside, class 0
    background) and ``k * k * 4 * num_reg_classes`` box maps, channel
    ``((rc * 4 + coord) * k + gh) * k + gw``. Per RoI, the class score is
    the 441-bin average of the per-class max(inside, outside) of the
    assembled maps (:func:`ps_roi_max_avg_pool`, which never materialises
    the (R, 2C, P, P) assembly); the mask is the P x P assembly of one
    inside/outside pair only, the label's (train) or the best foreground
    class's (test) (:func:`ps_roi_pool` with ``channel_start``); the box
    deltas are the average of the box maps. No layer runs per RoI. Boxes
    follow py-faster-rcnn (inclusive ends, +1 widths).

    Args:
        num_classes (int): Foreground classes (80 for COCO).
        in_channels (int): Channels of the head feature (1024).
        group_size (int): k, position-sensitive grid (7).
        pooled_size (int): P, assembled size = mask size (21).
        spatial_scale (float): Feature / image scale (1 / 16).
        num_reg_classes (int): Box slots; 2 = class-agnostic (slot 1
            trained and used, slot 0 kept for the official layout).
        bbox_coder (dict): The +1 coder with stds (0.2, 0.2, 0.5, 0.5).
        loss_cls (dict): class loss, softmax cross-entropy (weight 1).
        loss_mask (dict): :class:`FCISMaskLoss` (weight 10).
        loss_bbox (dict): smooth-L1 with beta 1 (sigma 1), weight 1.
            Each loss is evaluated per RoI (``reduction_override='none'``)
            for OHEM; ``loss_cls`` is then the mean over the kept RoIs,
            ``loss_mask`` and ``loss_bbox`` the sum over them divided by
            the constant number of RoIs per image (msracver/FCIS
            fcis/symbols/resnet_v1_101_fcis.py, ``grad_scale`` 1 / N).
        init_cfg (dict): N(0, 0.01) convs.
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int = 1024,
                 group_size: int = 7,
                 pooled_size: int = 21,
                 spatial_scale: float = 1. / 16,
                 num_reg_classes: int = 2,
                 bbox_coder: ConfigType = dict(
                     type='PlusOneDeltaXYWHBBoxCoder',
                     target_stds=(0.2, 0.2, 0.5, 0.5)),
                 loss_cls: ConfigType = dict(
                     type='CrossEntropyLoss', use_sigmoid=False,
                     loss_weight=1.0),
                 loss_mask: ConfigType = dict(
                     type='FCISMaskLoss', loss_weight=10.0),
                 loss_bbox: ConfigType = dict(
                     type='SmoothL1Loss', beta=1.0, loss_weight=1.0),
                 init_cfg: OptMultiConfig = dict(
                     type='Normal', layer='Conv2d', std=0.01)) -> None:
        super().__init__(init_cfg=init_cfg)
        if num_reg_classes not in (2, num_classes + 1):
            raise ValueError('num_reg_classes must be 2 (class-agnostic) or '
                             f'num_classes + 1 = {num_classes + 1}, got '
                             f'{num_reg_classes}')
        self.num_classes = num_classes
        self.group_size = group_size
        self.pooled_size = pooled_size
        self.spatial_scale = spatial_scale
        self.num_reg_classes = num_reg_classes
        self.loss_cls = MODELS.build(loss_cls)
        self.loss_mask = MODELS.build(loss_mask)
        self.loss_bbox = MODELS.build(loss_bbox)
        k2 = group_size * group_size
        self.conv_cls_seg = nn.Conv2d(in_channels, k2 * 2 * (num_classes + 1),
                                      1)
        self.conv_bbox = nn.Conv2d(in_channels, k2 * 4 * num_reg_classes, 1)
        self.bbox_coder = TASK_UTILS.build(bbox_coder)

    @property
    def num_score_classes(self) -> int:
        """C: classes including background."""
        return self.num_classes + 1

    def score_maps(self, feat: Tensor) -> Tuple[Tensor, Tensor]:
        """The per-image work on the head feature (B, Cin, H, W).

        Returns:
            tuple: the inside/outside maps as a (B, 2C, k, k, H, W) view,
            channels-last (the 2C values of one cell and position are
            contiguous, which :func:`ps_roi_max_avg_pool` reads as vectors)
            with the values of ``conv_cls_seg``, and the box maps (B, k*k*4
            * num_reg_classes, H, W) in the official order.
        """
        k, dims = self.group_size, 2 * self.num_score_classes
        # conv_cls_seg keeps the official channel order (d, gh, gw) so that
        # checkpoints convert as they are; its 1x1 conv runs as a matmul
        # with the outputs reordered to (gh, gw, d).
        weight = self.conv_cls_seg.weight.view(dims, k * k, -1)
        bias = self.conv_cls_seg.bias.view(dims, k * k)
        maps = F.linear(feat.permute(0, 2, 3, 1),
                        weight.transpose(0, 1).reshape(k * k * dims, -1),
                        bias.t().reshape(-1))
        b, h, w, _ = maps.shape
        maps = maps.view(b, h, w, k, k, dims).permute(0, 5, 3, 4, 1, 2)
        return maps, self.conv_bbox(feat)

    def assemble(self,
                 maps: Tuple[Tensor, Tensor],
                 rois: Tensor,
                 labels: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """The per-RoI work (no learned layer).

        Args:
            maps: output of :meth:`score_maps`.
            rois (Tensor): (R, 5) [batch_idx, x1, y1, x2, y2] image px.
            labels (Tensor, optional): (R,) class of each RoI's mask
                (training); None picks the best foreground class by the
                softmax of the class scores, as the official Score_Pick.

        Returns:
            dict: ``cls_score`` (R, C) logits, ``seg_logits`` (R, 2, P, P)
            outside/inside scores of the picked class (zeros where no class
            could be picked, i.e. NaN scores), ``bbox_pred`` (R, 4) deltas
            of the foreground slot (class-agnostic) or (R, 4 * C).
        """
        cls_seg_maps, bbox_maps = maps
        num_cls = self.num_score_classes
        cls_score = ps_roi_max_avg_pool(cls_seg_maps, rois, num_cls, 2,
                                        self.pooled_size, self.group_size,
                                        self.spatial_scale)
        if labels is None:
            labels = best_class(at_least_float32(cls_score).softmax(dim=1))
        valid = labels >= 0
        seg_logits = ps_roi_pool(cls_seg_maps, rois, 2, self.pooled_size,
                                 self.group_size, self.spatial_scale,
                                 channel_start=2 * labels.clamp(min=0))
        # unconditional: testing ``valid.all()`` first would sync with the
        # host and stop torch.compile / torch.export at a data-dependent
        # branch
        seg_logits = torch.where(valid.view(-1, 1, 1, 1), seg_logits,
                                 seg_logits.new_zeros(()))
        bbox = ps_roi_pool(bbox_maps, rois, 4 * self.num_reg_classes,
                           self.pooled_size, self.group_size,
                           self.spatial_scale).mean(dim=(2, 3))
        if self.num_reg_classes == 2:
            bbox = bbox[:, 4:]
        return dict(cls_score=cls_score, seg_logits=seg_logits,
                    bbox_pred=bbox)

    def predict_rois(self, maps: Tuple[Tensor, Tensor],
                     rois: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Class probabilities (R, C), foreground mask probabilities
        (R, P, P) of the best foreground class, and deltas of rois (R, 5)."""
        outs = self.assemble(maps, rois)
        # Score_Pick then the 2-way softmax: the same as the official
        # Group_Softmax of all classes followed by the pick, at 1/C the work
        return (at_least_float32(outs['cls_score']).softmax(dim=1),
                at_least_float32(outs['seg_logits']).softmax(dim=1)[:, 1],
                outs['bbox_pred'])

    # ------------------------------------------------------------ training
    def get_targets(self, sampling_results: List[SamplingResult],
                    batch_gt_instances: InstanceList,
                    mask_thr: float) -> Dict[str, Tensor]:
        """Targets (R, ...) of the RoIs of all images, in their order.

        Args:
            sampling_results (list[SamplingResult]): per image, RoIs with
                inclusive ends, foreground first.
            batch_gt_instances (list[InstanceData]): per image ``bboxes``
                (inclusive ends) and ``masks`` (G, H, W) tensors.
            mask_thr (float): binarisation threshold of the mask targets.

        Returns:
            dict: ``labels`` (R,), ``bbox_targets`` and ``bbox_weights``
            (R, 4), zero for background RoIs, ``mask_targets`` (R, P, P),
            -1 (ignored) for background RoIs.
        """
        out = dict(labels=[], bbox_targets=[], bbox_weights=[],
                   mask_targets=[])
        for res, gt in zip(sampling_results, batch_gt_instances):
            t = sampled_roi_targets(res, gt.bboxes, gt.masks,
                                    self.bbox_coder, self.pooled_size,
                                    mask_thr)
            num_neg = t['labels'].numel() - t['bbox_targets'].size(0)
            box_pad = t['bbox_targets'].new_zeros(num_neg, 4)
            out['labels'].append(t['labels'])
            out['bbox_targets'] += [t['bbox_targets'], box_pad]
            out['bbox_weights'] += [torch.ones_like(t['bbox_targets']),
                                    box_pad]
            out['mask_targets'] += [
                t['mask_targets'],
                box_pad.new_full((num_neg, ) + t['mask_targets'].shape[1:],
                                 -1.)
            ]
        return {k: torch.cat(v) for k, v in out.items()}

    def per_roi_losses(self, outs: Dict[str, Tensor],
                       targets: Dict[str, Tensor]) -> Dict[str, Tensor]:
        """Weighted loss of every RoI: ``cls``, ``mask``, ``bbox`` (R,),
        whatever the number of foreground RoIs (zero included)."""
        labels = targets['labels']
        deltas = select_class_deltas(outs['bbox_pred'], labels)
        # The box weights multiply the unweighted (R, 4) loss instead of
        # going in as ``weight``: mmdet's weighted losses return a 0-d zero
        # when no weight is positive (a batch without foreground RoIs).
        bbox = self.loss_bbox(deltas, targets['bbox_targets'],
                              reduction_override='none')
        return dict(
            cls=self.loss_cls(outs['cls_score'], labels,
                              reduction_override='none'),
            mask=self.loss_mask(outs['seg_logits'], targets['mask_targets'],
                                reduction_override='none'),
            bbox=(bbox * targets['bbox_weights']).sum(1))

    def loss_and_target(self, maps: Tuple[Tensor, Tensor], rois: Tensor,
                        sampling_results: List[SamplingResult],
                        batch_gt_instances: InstanceList, num_imgs: int,
                        ohem_num: Optional[int], num_rois_norm: int,
                        mask_thr: float) -> Dict[str, Tensor]:
        """The three FCIS losses of a batch.

        ``loss_cls`` is the mean cross-entropy over the kept RoIs;
        ``loss_mask`` = 10 / N_B * sum over RoIs of the per-RoI pixel-mean
        cross-entropy; ``loss_bbox`` = 1 / N_B * sum of smooth-L1, with
        N_B = ``num_imgs * num_rois_norm``, a constant, not the number of
        foreground RoIs.

        Args:
            maps: output of :meth:`score_maps`.
            rois (Tensor): (R, 5) the sampled RoIs of all images.
            sampling_results, batch_gt_instances: see :meth:`get_targets`.
            num_imgs (int): images in the batch.
            ohem_num (int, optional): RoIs kept per image by
                :func:`ohem_select` (ranked by cls + mask + bbox); None
                keeps all.
            num_rois_norm (int): RoIs per image the box and mask losses are
                divided by (128).
            mask_thr (float): binarisation threshold of the mask targets.
        """
        targets = self.get_targets(sampling_results, batch_gt_instances,
                                   mask_thr)
        outs = self.assemble(maps, rois, targets['labels'])
        per_roi = self.per_roi_losses(outs, targets)
        if ohem_num:
            keep = ohem_select(
                per_roi['cls'] + per_roi['mask'] + per_roi['bbox'],
                rois[:, 0].long(), num_imgs, ohem_num)
        else:
            keep = torch.ones_like(targets['labels'], dtype=torch.bool)
        norm = float(num_imgs * num_rois_norm)
        cls = per_roi['cls'][keep]
        return dict(
            loss_cls=cls.sum() / max(cls.numel(), 1),
            loss_mask=per_roi['mask'][keep].sum() / norm,
            loss_bbox=per_roi['bbox'][keep].sum() / norm)
