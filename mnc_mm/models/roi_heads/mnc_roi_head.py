# Copyright (c) OpenMMLab. All rights reserved.
"""The RoI stages of MNC (daijifeng001/MNC
models/VGG16/mnc_5stage/train.prototxt, lib/pylayer/proposal_target_layer.py,
lib/pylayer/mask_layer.py, lib/transform/mask_transform.py,
lib/caffeWrapper/TesterWrapper.py (_segmentation_forward)): masks (stage 2),
classes and boxes (stage 3), and, in the 5-stage cascade, the same two stages
again on the regressed boxes (stages 4/5, shared weights)."""
from typing import Dict, List, Tuple

import torch
from mmdet.models.roi_heads import BaseRoIHead
from mmdet.models.task_modules.samplers import PseudoSampler
from mmdet.models.utils import unpack_gt_instances
from mmdet.registry import MODELS, TASK_UTILS
from mmdet.structures import SampleList
from mmdet.structures.bbox import bbox2roi
from mmdet.utils import ConfigType, InstanceList, OptConfigType
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData
from torch import Tensor

from ..layers import clip_grad, official_warp_coord_grad
from ..post_processing.instances import vote_and_paste_passes
from ..task_modules import (mask_level_labels, regress_by_best_class,
                            sampled_roi_targets, to_inclusive)
from .score_dtype import at_least_float32

_TRAIN_CHOICES = dict(
    num_stages=(3, 5),
    warp_coord_grad=('exact', 'official'),
    stage3_mask_grad=('seg_positive', 'all'))
_TEST_CHOICES = dict(num_stages=(3, 5), ext_warp=('pool', 'direct'))


def _checked(cfg: ConfigDict, name: str, defaults: dict,
             choices: dict) -> ConfigDict:
    """``cfg`` with ``defaults`` filled in; choice keys validated."""
    cfg = ConfigDict({**defaults, **(cfg or {})})
    for key, allowed in choices.items():
        if cfg[key] not in allowed:
            raise ValueError(f'{name}.{key} must be one of {allowed}, got '
                             f'{cfg[key]!r}')
    return cfg


@MODELS.register_module()
class MNCRoIHead(BaseRoIHead):
    """Stages 2-5 of the multi-task network cascade.

    Stage 2 warps each RoI (``roi_extractor``, a :class:`RoIWarpExtractor`;
    with ``shared_head`` e.g. res5 runs per RoI on the warped features) and
    regresses a class-agnostic mask (``mask_head``); stage 3 classifies
    the masked and the plain features and regresses boxes (``cls_head``,
    built as mmdet's ``bbox_head``).
    The stage bridge (:func:`regress_by_best_class` with the mask-level
    scores) turns the stage-3 boxes into the RoIs of stages 4/5, which
    reuse the same modules. Boxes inside follow py-faster-rcnn (inclusive
    ends, +1 widths); the gt boxes of the data samples and the predicted
    boxes use mmdet's exclusive ends.

    Training (``train_cfg``):

    - stage 2/3 RoIs: the proposals and gt boxes, assigned (``assigner``)
      and sampled (``sampler``, daijifeng001/MNC
      lib/pylayer/proposal_target_layer.py); box-level labels, normalised box
      targets, m x m mask targets of the fg RoIs (daijifeng001/MNC
      lib/pylayer/proposal_target_layer.py) and mask-level labels
      (daijifeng001/MNC lib/pylayer/mask_layer.py: the class if the predicted
      mask has IoU >= ``seg_pos_iou_thr`` with the RoI's gt, else background);
    - the soft stage-2 mask that masks the stage-3 features passes the
      stage-3 gradient back to stage 2 only for mask-level positives
      (``stage3_mask_grad='seg_positive'``, the official ``MaskLayer``) or
      for every RoI (``'all'``);
    - 5 stages (``num_stages=5``): the bridged boxes of all RoIs plus the gt
      boxes, labelled by ``bridge_assigner`` without sampling (daijifeng001/MNC
      lib/pylayer/stage_bridge_layer.py), get the same four losses. Losses are
      named like mmdet's ``CascadeRoIHead``: ``s0.loss_*`` for stages 2/3,
      ``s1.loss_*`` for stages 4/5.
    - Box gradients (``box_grad``, set in ``train_cfg`` by the
      :class:`MNC` detector, which owns the setting): the RoIs keep the
      gradient they came with (from the RPN) and the bridge passes
      gradients to the RoIs and, clamped to ``box_grad_clip``, to the
      stage-3 box regressor. Without it RoIs and bridge are detached.

    Official behaviours behind flags (defaults are the consistent ones):
    ``train_cfg.bridge_raw_deltas`` (the training bridge applies the
    normalised deltas without the stds, daijifeng001/MNC
    lib/pylayer/stage_bridge_layer.py),
    ``train_cfg.warp_coord_grad='official'`` (the +1 ratio of the warp's
    coordinate gradient, daijifeng001/caffe-mnc
    src/caffe/layers/roi_warping_layer.cu (ROIWarpingBackwardCoordinate)),
    ``test_cfg.bridge_with_bg`` (the test bridge may pick the untrained
    background regressor, daijifeng001/MNC lib/pylayer/stage_bridge_layer.py)
    and ``test_cfg.ext_warp='direct'`` (stages 4/5 warp straight to 14 x 14 at
    test, daijifeng001/MNC models/VGG16/mnc_5stage/test.prototxt).

    Testing (``test_cfg``): ``num_stages`` 5 gives 2 x 300 instances: the
    masks of both stage pairs in the RoIs they were predicted in (not the
    regressed boxes) scored by the mask-level classifier; ``mask_voting``
    merges them and the kept masks are pasted (``mask_thr_binary``,
    ``paste_binarize_first``).

    Args:
        roi_extractor (dict): the RoI warp, shared by stages 2 and 3.
        mask_head (dict): stage 2, e.g. :class:`MNCMaskHead`.
        cls_head (dict): stage 3, e.g. :class:`MNCClsHead`, built as
            ``bbox_head`` (the argument's name says it holds two
            classifiers).
        shared_head (dict, optional): per-RoI layers after the warp.
        train_cfg, test_cfg (dict, optional): see above.
        init_cfg (dict, optional): initialisation.
    """

    def __init__(self,
                 roi_extractor: ConfigType,
                 mask_head: ConfigType,
                 cls_head: ConfigType,
                 shared_head: OptConfigType = None,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 init_cfg: OptConfigType = None) -> None:
        if train_cfg is not None:
            train_cfg = _checked(
                train_cfg, 'train_cfg',
                dict(num_stages=5, seg_pos_iou_thr=0.5, mask_thr_binary=0.4,
                     bridge_raw_deltas=False, warp_coord_grad='exact',
                     stage3_mask_grad='seg_positive', box_grad=False,
                     box_grad_clip=None), _TRAIN_CHOICES)
        if test_cfg is not None:
            test_cfg = _checked(
                test_cfg, 'test_cfg',
                dict(num_stages=5, bridge_with_bg=False, ext_warp='pool',
                     mask_thr_binary=0.4, paste_binarize_first=True),
                _TEST_CHOICES)
        super().__init__(bbox_roi_extractor=roi_extractor, bbox_head=cls_head,
                         mask_head=mask_head, shared_head=shared_head,
                         train_cfg=train_cfg, test_cfg=test_cfg,
                         init_cfg=init_cfg)
        if test_cfg is not None:
            self.mask_voting = TASK_UTILS.build(test_cfg.mask_voting)

    def init_bbox_head(self, bbox_roi_extractor: ConfigType,
                       bbox_head: ConfigType) -> None:
        """The RoI warp (shared by stages 2 and 3) and stage 3."""
        self.roi_extractor = MODELS.build(bbox_roi_extractor)
        self.bbox_head = MODELS.build(bbox_head)

    def init_mask_head(self, mask_roi_extractor: ConfigType,
                       mask_head: ConfigType) -> None:
        """Stage 2; it reads the RoI features of stage 3's warp."""
        self.mask_head = MODELS.build(mask_head)

    def init_assigner_sampler(self) -> None:
        """Stage 2/3 assigner and sampler, stage 4/5 assigner."""
        if self.train_cfg is None:
            return
        self.assigner = TASK_UTILS.build(self.train_cfg.assigner)
        self.sampler = TASK_UTILS.build(
            self.train_cfg.sampler, default_args=dict(context=self))
        self.bridge_assigner = TASK_UTILS.build(
            self.train_cfg.bridge_assigner)
        self.bridge_sampler = PseudoSampler()
        coder = self.bbox_head.bbox_coder
        # raw: the normalised outputs applied as plain deltas
        self.train_bridge_coder = (type(coder)()
                                   if self.train_cfg.bridge_raw_deltas else
                                   coder)

    # ------------------------------------------------------------------
    # shared pieces
    # ------------------------------------------------------------------
    def _roi_feats(self, x: Tuple[Tensor], rois: Tensor,
                   direct: bool = False) -> Tensor:
        """Warped (and shared-head) features (R, C, S, S) of rois (R, 5)."""
        feats = x[:self.roi_extractor.num_inputs]
        if direct:
            roi_feats = self.roi_extractor.forward_direct(feats, rois)
        else:
            roi_feats = self.roi_extractor(feats, rois)
        if self.with_shared_head:
            roi_feats = self.shared_head(roi_feats)
        return roi_feats

    def _stage_forward(self, x: Tuple[Tensor], rois: Tensor,
                       direct: bool = False) -> Dict[str, Tensor]:
        """Test-time stages 2 + 3 on rois (R, 5): ``mask_logits`` (R, m, m),
        ``cls_score``/``seg_cls_score`` (R, N+1), ``bbox_pred``
        (R, 4(N+1))."""
        roi_feats = self._roi_feats(x, rois, direct)
        mask_logits = self.mask_head(roi_feats)
        cls_score, seg_cls_score, bbox_pred = self.bbox_head(
            roi_feats, mask_logits.sigmoid())
        return dict(mask_logits=mask_logits, cls_score=cls_score,
                    seg_cls_score=seg_cls_score, bbox_pred=bbox_pred)

    # ------------------------------------------------------------------
    # training
    # ------------------------------------------------------------------
    def loss(self, x: Tuple[Tensor], rpn_results_list: InstanceList,
             batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """Losses of stages 2/3 (and 4/5 with ``num_stages=5``).

        Args:
            x (tuple[Tensor]): backbone features.
            rpn_results_list (list[InstanceData]): proposals per image
                (``bboxes`` (P, 4) in input-image px, differentiable when
                trained through box coordinates).
            batch_data_samples (list[DetDataSample]): with gt ``bboxes``
                (mmdet's exclusive ends), ``labels`` (0-based) and
                ``masks`` at the input resolution.

        Returns:
            dict: ``s0.loss_mask``, ``s0.loss_cls``, ``s0.loss_seg_cls``,
            ``s0.loss_bbox`` and, for 5 stages, the same with ``s1.``.
        """
        gts, _, metas = unpack_gt_instances(batch_data_samples)
        device = x[0].device
        gts = [
            InstanceData(bboxes=to_inclusive(g.bboxes), labels=g.labels,
                         masks=g.masks.to_tensor(torch.uint8, device))
            for g in gts
        ]
        box_grad = self.train_cfg.box_grad
        samples = []
        for res, gt in zip(rpn_results_list, gts):
            boxes = res.bboxes if box_grad else res.bboxes.detach()
            assign = self.assigner.assign(
                InstanceData(priors=boxes.detach()), gt)
            samples.append(
                self.sampler.sample(assign, InstanceData(priors=boxes), gt))
        losses, outs = self._stage_loss(x, samples, gts)
        losses = {f's0.{k}': v for k, v in losses.items()}
        if self.train_cfg.num_stages == 5:
            ext_samples = self._bridge_samples(samples, outs, gts, metas)
            ext_losses, _ = self._stage_loss(x, ext_samples, gts)
            losses.update({f's1.{k}': v for k, v in ext_losses.items()})
        return losses

    def _stage_loss(self, x: Tuple[Tensor], samples: list, gts: InstanceList
                    ) -> Tuple[Dict[str, Tensor], Dict[str, Tensor]]:
        """Losses of one stage pair on the sampled RoIs (fg first in each
        image), and its ``bbox_pred`` and ``seg_cls_score``."""
        cfg = self.train_cfg
        rois = bbox2roi([s.priors for s in samples])
        if cfg.warp_coord_grad == 'official':
            layer = self.roi_extractor.roi_layers[0]
            rois = official_warp_coord_grad(rois, layer.spatial_scale,
                                            layer.quantize)
        roi_feats = self._roi_feats(x, rois)
        mask_logits = self.mask_head(roi_feats)
        probs = mask_logits.sigmoid()

        labels, seg_labels, mask_targets, bbox_targets = [], [], [], []
        start = 0
        for s, gt in zip(samples, gts):
            t = sampled_roi_targets(s, gt.bboxes, gt.masks,
                                    self.bbox_head.bbox_coder,
                                    self.mask_head.mask_size,
                                    cfg.mask_thr_binary)
            num_pos, num = s.pos_priors.size(0), s.priors.size(0)
            labels.append(t['labels'])
            seg_labels += [
                mask_level_labels(probs[start:start + num_pos].detach(),
                                  s.pos_priors.detach(), gt.masks,
                                  s.pos_assigned_gt_inds,
                                  t['labels'][:num_pos], cfg.seg_pos_iou_thr,
                                  cfg.mask_thr_binary),
                t['labels'][num_pos:]
            ]
            mask_targets.append(t['mask_targets'])
            bbox_targets.append(t['bbox_targets'])
            start += num
        labels, seg_labels = torch.cat(labels), torch.cat(seg_labels)
        pos = labels > 0
        if cfg.stage3_mask_grad == 'seg_positive':
            probs = torch.where((seg_labels > 0)[:, None, None], probs,
                                probs.detach())
        cls_score, seg_cls_score, bbox_pred = self.bbox_head(roi_feats, probs)
        losses = dict(loss_mask=self.mask_head.loss(
            mask_logits[pos], torch.cat(mask_targets)))
        losses.update(
            self.bbox_head.loss(cls_score, seg_cls_score, bbox_pred, labels,
                               seg_labels, torch.cat(bbox_targets)))
        return losses, dict(bbox_pred=bbox_pred, seg_cls_score=seg_cls_score)

    def _bridge_samples(self, samples: list, outs: Dict[str, Tensor],
                        gts: InstanceList, metas: List[dict]) -> list:
        """Stage 4/5 RoIs of each image: the bridged boxes of all its
        stage-2/3 RoIs, then its gt boxes; every one is kept (daijifeng001/MNC
        lib/pylayer/stage_bridge_layer.py)."""
        bbox_pred = outs['bbox_pred']
        box_grad = self.train_cfg.box_grad
        if box_grad:
            bbox_pred = clip_grad(bbox_pred, self.train_cfg.box_grad_clip)
        else:
            bbox_pred = bbox_pred.detach()
        sizes = [s.priors.size(0) for s in samples]
        ext_samples = []
        for s, reg, seg, gt, meta in zip(
                samples, bbox_pred.split(sizes),
                outs['seg_cls_score'].split(sizes), gts, metas):
            rois = s.priors if box_grad else s.priors.detach()
            boxes = regress_by_best_class(rois, reg, seg,
                                          self.train_bridge_coder,
                                          meta['img_shape'])
            boxes = torch.cat([boxes, gt.bboxes.to(boxes.dtype)])
            assign = self.bridge_assigner.assign(
                InstanceData(priors=boxes.detach()), gt)
            ext_samples.append(
                self.bridge_sampler.sample(assign,
                                           InstanceData(priors=boxes), gt))
        return ext_samples

    # ------------------------------------------------------------------
    # testing
    # ------------------------------------------------------------------
    def _predict_stages(self, x: Tuple[Tensor], proposals: List[Tensor],
                        batch_img_metas: List[dict]) -> List[dict]:
        """Outputs of stages 2/3 and, for 5 stages, 4/5; each dict also
        holds its per-image input ``boxes``."""
        cfg = self.test_cfg
        boxes = [p.detach() for p in proposals]
        out = self._stage_forward(x, bbox2roi(boxes))
        stages = [dict(out, boxes=boxes)]
        if cfg.num_stages == 5:
            sizes = [b.size(0) for b in boxes]
            boxes = [
                regress_by_best_class(b, reg, seg, self.bbox_head.bbox_coder,
                                      meta['img_shape'], cfg.bridge_with_bg)
                for b, reg, seg, meta in zip(
                    boxes, out['bbox_pred'].split(sizes),
                    out['seg_cls_score'].split(sizes), batch_img_metas)
            ]
            out = self._stage_forward(
                x, bbox2roi(boxes), direct=cfg.ext_warp == 'direct')
            stages.append(dict(out, boxes=boxes))
        return stages

    def forward(self, x: Tuple[Tensor], rpn_results_list: InstanceList,
                batch_data_samples: SampleList) -> tuple:
        """Raw outputs (``tensor`` mode): for each stage pair
        ``(mask_logits, cls_score, seg_cls_score, bbox_pred)`` of all
        images' RoIs."""
        metas = [s.metainfo for s in batch_data_samples]
        stages = self._predict_stages(
            x, [r.bboxes for r in rpn_results_list], metas)
        return tuple((s['mask_logits'], s['cls_score'], s['seg_cls_score'],
                      s['bbox_pred']) for s in stages)

    def predict_passes(self, x: Tuple[Tensor],
                       rpn_results_list: InstanceList,
                       batch_data_samples: SampleList
                       ) -> Tuple[List[List[Tensor]], List[Tensor],
                                  List[Tensor]]:
        """Stages 2/3 (and 4/5) up to mask voting, without host syncs.

        Returns:
            tuple: per stage pair, per image boxes (n_i, 4) (inclusive
            ends, input-image px); per stage pair soft masks (sum n_i, m, m)
            and class probabilities (sum n_i, C): the inputs of
            :func:`vote_and_paste_passes`.
        """
        metas = [s.metainfo for s in batch_data_samples]
        stages = self._predict_stages(
            x, [r.bboxes for r in rpn_results_list], metas)
        return ([s['boxes'] for s in stages],
                [at_least_float32(s['mask_logits']).sigmoid() for s in stages],
                [at_least_float32(s['seg_cls_score']).softmax(-1)
                 for s in stages])

    def predict(self,
                x: Tuple[Tensor],
                rpn_results_list: InstanceList,
                batch_data_samples: SampleList,
                rescale: bool = True) -> InstanceList:
        """Instances of each image: :meth:`predict_passes`, then mask
        voting and pasting.

        Returns:
            list[InstanceData]: ``bboxes`` (K, 4) (mmdet's exclusive ends),
            ``scores`` (K,), ``labels`` (K,) 0-based, ``masks`` (K, H, W)
            bool; in the original image when ``rescale``, else in the
            input image.
        """
        boxes, masks, probs = self.predict_passes(x, rpn_results_list,
                                                  batch_data_samples)
        return vote_and_paste_passes(
            boxes, masks, probs, [s.metainfo for s in batch_data_samples],
            self.mask_voting, rescale,
            mask_thr=self.test_cfg.mask_thr_binary,
            binarize_first=self.test_cfg.paste_binarize_first)
