# Copyright (c) OpenMMLab. All rights reserved.
"""MNC: Instance-aware Semantic Segmentation via Multi-task Network
Cascades (Dai, He, Sun, CVPR 2016)."""
import copy
from typing import Optional

from mmdet.models.detectors import TwoStageDetector
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from mmengine.config import ConfigDict


@MODELS.register_module()
class MNC(TwoStageDetector):
    """The multi-task network cascade, trained end to end.

    Stage 1 is the RPN (``rpn_head``, a :class:`PyFasterRCNNRPNHead`);
    stages 2-5 are the ``roi_head`` (:class:`MNCRoIHead`). The detector is
    the one owner of the box-gradient setting: it writes ``box_grad`` and
    ``box_grad_clip`` into ``train_cfg.rpn_proposal`` and ``train_cfg.rcnn``
    before the heads are built. With ``box_grad`` the proposals reach the
    RoI losses through their decoded coordinates, so the stage 2-5 losses
    train the RPN's box regression too (and the stage 4/5 losses the
    stage-3 regressor); the gradient that reaches each regressor through
    the boxes is clamped element-wise to ``box_grad_clip`` (official:
    1/512). ``box_grad=False`` detaches the RoIs (the paper's ablation).

    Args:
        backbone, rpn_head, roi_head, neck, data_preprocessor, init_cfg:
            as mmdet's ``TwoStageDetector``.
        train_cfg (dict): ``rpn``, ``rpn_proposal`` and ``rcnn`` (see
            :class:`MNCRoIHead`).
        test_cfg (dict): ``rpn`` and ``rcnn``.
        box_grad (bool): train through the box coordinates.
        box_grad_clip (float, optional): bound of those gradients; None
            for none.
    """

    def __init__(self,
                 backbone: ConfigType,
                 rpn_head: ConfigType,
                 roi_head: ConfigType,
                 train_cfg: OptConfigType,
                 test_cfg: ConfigType,
                 neck: OptConfigType = None,
                 box_grad: bool = True,
                 box_grad_clip: Optional[float] = 1 / 512,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        if train_cfg is not None:
            train_cfg = ConfigDict(copy.deepcopy(train_cfg))
            box_cfg = dict(box_grad=box_grad, box_grad_clip=box_grad_clip)
            train_cfg.rpn_proposal = ConfigDict(
                train_cfg.get('rpn_proposal', test_cfg['rpn']), **box_cfg)
            train_cfg.rcnn = ConfigDict(train_cfg.rcnn, **box_cfg)
        super().__init__(
            backbone=backbone,
            neck=neck,
            rpn_head=rpn_head,
            roi_head=roi_head,
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        self.box_grad = box_grad
        self.box_grad_clip = box_grad_clip
