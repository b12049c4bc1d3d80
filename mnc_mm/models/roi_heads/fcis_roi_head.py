# Copyright (c) OpenMMLab. All rights reserved.
"""FCIS's fully convolutional RoI head: position-sensitive inside/outside
score maps assembled per RoI (fcis_spec §3.3, §5.3-5.5, §6)."""
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from mmdet.registry import MODELS, TASK_UTILS
from mmdet.structures import SampleList
from mmdet.structures.bbox import bbox2roi
from mmdet.utils import ConfigType, InstanceList, OptConfigType
from mmengine.model import BaseModule
from mmengine.structures import InstanceData
from torch import Tensor, nn

from mnc_mm.ops import best_foreground, ps_roi_max_avg_pool, ps_roi_pool
from ..losses import fcis_per_roi_losses
from ..post_processing import paste_masks
from ..task_modules import (clip_boxes, crop_mask_targets, to_exclusive,
                            to_inclusive)


@MODELS.register_module()
class FCISRoIHead(BaseModule):
    """Position-sensitive inside/outside head of FCIS.

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
    deltas are the average of the box maps. No layer runs per RoI.

    Boxes inside the head follow py-faster-rcnn (inclusive ends, +1
    widths); gt boxes are converted on the way in and predictions on the
    way out, so data samples keep mmdet's convention.

    Args:
        num_classes (int): Foreground classes (80 for COCO).
        in_channels (int): Channels of the head feature (1024).
        group_size (int): k, position-sensitive grid (7).
        pooled_size (int): P, assembled size = mask size (21).
        spatial_scale (float): Feature / image scale (1 / 16).
        num_reg_classes (int): Box slots; 2 = class-agnostic (slot 1
            trained and used, slot 0 kept for the official layout).
        bbox_coder (dict): The +1 coder with stds (0.2, 0.2, 0.5, 0.5).
        loss_weights (dict): ``cls``, ``mask``, ``bbox`` weights (1, 10, 1).
        bbox_loss_beta (float): smooth-L1 beta of the box loss (1).
        train_cfg (dict): ``assigner``, ``sampler``, ``ohem`` (``dict(num=
            128)`` or None), ``mask_thr_binary`` (0.4).
        test_cfg (dict): ``min_bbox_size`` (2, resized px, on w + 1),
            ``mask_voting`` (a :class:`MaskVoting` config),
            ``mask_thr_binary`` (0.4, for pasting).
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
                 loss_weights: ConfigType = dict(cls=1., mask=10., bbox=1.),
                 bbox_loss_beta: float = 1.0,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 init_cfg: OptConfigType = dict(
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
        self.loss_weights = dict(loss_weights)
        self.bbox_loss_beta = bbox_loss_beta
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg
        k2 = group_size * group_size
        self.conv_cls_seg = nn.Conv2d(in_channels, k2 * 2 * (num_classes + 1),
                                      1)
        self.conv_bbox = nn.Conv2d(in_channels, k2 * 4 * num_reg_classes, 1)
        self.bbox_coder = TASK_UTILS.build(bbox_coder)
        if train_cfg is not None:
            self.assigner = TASK_UTILS.build(train_cfg['assigner'])
            self.sampler = TASK_UTILS.build(train_cfg['sampler'])
            ohem = train_cfg.get('ohem')
            self.ohem_num = ohem['num'] if ohem else None
            # the box and mask losses divide by a constant number of RoIs
            self.num_rois_norm = self.ohem_num or train_cfg['sampler'].get(
                'num')
            if not self.num_rois_norm:
                raise ValueError(
                    'train_cfg needs ohem=dict(num=N) or a sampler with '
                    '`num`: the FCIS losses are normalised by it')
        if test_cfg is not None:
            self.mask_voting = TASK_UTILS.build(test_cfg['mask_voting'])

    # mmdet's TwoStageDetector asks these
    @property
    def with_bbox(self) -> bool:
        return True

    @property
    def with_mask(self) -> bool:
        return True

    @property
    def num_score_classes(self) -> int:
        """C: classes including background."""
        return self.num_classes + 1

    def score_maps(self, x: Tuple[Tensor]) -> Tuple[Tensor, Tensor]:
        """The per-image work on the head feature x[-1] (B, Cin, H, W).

        Returns:
            tuple: the inside/outside maps as a (B, 2C, k, k, H, W) view,
            channels-last (the 2C values of one cell and position are
            contiguous, which :func:`ps_roi_max_avg_pool` reads as vectors)
            with the values of ``conv_cls_seg``, and the box maps (B, k*k*4
            * num_reg_classes, H, W) in the official order.
        """
        feat = x[-1]
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
            labels = best_foreground(cls_score.softmax(dim=1))
        valid = labels >= 0
        seg_logits = ps_roi_pool(cls_seg_maps, rois, 2, self.pooled_size,
                                 self.group_size, self.spatial_scale,
                                 channel_start=2 * labels.clamp(min=0))
        if not bool(valid.all()):
            seg_logits = torch.where(valid.view(-1, 1, 1, 1), seg_logits,
                                     seg_logits.new_zeros(()))
        bbox = ps_roi_pool(bbox_maps, rois, 4 * self.num_reg_classes,
                           self.pooled_size, self.group_size,
                           self.spatial_scale).mean(dim=(2, 3))
        if self.num_reg_classes == 2:
            bbox = bbox[:, 4:]
        return dict(cls_score=cls_score, seg_logits=seg_logits,
                    bbox_pred=bbox)

    def _select_deltas(self, bbox_pred: Tensor, labels: Tensor) -> Tensor:
        """(R, 4) deltas of each RoI's class (class-specific regression)."""
        if self.num_reg_classes == 2:
            return bbox_pred
        rows = torch.arange(bbox_pred.size(0), device=bbox_pred.device)
        return bbox_pred.view(-1, self.num_reg_classes, 4)[rows, labels]

    # ------------------------------------------------------------ training
    def _sample_image(self, proposals: Tensor, gt: InstanceData,
                      img_idx: int) -> Dict[str, Tensor]:
        """RoIs and targets of one image (fcis_spec §5.3): gt boxes are
        appended to the proposals, assigned by IoU (+1), sampled."""
        gt_boxes = to_inclusive(gt.bboxes)
        candidates = torch.cat([proposals, gt_boxes], dim=0)
        gt_inc = InstanceData(bboxes=gt_boxes, labels=gt.labels)
        assign_result = self.assigner.assign(
            InstanceData(priors=candidates), gt_inc)
        sampling = self.sampler.sample(assign_result,
                                       InstanceData(priors=candidates),
                                       gt_inc)
        rois = sampling.priors
        num_pos, num = sampling.pos_inds.numel(), rois.size(0)
        labels = rois.new_zeros(num, dtype=torch.long)
        labels[:num_pos] = sampling.pos_gt_labels + 1
        bbox_targets = rois.new_zeros(num, 4)
        bbox_weights = rois.new_zeros(num, 4)
        m = self.pooled_size
        mask_targets = rois.new_full((num, m, m), -1.)
        if num_pos:
            pos_rois = rois[:num_pos]
            bbox_targets[:num_pos] = self.bbox_coder.encode(
                pos_rois, sampling.pos_gt_bboxes)
            bbox_weights[:num_pos] = 1
            gt_masks = gt.masks.to_tensor(torch.float32, rois.device)
            mask_targets[:num_pos] = crop_mask_targets(
                pos_rois, gt_masks, gt_boxes, sampling.pos_assigned_gt_inds,
                m, self.train_cfg.get('mask_thr_binary', 0.4))
        batch_idx = rois.new_full((num, 1), img_idx)
        return dict(rois=torch.cat([batch_idx, rois], dim=1), labels=labels,
                    bbox_targets=bbox_targets, bbox_weights=bbox_weights,
                    mask_targets=mask_targets)

    def _ohem_keep(self, per_roi: Dict[str, Tensor],
                   image_of_roi: Tensor, num_imgs: int) -> Tensor:
        """Boolean (R,) mask of the RoIs OHEM keeps: per image the top
        ``ohem.num`` by cls + 10 mask + bbox loss (fcis_spec §5.4)."""
        w = self.loss_weights
        rank = (w['cls'] * per_roi['cls'] + w['mask'] * per_roi['mask'] +
                w['bbox'] * per_roi['bbox']).detach()
        keep = torch.zeros_like(rank, dtype=torch.bool)
        for i in range(num_imgs):
            idx = (image_of_roi == i).nonzero(as_tuple=True)[0]
            top = rank[idx].topk(min(self.ohem_num, idx.numel()))[1]
            keep[idx[top]] = True
        return keep

    def loss(self, x: Tuple[Tensor], rpn_results_list: InstanceList,
             batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """The three FCIS losses (fcis_spec §5.5) of a batch.

        ``loss_cls`` is the mean cross-entropy over the kept RoIs;
        ``loss_mask`` = 10 / N_B * sum over RoIs of the per-RoI pixel-mean
        cross-entropy; ``loss_bbox`` = 1 / N_B * sum of smooth-L1, with
        N_B = ``ohem.num`` or ``sampler.num`` per image (128), i.e. a
        constant, not the number of foreground RoIs.
        """
        samples = [
            self._sample_image(res.bboxes.detach(), ds.gt_instances, i)
            for i, (res, ds) in enumerate(
                zip(rpn_results_list, batch_data_samples))
        ]
        batch = {k: torch.cat([s[k] for s in samples]) for k in samples[0]}
        outs = self.assemble(self.score_maps(x), batch['rois'],
                             batch['labels'])
        per_roi = fcis_per_roi_losses(
            outs['cls_score'], outs['seg_logits'],
            self._select_deltas(outs['bbox_pred'], batch['labels']),
            batch['labels'], batch['mask_targets'], batch['bbox_targets'],
            batch['bbox_weights'], self.bbox_loss_beta)
        num_imgs = len(samples)
        if self.ohem_num:
            keep = self._ohem_keep(per_roi, batch['rois'][:, 0].long(),
                                   num_imgs)
        else:
            keep = torch.ones_like(batch['labels'], dtype=torch.bool)
        norm = float(num_imgs * self.num_rois_norm)
        w = self.loss_weights
        cls = per_roi['cls'][keep]
        return dict(
            loss_cls=w['cls'] * cls.sum() / max(cls.numel(), 1),
            loss_mask=w['mask'] * per_roi['mask'][keep].sum() / norm,
            loss_bbox=w['bbox'] * per_roi['bbox'][keep].sum() / norm)

    # ----------------------------------------------------------- inference
    def _infer_rois(self, maps: Tuple[Tensor, Tensor],
                    rois: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Class probabilities (R, C), foreground mask probabilities
        (R, P, P) of the best foreground class, and deltas."""
        outs = self.assemble(maps, rois)
        probs = outs['cls_score'].softmax(dim=1)
        # Score_Pick then the 2-way softmax: the same as the official
        # Group_Softmax of all classes followed by the pick, at 1/C the work
        mask = outs['seg_logits'].softmax(dim=1)[:, 1]
        return probs, mask, outs['bbox_pred']

    def _regress(self, rois: Tensor, probs: Tensor, deltas: Tensor,
                 img_shape: Tuple[int, int]) -> Tensor:
        """Once-regressed RoIs (R, 4), clipped to the image; class-specific
        heads use the best foreground class."""
        labels = probs[:, 1:].argmax(dim=1) + 1
        return self.bbox_coder.decode(
            rois, self._select_deltas(deltas, labels), max_shape=img_shape)

    def predict(self,
                x: Tuple[Tensor],
                rpn_results_list: InstanceList,
                batch_data_samples: SampleList,
                rescale: bool = True) -> InstanceList:
        """Instances per image (fcis_spec §6): the RoIs and their once-
        regressed boxes (2R instances) are scored and masked, then mask
        voting and pasting.

        Returns:
            list[InstanceData]: ``bboxes`` (K, 4) (mmdet convention),
            ``scores`` (K,), ``labels`` (K,), ``masks`` (K, H, W) bool, in
            the original image if ``rescale`` else in the network input.
        """
        maps = self.score_maps(x)
        results = []
        for i, (res, ds) in enumerate(zip(rpn_results_list,
                                          batch_data_samples)):
            results.append(self._predict_image(
                maps, res.bboxes, i, ds.metainfo, rescale))
        return results

    def _predict_image(self, maps, proposals: Tensor, img_idx: int,
                       meta: dict, rescale: bool) -> InstanceData:
        img_shape = meta['img_shape'][:2]
        first = proposals[:, :4]
        idx = first.new_full((first.size(0), 1), img_idx)
        probs1, masks1, deltas = self._infer_rois(
            maps, torch.cat([idx, first], dim=1))
        second = self._regress(first, probs1, deltas, img_shape)
        probs2, masks2, _ = self._infer_rois(maps,
                                             torch.cat([idx, second], dim=1))
        boxes = torch.cat([first, second])
        probs = torch.cat([probs1, probs2])
        masks = torch.cat([masks1, masks2])
        min_size = self.test_cfg.get('min_bbox_size', 0)
        wh = boxes[:, 2:] - boxes[:, :2] + 1
        keep = (wh >= min_size).all(dim=1)
        boxes, probs, masks = boxes[keep], probs[keep], masks[keep]
        out_shape = img_shape
        if rescale:
            scale = boxes.new_tensor(meta['scale_factor']).repeat(2)
            boxes = boxes / scale
            out_shape = meta['ori_shape'][:2]
        boxes = clip_boxes(boxes, out_shape)
        det_boxes, scores, labels, det_masks = self.mask_voting(
            boxes, masks, probs, out_shape)
        pasted = paste_masks(det_masks, det_boxes, out_shape,
                             mask_thr=self.test_cfg.get('mask_thr_binary',
                                                        0.4))
        return InstanceData(bboxes=to_exclusive(det_boxes), scores=scores,
                            labels=labels, masks=pasted)

    def forward(self, x: Tuple[Tensor], rpn_results_list: InstanceList,
                batch_data_samples: Optional[SampleList] = None
                ) -> Tuple[Tensor, Tensor, Tensor]:
        """'tensor' mode: raw outputs for the RPN RoIs of the batch.

        Returns:
            tuple: cls_score (R, C) logits, mask probabilities (R, P, P) of
            the best foreground class, bbox_pred deltas (R, 4).
        """
        rois = bbox2roi([res.bboxes for res in rpn_results_list])
        maps = self.score_maps(x)
        outs = self.assemble(maps, rois)
        return outs['cls_score'], outs['seg_logits'].softmax(dim=1)[:, 1], \
            outs['bbox_pred']
