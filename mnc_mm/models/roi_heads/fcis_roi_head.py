# Copyright (c) OpenMMLab. All rights reserved.
"""FCIS's RoI head (Li et al., CVPR 2017, Sec. 3-4): samples the RoIs and
runs the two-pass inference around an :class:`FCISHead`."""
from typing import Dict, List, Tuple

import torch
from mmdet.models.roi_heads import BaseRoIHead
from mmdet.models.utils import unpack_gt_instances
from mmdet.registry import MODELS, TASK_UTILS
from mmdet.structures import SampleList
from mmdet.structures.bbox import bbox2roi
from mmdet.utils import ConfigType, InstanceList, OptConfigType
from mmengine.structures import InstanceData
from torch import Tensor

from ..post_processing.instances import vote_and_paste_passes
from ..task_modules import regress_by_best_class, to_inclusive
from .score_dtype import at_least_float32


@MODELS.register_module()
class FCISRoIHead(BaseRoIHead):
    """Orchestrates FCIS's fully convolutional head on the last feature map
    ``x[-1]``.

    The :class:`FCISHead` (``mask_head``) scores, regresses and masks every
    RoI at once, so there is no separate ``bbox_head``. Boxes inside follow
    py-faster-rcnn (inclusive ends, +1 widths); gt boxes are converted on
    the way in and predictions on the way out, so data samples keep
    mmdet's convention.

    Args:
        mask_head (dict): the :class:`FCISHead`.
        train_cfg (dict): ``assigner``, ``sampler`` (gt boxes are appended
            to the proposals before both), ``ohem`` (``dict(num=128)`` or
            None), ``mask_thr_binary`` (0.4).
        test_cfg (dict): ``min_bbox_size`` (2, resized px, on w + 1),
            ``mask_voting`` (a :class:`MaskVoting` config),
            ``mask_thr_binary`` (0.4, for pasting).
        init_cfg (dict, optional): initialisation.
    """

    def __init__(self,
                 mask_head: ConfigType,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 init_cfg: OptConfigType = None) -> None:
        super().__init__(mask_head=mask_head, train_cfg=train_cfg,
                         test_cfg=test_cfg, init_cfg=init_cfg)
        if test_cfg is not None:
            self.mask_voting = TASK_UTILS.build(test_cfg['mask_voting'])

    @property
    def with_bbox(self) -> bool:
        """True: the mask head also scores and regresses the RoIs (mmdet's
        ``TwoStageDetector.predict`` asks)."""
        return True

    def init_bbox_head(self, bbox_roi_extractor: ConfigType,
                       bbox_head: ConfigType) -> None:
        raise ValueError('FCISRoIHead takes no bbox_head: its mask_head '
                         '(FCISHead) also scores and regresses the RoIs')

    def init_mask_head(self, mask_roi_extractor: ConfigType,
                       mask_head: ConfigType) -> None:
        if mask_roi_extractor is not None:
            raise ValueError('FCISRoIHead takes no mask_roi_extractor: the '
                             'FCISHead assembles its score maps per RoI')
        self.mask_head = MODELS.build(mask_head)

    def init_assigner_sampler(self) -> None:
        if self.train_cfg is None:
            return
        self.assigner = TASK_UTILS.build(self.train_cfg['assigner'])
        self.sampler = TASK_UTILS.build(self.train_cfg['sampler'])
        ohem = self.train_cfg.get('ohem')
        self.ohem_num = ohem['num'] if ohem else None
        # the box and mask losses divide by a constant number of RoIs
        self.num_rois_norm = self.ohem_num or self.train_cfg['sampler'].get(
            'num')
        if not self.num_rois_norm:
            raise ValueError(
                'train_cfg needs ohem=dict(num=N) or a sampler with `num`: '
                'the FCIS losses are normalised by it, got ohem='
                f'{ohem!r} and sampler={self.train_cfg["sampler"]!r}')

    # ------------------------------------------------------------ training
    def loss(self, x: Tuple[Tensor], rpn_results_list: InstanceList,
             batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """``loss_cls``, ``loss_mask`` and ``loss_bbox`` of a batch (see
        :meth:`FCISHead.loss_and_target`); the RoIs of each image are its
        proposals and gt boxes, assigned by IoU (+1) and sampled."""
        gts, _, _ = unpack_gt_instances(batch_data_samples)
        device = x[-1].device
        gts = [
            InstanceData(bboxes=to_inclusive(g.bboxes), labels=g.labels,
                         masks=g.masks.to_tensor(torch.uint8, device))
            for g in gts
        ]
        sampling_results = []
        for res, gt in zip(rpn_results_list, gts):
            candidates = InstanceData(
                priors=torch.cat([res.bboxes.detach(), gt.bboxes]))
            assign_result = self.assigner.assign(candidates, gt)
            sampling_results.append(
                self.sampler.sample(assign_result, candidates, gt))
        rois = bbox2roi([res.priors for res in sampling_results])
        return self.mask_head.loss_and_target(
            self.mask_head.score_maps(x[-1]), rois, sampling_results, gts,
            len(gts), self.ohem_num, self.num_rois_norm,
            self.train_cfg.get('mask_thr_binary', 0.4))

    # ----------------------------------------------------------- inference
    def predict_passes(self, x: Tuple[Tensor],
                       rpn_results_list: InstanceList,
                       batch_data_samples: SampleList
                       ) -> Tuple[List[List[Tensor]], List[Tensor],
                                  List[Tensor]]:
        """The two inference passes (msracver/FCIS fcis/core/tester.py
        ``im_detect`` with ``ITER 2``), up to mask voting: the RPN RoIs and
        their once-regressed boxes are scored and masked. No host sync
        (``.item()``, ``.tolist()``) runs here, so the whole method traces
        with ``torch.compile`` / ``torch.export``.

        Returns:
            tuple: per pass, per image boxes (n_i, 4) (inclusive ends,
            network-input px); per pass soft masks (sum n_i, P, P) of the
            best foreground class; per pass class probabilities
            (sum n_i, C): the inputs of :func:`vote_and_paste_passes`.
        """
        head = self.mask_head
        maps = head.score_maps(x[-1])
        metas = [ds.metainfo for ds in batch_data_samples]
        first = [res.bboxes[:, :4] for res in rpn_results_list]
        sizes = [boxes.size(0) for boxes in first]
        probs1, masks1, deltas = head.predict_rois(maps, bbox2roi(first))
        second = [
            regress_by_best_class(boxes, reg, probs, head.bbox_coder,
                                  meta['img_shape'])
            for boxes, probs, reg, meta in zip(
                first, probs1.split(sizes), deltas.split(sizes), metas)
        ]
        probs2, masks2, _ = head.predict_rois(maps, bbox2roi(second))
        return [first, second], [masks1, masks2], [probs1, probs2]

    def predict(self,
                x: Tuple[Tensor],
                rpn_results_list: InstanceList,
                batch_data_samples: SampleList,
                rescale: bool = True) -> InstanceList:
        """Instances per image: :meth:`predict_passes` (2R instances per
        image), then mask voting and pasting.

        Returns:
            list[InstanceData]: ``bboxes`` (K, 4) (mmdet convention),
            ``scores`` (K,), ``labels`` (K,), ``masks`` (K, H, W) bool, in
            the original image if ``rescale`` else in the network input.
        """
        boxes, masks, probs = self.predict_passes(x, rpn_results_list,
                                                  batch_data_samples)
        return vote_and_paste_passes(
            boxes, masks, probs,
            [ds.metainfo for ds in batch_data_samples], self.mask_voting,
            rescale, mask_thr=self.test_cfg.get('mask_thr_binary', 0.4),
            min_size=self.test_cfg.get('min_bbox_size', 0))

    def forward(self, x: Tuple[Tensor], rpn_results_list: InstanceList,
                batch_data_samples: SampleList = None
                ) -> Tuple[Tensor, Tensor, Tensor]:
        """'tensor' mode: raw outputs for the RPN RoIs of the batch.

        Returns:
            tuple: cls_score (R, C) logits, mask probabilities (R, P, P) of
            the best foreground class, bbox_pred deltas (R, 4).
        """
        rois = bbox2roi([res.bboxes for res in rpn_results_list])
        outs = self.mask_head.assemble(self.mask_head.score_maps(x[-1]),
                                       rois)
        masks = at_least_float32(outs['seg_logits']).softmax(dim=1)[:, 1]
        return outs['cls_score'], masks, outs['bbox_pred']

