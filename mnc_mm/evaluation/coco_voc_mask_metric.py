# Copyright (c) OpenMMLab. All rights reserved.
"""COCO bbox/segm AP and the SDS mAP^r of VOC in one metric.

Both papers report mAP^r (:class:`VOCMaskAPMetric`) on VOC and COCO AP
(mmdet's ``CocoMetric``) everywhere. With one metric the data set configs
hold ``val_evaluator = dict(type=..., ann_file=...)``, a dict, so that
mmdet's own-data idiom, a child config's one-line
``val_evaluator = dict(ann_file=data_root + 'val.json')``, merges into it
and keeps both.
"""
from typing import Optional, Sequence

from mmdet.evaluation import CocoMetric
from mmdet.registry import METRICS
from .voc_mask_ap import VOCMaskAPMetric


@METRICS.register_module()
class CocoVOCMaskAPMetric(CocoMetric):
    """mmdet's ``CocoMetric`` plus :class:`VOCMaskAPMetric` on the same
    predictions and the same ``ann_file``.

    Keys: those of both, with their own prefixes (``coco/segm_mAP``, ...,
    ``voc_mask/mAP_r@0.5``, ...).

    Args:
        ann_file (str, optional): COCO json of the gt, read by both.
        voc_iou_thrs (Sequence[float]): mask IoU thresholds of mAP^r.
            Default (0.5, 0.7).
        voc_classwise (bool): also the per-class AP^r. Default True.
        **kwargs: the other arguments of ``CocoMetric`` (``metric``,
            ``backend_args``, ``collect_device``, ...).
    """

    def __init__(self,
                 ann_file: Optional[str] = None,
                 voc_iou_thrs: Sequence[float] = (0.5, 0.7),
                 voc_classwise: bool = True,
                 **kwargs) -> None:
        super().__init__(ann_file=ann_file, **kwargs)
        self.voc_metric = VOCMaskAPMetric(
            ann_file=ann_file,
            iou_thrs=voc_iou_thrs,
            classwise=voc_classwise,
            backend_args=kwargs.get('backend_args'),
            collect_device=kwargs.get('collect_device', 'cpu'))

    @CocoMetric.dataset_meta.setter
    def dataset_meta(self, dataset_meta: dict) -> None:
        """Set the meta of both metrics."""
        CocoMetric.dataset_meta.fset(self, dataset_meta)
        self.voc_metric.dataset_meta = dataset_meta

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Keep the predictions (and gt) for both metrics."""
        super().process(data_batch, data_samples)
        self.voc_metric.process(data_batch, data_samples)

    def evaluate(self, size: int) -> dict:
        """COCO's results, then mAP^r's (each collected over ranks)."""
        metrics = super().evaluate(size)
        metrics.update(self.voc_metric.evaluate(size))
        return metrics
