# Copyright (c) OpenMMLab. All rights reserved.
"""FCIS (Li et al., CVPR 2017) as an mmdet two-stage detector."""
from typing import Tuple

from mmdet.models.detectors import TwoStageDetector
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from torch import Tensor


@MODELS.register_module()
class FCIS(TwoStageDetector):
    """Fully convolutional instance-aware semantic segmentation.

    Backbone contract: ``backbone(img)`` returns a tuple of feature maps;
    ``rpn_in_index`` picks the RPN's input (conv4, stride 16) and
    ``roi_in_index`` the head's (conv5, stride 16, dilated), which the
    ``neck`` (a 1x1 conv to 1024 + ReLU, mmdet ``ChannelMapper``) maps
    before the :class:`FCISRoIHead`. Any backbone and neck that keep this
    contract (both maps at the stride the head's ``spatial_scale`` says)
    work.

    Args:
        rpn_in_index (int): Backbone output used by the RPN (default -2).
        roi_in_index (int): Backbone output used by the RoI head (-1).
        Others: as mmdet's ``TwoStageDetector``.
    """

    def __init__(self,
                 backbone: ConfigType,
                 rpn_head: ConfigType,
                 roi_head: ConfigType,
                 train_cfg: ConfigType,
                 test_cfg: ConfigType,
                 neck: OptConfigType = None,
                 rpn_in_index: int = -2,
                 roi_in_index: int = -1,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(backbone=backbone, neck=neck, rpn_head=rpn_head,
                         roi_head=roi_head, train_cfg=train_cfg,
                         test_cfg=test_cfg,
                         data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        self.rpn_in_index = rpn_in_index
        self.roi_in_index = roi_in_index

    def extract_feat(self,
                     batch_inputs: Tensor) -> Tuple[Tuple[Tensor], ...]:
        """Returns ``(rpn_feats, roi_feats)``, each a 1-tuple of maps."""
        feats = self.backbone(batch_inputs)
        if not isinstance(feats, (tuple, list)) or len(feats) < 2:
            found = len(feats) if isinstance(feats, (tuple, list)) else 1
            raise ValueError('FCIS needs a backbone that returns at least '
                             'two feature maps (conv4 for the RPN, conv5 for '
                             f'the head); got {found}')
        roi_feats = (feats[self.roi_in_index], )
        if self.with_neck:
            roi_feats = tuple(self.neck(roi_feats))
        return (feats[self.rpn_in_index], ), roi_feats

    def _proposals(self, rpn_feats, batch_data_samples: SampleList):
        if batch_data_samples[0].get('proposals', None) is not None:
            return [ds.proposals for ds in batch_data_samples]
        return self.rpn_head.predict(rpn_feats, batch_data_samples,
                                     rescale=False)

    def loss(self, batch_inputs: Tensor,
             batch_data_samples: SampleList) -> dict:
        """RPN losses (``loss_rpn_cls``, ``loss_rpn_bbox``) and the FCIS
        losses (``loss_cls``, ``loss_mask``, ``loss_bbox``)."""
        rpn_feats, roi_feats = self.extract_feat(batch_inputs)
        proposal_cfg = self.train_cfg.get('rpn_proposal', self.test_cfg.rpn)
        losses, rpn_results_list = self.rpn_head.loss_and_predict(
            rpn_feats, batch_data_samples, proposal_cfg=proposal_cfg)
        losses.update(
            self.roi_head.loss(roi_feats, rpn_results_list,
                               batch_data_samples))
        return losses

    def predict(self,
                batch_inputs: Tensor,
                batch_data_samples: SampleList,
                rescale: bool = True) -> SampleList:
        """Data samples with ``pred_instances`` (bboxes, scores, labels,
        bool masks)."""
        rpn_feats, roi_feats = self.extract_feat(batch_inputs)
        rpn_results_list = self._proposals(rpn_feats, batch_data_samples)
        results_list = self.roi_head.predict(roi_feats, rpn_results_list,
                                             batch_data_samples,
                                             rescale=rescale)
        return self.add_pred_to_datasample(batch_data_samples, results_list)

    def _forward(self, batch_inputs: Tensor,
                 batch_data_samples: SampleList) -> tuple:
        """'tensor' mode: ``(rpn_outs, roi_outs)`` raw outputs."""
        rpn_feats, roi_feats = self.extract_feat(batch_inputs)
        rpn_outs = self.rpn_head.forward(rpn_feats)
        rpn_results_list = self._proposals(rpn_feats, batch_data_samples)
        roi_outs = self.roi_head.forward(roi_feats, rpn_results_list,
                                         batch_data_samples)
        return rpn_outs, roi_outs
