# Copyright (c) OpenMMLab. All rights reserved.
"""Test-time augmentation of instance segmentation (mmdet's ``--tta``).

mmdet's ``DetTTAModel`` refuses instance masks. :class:`InstanceTTAModel`
takes each view's final instances, maps them back to the original image
(undoes the flip; the masks are already pasted at the original size) and
merges all views by :func:`vote_instances`.
"""
import copy
from typing import List, Optional, Union

import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import bbox_flip
from mmengine.config import ConfigDict
from mmengine.model import BaseTTAModel
from mmengine.structures import InstanceData
from torch import nn

from .instance_voting import vote_instances

_MASK_FLIP_DIMS = dict(horizontal=(-1, ), vertical=(-2, ),
                       diagonal=(-2, -1))


def unflip_instances(instances: InstanceData, direction: str,
                     ori_shape) -> InstanceData:
    """Instances predicted on a flipped image, in the unflipped image.

    Args:
        instances (InstanceData): ``bboxes`` (K, 4) mmdet boxes, ``masks``
            (K, H, W) in the flipped original image of (H, W) ``ori_shape``.
        direction (str): ``'horizontal'``, ``'vertical'`` or
            ``'diagonal'`` (mmdet's RandomFlip).

    Returns:
        InstanceData: a copy with the boxes and masks flipped back.
    """
    if direction not in _MASK_FLIP_DIMS:
        raise ValueError(f'unflip_instances: flip_direction must be one of '
                         f'{tuple(_MASK_FLIP_DIMS)}, got {direction!r}')
    out = instances.clone()
    out.bboxes = bbox_flip(instances.bboxes, ori_shape, direction)
    out.masks = instances.masks.flip(_MASK_FLIP_DIMS[direction])
    return out


def _merge_module_test_cfg(module: dict, view_test_cfg: dict) -> dict:
    """The module config with ``view_test_cfg`` merged into its
    ``test_cfg``."""
    module = ConfigDict(copy.deepcopy(module))
    module.merge(dict(test_cfg=view_test_cfg))
    return module


@MODELS.register_module()
class InstanceTTAModel(BaseTTAModel):
    """Merge the instance masks of flipped and rescaled views by voting.

    Each view is predicted by the wrapped detector (mmengine's
    ``BaseTTAModel.test_step``) with ``rescale=True``, i.e. boxes and
    masks in the (possibly flipped) original image; flips are undone and
    the instances of all views voted together (:func:`vote_instances`).

    Args:
        module (dict or nn.Module): the detector.
        tta_cfg (dict): keywords of :func:`vote_instances` (``nms_thr``,
            ``merge_iou_thr``, ``mask_thr``, ``max_per_img``).
        view_test_cfg (dict, optional): merged into the detector config's
            ``test_cfg`` (only when ``module`` is a config), e.g. to keep
            more candidates per view than the final per-image cap.
        data_preprocessor: as ``BaseTTAModel``.
    """

    def __init__(self,
                 module: Union[dict, nn.Module],
                 tta_cfg: Optional[dict] = None,
                 view_test_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None) -> None:
        if view_test_cfg:
            if not isinstance(module, dict):
                raise TypeError('InstanceTTAModel: view_test_cfg needs the '
                                'detector as a config dict, got '
                                f'{type(module).__name__}')
            module = _merge_module_test_cfg(module, view_test_cfg)
        super().__init__(module=module, data_preprocessor=data_preprocessor)
        self.tta_cfg = dict(tta_cfg or {})
        # Fail at build time, not at the first image.
        vote_instances(torch.zeros(0, 4), torch.zeros(0),
                       torch.zeros(0, dtype=torch.long),
                       torch.zeros(0, 1, 1, dtype=torch.bool), **self.tta_cfg)

    def _view_instances(self, sample: DetDataSample) -> InstanceData:
        """One view's instances in the unflipped original image."""
        instances = sample.pred_instances
        ori_shape = tuple(sample.ori_shape[:2])
        if tuple(instances.masks.shape[-2:]) != ori_shape:
            raise ValueError(
                'InstanceTTAModel: each view must predict masks at the '
                f'original size {ori_shape} (rescale=True), got '
                f'{tuple(instances.masks.shape[-2:])}')
        if sample.metainfo.get('flip', False):
            instances = unflip_instances(instances,
                                         sample.metainfo['flip_direction'],
                                         ori_shape)
        return instances

    def merge_preds(
            self,
            data_samples_list: List[List[DetDataSample]]
    ) -> List[DetDataSample]:
        """Per image, its views' instances voted into one set.

        Args:
            data_samples_list: per image, the data samples of its views.

        Returns:
            list[DetDataSample]: per image, the sample of its first
            unflipped view (the first view, marked unflipped, if all are
            flipped), carrying the merged ``pred_instances``.
        """
        merged = []
        for views in data_samples_list:
            candidates = InstanceData.cat(
                [self._view_instances(view) for view in views])
            boxes, scores, labels, masks = vote_instances(
                candidates.bboxes, candidates.scores, candidates.labels,
                candidates.masks, **self.tta_cfg)
            # gt loaded before a flip is flipped: keep an unflipped view's
            sample = next((view for view in views
                           if not view.metainfo.get('flip', False)),
                          views[0]).clone()
            if 'flip' in sample:
                sample.set_metainfo(dict(flip=False))
            sample.pred_instances = InstanceData(
                bboxes=boxes, scores=scores, labels=labels, masks=masks)
            merged.append(sample)
        return merged
