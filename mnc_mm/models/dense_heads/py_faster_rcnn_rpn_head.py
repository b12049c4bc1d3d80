# Copyright (c) OpenMMLab. All rights reserved.
"""The RPN of both methods: py-faster-rcnn targets and proposals, with
proposals that can carry box gradients (MNC)."""
from typing import List, Optional, Tuple

import torch
from mmdet.models.dense_heads import RPNHead
from mmdet.models.utils import unpack_gt_instances
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.structures.bbox import scale_boxes
from mmdet.utils import InstanceList, OptInstanceList
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData
from torch import Tensor

from ..layers import clip_grad
from ..layers.nms import masked_nms
from ..task_modules import to_inclusive


@MODELS.register_module()
class PyFasterRCNNRPNHead(RPNHead):
    """mmdet's ``RPNHead`` with the py-faster-rcnn rules of both official
    codes (msracver/FCIS fcis/operator_py/proposal.py, lib/rpn/rpn.py
    (assign_anchor); daijifeng001/MNC lib/pylayer/proposal_layer.py), whose
    proposals can stay differentiable w.r.t. the box deltas (MNC,
    daijifeng001/MNC lib/pylayer/proposal_layer.py (backward)).

    Targets: the gt boxes of the data samples (mmdet's exclusive ends) are
    converted to inclusive ends and their labels to the one RPN class
    before the anchor assignment, so the +1 coder and IoU see the
    official boxes.

    Proposals, per image, from all anchors: foreground score (sigmoid, or
    the softmax column of the foreground); decode and clip to the image
    (``bbox_coder.decode(..., max_shape)``); drop boxes narrower or
    shorter (``x2 - x1 + 1``) than ``min_bbox_size`` pixels of the network
    input (FCIS), or of the original image when ``scale_min_bbox_size``
    (MNC: the size times the resize factor); keep the ``nms_pre`` best;
    NMS (``nms`` cfg of type 'nms', ``offset=1`` for the +1 IoU); keep the
    ``max_per_img`` best. The size filter is a mask and the NMS the op
    ``mnc_mm::masked_nms``, so ``torch.compile`` traces the selection
    (one graph with ``capture_dynamic_output_shape_ops``: the number kept
    depends on the data). Selection and NMS never see gradients; with
    ``box_grad`` the kept boxes are the decoded coordinates themselves, so
    a loss on them reaches ``rpn_reg`` through the decode (the exact chain
    rule; the official layer gates clipped proposals and border anchors to
    0, which the clamp does per coordinate here).

    The proposals also record ``anchor_inds`` (their anchor's index in the
    flattened (level, h, w, anchor) order).

    Args:
        in_index (int, optional): the one feature map of the detector's
            tuple the head reads (FCIS: -2, conv4, while its RoI head reads
            conv5); None reads every map as a level, as mmdet's
            ``RPNHead``.
        Others: as mmdet's ``RPNHead``.
    """

    def __init__(self, *args, in_index: Optional[int] = None,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.in_index = in_index

    def forward(self, x: Tuple[Tensor]) -> Tuple[List[Tensor], List[Tensor]]:
        """Scores and deltas of each level read (see ``in_index``)."""
        if self.in_index is not None:
            x = (x[self.in_index], )
        return super().forward(x)

    def loss_by_feat(self,
                     cls_scores: List[Tensor],
                     bbox_preds: List[Tensor],
                     batch_gt_instances: InstanceList,
                     batch_img_metas: List[dict],
                     batch_gt_instances_ignore: OptInstanceList = None
                     ) -> dict:
        """mmdet's RPN losses (``loss_rpn_cls``, ``loss_rpn_bbox``) on
        inclusive-end gt boxes, all of class 0."""
        batch_gt_instances = [
            InstanceData(bboxes=to_inclusive(gt.bboxes),
                         labels=torch.zeros_like(gt.labels))
            for gt in batch_gt_instances
        ]
        if batch_gt_instances_ignore is not None:
            batch_gt_instances_ignore = [
                InstanceData(bboxes=to_inclusive(ignore.bboxes))
                if ignore is not None and 'bboxes' in ignore else ignore
                for ignore in batch_gt_instances_ignore
            ]
        return super().loss_by_feat(cls_scores, bbox_preds,
                                    batch_gt_instances, batch_img_metas,
                                    batch_gt_instances_ignore)

    def loss_and_predict(self,
                         x: Tuple[Tensor],
                         batch_data_samples: SampleList,
                         proposal_cfg: Optional[ConfigDict] = None
                         ) -> Tuple[dict, InstanceList]:
        """RPN losses and the proposals of each image.

        Args:
            x (tuple[Tensor]): features of each level.
            batch_data_samples (list[DetDataSample]): with ``gt_instances``.
            proposal_cfg (ConfigDict, optional): proposal settings
                (``nms_pre``, ``max_per_img``, ``nms``, ``min_bbox_size``,
                ``scale_min_bbox_size``), and ``box_grad`` (keep the
                proposals differentiable w.r.t. the regression output,
                default False: detached) with ``box_grad_clip`` (clamp the
                gradient reaching the regression output through the
                proposals element-wise to this bound, official 1/512;
                None: no clamp), which :class:`MNC` sets.

        Returns:
            tuple: the loss dict and a list of ``InstanceData`` proposals
            (``bboxes`` (P, 4) in input-image px, ``scores``, ``labels``,
            ``anchor_inds``).
        """
        gt_instances, gt_ignore, img_metas = unpack_gt_instances(
            batch_data_samples)
        cls_scores, bbox_preds = self(x)
        losses = self.loss_by_feat(cls_scores, bbox_preds, gt_instances,
                                   img_metas, gt_ignore)
        cfg = self.test_cfg if proposal_cfg is None else proposal_cfg
        proposals = self.proposals_by_feat(
            cls_scores, bbox_preds, img_metas, cfg,
            cfg.get('box_grad', False), cfg.get('box_grad_clip'))
        return losses, proposals

    def predict_by_feat(self,
                        cls_scores: List[Tensor],
                        bbox_preds: List[Tensor],
                        score_factors: Optional[List[Tensor]] = None,
                        batch_img_metas: Optional[List[dict]] = None,
                        cfg: Optional[ConfigDict] = None,
                        rescale: bool = False,
                        with_nms: bool = True) -> InstanceList:
        """Detached proposals (see the class docstring); ``rescale`` maps
        them to the original image."""
        results = self.proposals_by_feat(cls_scores, bbox_preds,
                                         batch_img_metas, cfg)
        if rescale:
            for res, meta in zip(results, batch_img_metas):
                res.bboxes = scale_boxes(
                    res.bboxes, [1 / s for s in meta['scale_factor']])
        return results

    def proposals_by_feat(self,
                          cls_scores: List[Tensor],
                          bbox_preds: List[Tensor],
                          batch_img_metas: List[dict],
                          cfg: Optional[ConfigDict] = None,
                          box_grad: bool = False,
                          box_grad_clip: Optional[float] = None
                          ) -> InstanceList:
        """Proposals of each image from the head outputs.

        Args:
            cls_scores (list[Tensor]): per level (B, A * cls_out, H, W).
            bbox_preds (list[Tensor]): per level (B, A * 4, H, W).
            batch_img_metas (list[dict]): with ``img_shape`` and
                ``scale_factor``.
            cfg (ConfigDict, optional): proposal settings (default: the
                test cfg).
            box_grad, box_grad_clip: see :meth:`loss_and_predict`.

        Returns:
            list[InstanceData]: per image.
        """
        cfg = self.test_cfg if cfg is None else cfg
        featmap_sizes = [s.shape[-2:] for s in cls_scores]
        anchors = torch.cat(self.prior_generator.grid_priors(
            featmap_sizes, device=cls_scores[0].device))
        results = []
        for i, meta in enumerate(batch_img_metas):
            scores = torch.cat([
                s[i].detach().permute(1, 2, 0).reshape(
                    -1, self.cls_out_channels) for s in cls_scores
            ])
            deltas = torch.cat([
                d[i].permute(1, 2, 0).reshape(-1, 4) for d in bbox_preds
            ])
            if box_grad:
                deltas = clip_grad(deltas, box_grad_clip)
            else:
                deltas = deltas.detach()
            results.append(
                self._proposals_single(scores, deltas, anchors, meta, cfg))
        return results

    def _proposals_single(self, cls_score: Tensor, deltas: Tensor,
                          anchors: Tensor, img_meta: dict,
                          cfg: ConfigDict) -> InstanceData:
        """cls_score (A', cls_out), deltas (A', 4), anchors (A', 4)."""
        if self.use_sigmoid_cls:
            scores = cls_score.sigmoid()[:, 0]
        else:  # mmdet's softmax layout: foreground first
            scores = cls_score.softmax(-1)[:, 0]
        boxes = self.bbox_coder.decode(
            anchors, deltas, max_shape=img_meta['img_shape'])
        sx, sy = 1., 1.
        if cfg.get('scale_min_bbox_size', False):
            sx, sy = img_meta.get('scale_factor', (1., 1.))[:2]
        min_size = cfg.get('min_bbox_size', 0)
        fixed = boxes.detach()
        valid = (((fixed[:, 2] - fixed[:, 0] + 1) >= min_size * sx) &
                 ((fixed[:, 3] - fixed[:, 1] + 1) >= min_size * sy))
        # the size filter masks instead of indexing (no nonzero, so no
        # data-dependent size before NMS): the small boxes sort last and
        # masked_nms drops them, so the nms_pre best valid boxes reach NMS
        # as after filtering; stable: equal scores keep the anchor order
        order = scores.masked_fill(~valid, float('-inf')).argsort(
            descending=True, stable=True)
        nms_pre = cfg.get('nms_pre', -1)
        if nms_pre > 0:  # sym_min: no guard on the anchor count
            order = order[:torch.sym_min(order.size(0), nms_pre)]
        keep = masked_nms(fixed[order], scores[order], valid[order],
                          **self._nms_args(cfg.nms))
        inds = order[keep[:cfg.max_per_img]]
        results = InstanceData()
        # set_field, not attribute assignment: InstanceData's length check
        # (``len(self) > 0``) is undecidable to torch.compile on the
        # data-dependent number of kept boxes, which all four have
        for name, value in (('bboxes', boxes[inds]), ('scores', scores[inds]),
                            ('labels', inds.new_zeros(inds.numel())),
                            ('anchor_inds', inds)):
            results.set_field(value, name)
        return results

    @staticmethod
    def _nms_args(nms_cfg: dict) -> dict:
        """``iou_threshold`` and ``offset`` of an ``nms`` cfg of type
        'nms' (mmcv's NMS; one class, so class-agnostic)."""
        unknown = set(nms_cfg) - {'type', 'iou_threshold', 'offset',
                                  'class_agnostic'}
        if nms_cfg.get('type', 'nms') != 'nms' or unknown or \
                'iou_threshold' not in nms_cfg:
            raise ValueError(
                "PyFasterRCNNRPNHead: nms must be dict(type='nms', "
                f"iou_threshold=..., offset=0 or 1), got {dict(nms_cfg)}")
        return dict(iou_threshold=float(nms_cfg['iou_threshold']),
                    offset=int(nms_cfg.get('offset', 0)))
