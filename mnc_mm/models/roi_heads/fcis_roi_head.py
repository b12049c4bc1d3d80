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

from mnc_mm.ops import ps_roi_max_avg_pool, ps_roi_pool
from ..post_processing.instances import vote_and_paste
from ..task_modules import (crop_mask_targets, select_class_deltas,
                            to_inclusive)


def best_foreground(probs: Tensor) -> Tensor:
    """The best foreground class (R,) of class probabilities (R, C) with
    the background at 0; ties go to the lowest class; -1 for a row whose
    scores are all NaN (the official Score_Pick never picks NaN)."""
    fg = probs.detach()[:, 1:]
    fg = torch.where(fg.isnan(), fg.new_full((), -float('inf')), fg)
    index = fg.argmax(dim=1)  # the first maximum
    best = fg.gather(1, index[:, None])[:, 0]
    return torch.where(best > -float('inf'), index + 1, -1)


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
        loss_cls (dict): class loss, softmax cross-entropy (weight 1).
        loss_mask (dict): :class:`FCISMaskLoss` (weight 10).
        loss_bbox (dict): smooth-L1 with beta 1 (sigma 1), weight 1.
            Each loss is evaluated per RoI (``reduction_override='none'``)
            for OHEM; ``loss_cls`` is then the mean over the kept RoIs,
            ``loss_mask`` and ``loss_bbox`` the sum over them divided by
            the constant number of RoIs per image (fcis_spec §5.5).
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
                 loss_cls: ConfigType = dict(
                     type='CrossEntropyLoss', use_sigmoid=False,
                     loss_weight=1.0),
                 loss_mask: ConfigType = dict(
                     type='FCISMaskLoss', loss_weight=10.0),
                 loss_bbox: ConfigType = dict(
                     type='SmoothL1Loss', beta=1.0, loss_weight=1.0),
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
        self.loss_cls = MODELS.build(loss_cls)
        self.loss_mask = MODELS.build(loss_mask)
        self.loss_bbox = MODELS.build(loss_bbox)
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
        # RoI dtype rule (both heads): the RoIs take the maps' dtype, as
        # mmdet's SingleRoIExtractor does for AMP (the ops need one dtype).
        # In bfloat16 (8 significant bits) coordinates in [256, 512) px move
        # to steps of 2 px, in [512, 1024) px of 4 px; float16: 1/4, 1/2 px.
        rois = rois.to(cls_seg_maps.dtype)
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

    # ------------------------------------------------------------ training
    def _sample_image(self, proposals: Tensor,
                      gt: InstanceData) -> Dict[str, Tensor]:
        """RoIs (boxes (R, 4)) and targets of one image (fcis_spec §5.3):
        gt boxes are appended to the proposals, assigned by IoU (+1),
        sampled."""
        gt_boxes = to_inclusive(gt.bboxes)
        candidates = torch.cat([proposals, gt_boxes], dim=0)
        gt_inc = InstanceData(bboxes=gt_boxes, labels=gt.labels)
        assign_result = self.assigner.assign(
            InstanceData(priors=candidates), gt_inc)
        sampling = self.sampler.sample(assign_result,
                                       InstanceData(priors=candidates),
                                       gt_inc)
        boxes = sampling.priors
        num_pos, num = sampling.pos_inds.numel(), boxes.size(0)
        labels = boxes.new_zeros(num, dtype=torch.long)
        labels[:num_pos] = sampling.pos_gt_labels + 1
        bbox_targets = boxes.new_zeros(num, 4)
        bbox_weights = boxes.new_zeros(num, 4)
        m = self.pooled_size
        mask_targets = boxes.new_full((num, m, m), -1.)
        if num_pos:
            pos_boxes = boxes[:num_pos]
            bbox_targets[:num_pos] = self.bbox_coder.encode(
                pos_boxes, sampling.pos_gt_bboxes)
            bbox_weights[:num_pos] = 1
            gt_masks = gt.masks.to_tensor(torch.float32, boxes.device)
            mask_targets[:num_pos] = crop_mask_targets(
                pos_boxes, gt_masks, gt_boxes, sampling.pos_assigned_gt_inds,
                m, self.train_cfg.get('mask_thr_binary', 0.4))
        return dict(boxes=boxes, labels=labels, bbox_targets=bbox_targets,
                    bbox_weights=bbox_weights, mask_targets=mask_targets)

    def _per_roi_losses(self, outs: Dict[str, Tensor],
                        targets: Dict[str, Tensor]) -> Dict[str, Tensor]:
        """Weighted loss of every RoI: ``cls``, ``mask``, ``bbox`` (R,)."""
        labels = targets['labels']
        deltas = select_class_deltas(outs['bbox_pred'], labels)
        return dict(
            cls=self.loss_cls(outs['cls_score'], labels,
                              reduction_override='none'),
            mask=self.loss_mask(outs['seg_logits'], targets['mask_targets'],
                                reduction_override='none'),
            bbox=self.loss_bbox(deltas, targets['bbox_targets'],
                                weight=targets['bbox_weights'],
                                reduction_override='none').sum(1))

    def _ohem_keep(self, per_roi: Dict[str, Tensor],
                   image_of_roi: Tensor, num_imgs: int) -> Tensor:
        """Boolean (R,) mask of the RoIs OHEM keeps: per image the top
        ``ohem.num`` by the sum of the weighted per-RoI losses (officially
        cls + 10 mask + bbox, fcis_spec §5.4)."""
        rank = (per_roi['cls'] + per_roi['mask'] + per_roi['bbox']).detach()
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
            self._sample_image(res.bboxes.detach(), ds.gt_instances)
            for res, ds in zip(rpn_results_list, batch_data_samples)
        ]
        targets = {k: torch.cat([s[k] for s in samples])
                   for k in samples[0] if k != 'boxes'}
        rois = bbox2roi([s['boxes'] for s in samples])
        outs = self.assemble(self.score_maps(x), rois, targets['labels'])
        per_roi = self._per_roi_losses(outs, targets)
        num_imgs = len(samples)
        if self.ohem_num:
            keep = self._ohem_keep(per_roi, rois[:, 0].long(), num_imgs)
        else:
            keep = torch.ones_like(targets['labels'], dtype=torch.bool)
        norm = float(num_imgs * self.num_rois_norm)
        cls = per_roi['cls'][keep]
        return dict(
            loss_cls=cls.sum() / max(cls.numel(), 1),
            loss_mask=per_roi['mask'][keep].sum() / norm,
            loss_bbox=per_roi['bbox'][keep].sum() / norm)

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
        labels = best_foreground(probs).clamp(min=1)
        return self.bbox_coder.decode(
            rois, select_class_deltas(deltas, labels), max_shape=img_shape)

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
        metas = [ds.metainfo for ds in batch_data_samples]
        first = [res.bboxes[:, :4] for res in rpn_results_list]
        sizes = [boxes.size(0) for boxes in first]
        probs1, masks1, deltas = self._infer_rois(maps, bbox2roi(first))
        second = [
            self._regress(boxes, probs, reg, meta['img_shape'][:2])
            for boxes, probs, reg, meta in zip(
                first, probs1.split(sizes), deltas.split(sizes), metas)
        ]
        probs2, masks2, _ = self._infer_rois(maps, bbox2roi(second))
        min_size = self.test_cfg.get('min_bbox_size', 0)
        results = []
        for i, meta in enumerate(metas):
            boxes = torch.cat([first[i], second[i]])
            probs = torch.cat([probs1.split(sizes)[i],
                               probs2.split(sizes)[i]])
            masks = torch.cat([masks1.split(sizes)[i],
                               masks2.split(sizes)[i]])
            keep = ((boxes[:, 2:] - boxes[:, :2] + 1) >= min_size).all(dim=1)
            results.append(vote_and_paste(
                boxes[keep], masks[keep], probs[keep], meta,
                self.mask_voting, rescale,
                mask_thr=self.test_cfg.get('mask_thr_binary', 0.4)))
        return results

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
