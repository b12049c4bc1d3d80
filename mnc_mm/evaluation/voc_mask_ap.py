# Copyright (c) OpenMMLab. All rights reserved.
"""mAP^r: the SDS protocol both MNC and FCIS report on VOC 2012 val.

Protocol (official ``voc_eval_sds`` of MNC ``lib/utils/voc_eval.py`` and
FCIS ``lib/dataset/pascal_voc_eval.py``):

- per class, all predictions of the class over the whole set are sorted by
  score, highest first;
- each prediction takes the gt instance of its class *in its image* with the
  highest mask IoU (first one on ties); it is a true positive if that IoU is
  ``>= thr`` and that gt is not matched yet, otherwise a false positive
  (there is no fall-back to the second-best gt). A prediction in an image
  without gt of its class is a false positive;
- recall = TP / #gt of the class, precision = TP / (TP + FP);
- AP = VOC07 11-point AP: mean over t in ``np.arange(0., 1.1, 0.1)`` of
  the max precision at recall >= t (0 if none), which is mmdet's
  ``average_precision(mode='11points')``. Like the official code this
  uses the float thresholds as ``arange`` produces them, e.g. 0.3 is
  0.30000000000000004, so a recall of exactly 3/10 does not reach it;
- mAP^r = mean of the per-class APs, at IoU 0.5 and 0.7.

SBD has no 'difficult' flag, so none is used. COCO-style ``iscrowd``
annotations are left out of the gt entirely (neither counted nor matchable),
as the official FCIS loader drops them (msracver/FCIS lib/dataset/coco.py).
Classes without any gt are left out of the mean (the official code would count
them as AP 0; VOC val has gt for all 20 classes).
"""
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.fileio import get_local_path
from mmengine.logging import MMLogger
from pycocotools import mask as mask_utils

from mmdet.datasets.api_wrappers import COCO
from mmdet.evaluation.functional import average_precision
from mmdet.registry import METRICS
from mmdet.structures.mask import encode_mask_results


def match_sds(ious: np.ndarray, iou_thr: float) -> np.ndarray:
    """Greedy SDS matching of one image's predictions of one class.

    Args:
        ious (np.ndarray): (D, G) mask IoU, predictions sorted by score,
            highest first.
        iou_thr (float): Minimum IoU (inclusive) of a true positive.

    Returns:
        np.ndarray: (D,) bool, True for a true positive.
    """
    tp = np.zeros(ious.shape[0], dtype=bool)
    if ious.shape[1] == 0:
        return tp
    matched = np.zeros(ious.shape[1], dtype=bool)
    best = ious.argmax(axis=1)
    for d, g in enumerate(best):
        if ious[d, g] >= iou_thr and not matched[g]:
            tp[d] = matched[g] = True
    return tp


def sds_ap(scores: List[np.ndarray], ious: List[np.ndarray], num_gts: int,
           iou_thr: float) -> float:
    """AP^r of one class over a set of images.

    Args:
        scores (list[np.ndarray]): Per image, (D_i,) prediction scores.
        ious (list[np.ndarray]): Per image, (D_i, G_i) mask IoU of those
            predictions with the image's gt of the class.
        num_gts (int): Number of gt instances of the class (> 0).
        iou_thr (float): IoU threshold.

    Returns:
        float: VOC07 11-point AP.
    """
    all_scores, all_tp = [], []
    for s, iou in zip(scores, ious):
        order = np.argsort(-s, kind='stable')
        all_scores.append(s[order])
        all_tp.append(match_sds(iou[order], iou_thr))
    if not all_scores:
        return 0.
    scores_cat = np.concatenate(all_scores)
    order = np.argsort(-scores_cat, kind='stable')
    tp = np.concatenate(all_tp)[order].astype(np.float64)
    tp_cum = np.cumsum(tp)
    fp_cum = np.cumsum(1. - tp)
    recall = tp_cum / num_gts
    precision = tp_cum / np.maximum(tp_cum + fp_cum, np.finfo(np.float64).eps)
    return float(average_precision(recall, precision, mode='11points'))


@METRICS.register_module()
class VOCMaskAPMetric(BaseMetric):
    """SDS mAP^r (mask IoU 0.5 and 0.7, VOC07 11-point AP) per class.

    The gt is read from ``ann_file`` (COCO json, as ``CocoMetric`` does) or,
    without it, from each data sample's ``gt_instances`` (masks at the
    original image size, i.e. ``LoadAnnotations`` after ``Resize`` in the
    test pipeline). Predictions are mmdet's ``pred_instances`` with
    ``masks`` (N, H, W) bool at the original size, ``scores`` (N,) and
    ``labels`` (N,) indexing ``dataset_meta['classes']``.

    Keys (with the default prefix): ``voc_mask/mAP_r@0.5``,
    ``voc_mask/mAP_r@0.7`` and, if ``classwise``, ``voc_mask/<class>_AP_r@0.5``
    etc. Values are in [0, 1].

    Args:
        ann_file (str, optional): COCO json with the gt masks.
        iou_thrs (Sequence[float]): Mask IoU thresholds. Default (0.5, 0.7).
        classwise (bool): Also return the per-class APs. Default True.
        backend_args (dict, optional): Backend of ``ann_file``.
        collect_device (str): 'cpu' or 'gpu' for collecting results.
        prefix (str, optional): Key prefix. Default 'voc_mask'.
    """
    default_prefix: Optional[str] = 'voc_mask'

    def __init__(self,
                 ann_file: Optional[str] = None,
                 iou_thrs: Sequence[float] = (0.5, 0.7),
                 classwise: bool = True,
                 backend_args: Optional[dict] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.iou_thrs = tuple(float(t) for t in iou_thrs)
        self.classwise = classwise
        self._coco_api = None
        if ann_file is not None:
            with get_local_path(ann_file, backend_args=backend_args) as path:
                self._coco_api = COCO(path)

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Keep scores, labels and RLE masks of the predictions (and gt).

        Predicted masks may already be RLE (a list of dicts), as in a
        ``tools/test.py --out`` pickle read by mmdet's ``eval_metric.py``;
        ``CocoMetric`` takes both too.
        """
        for sample in data_samples:
            pred = sample['pred_instances']
            masks = pred['masks']
            result = dict(
                img_id=sample['img_id'],
                scores=_to_numpy(pred['scores']).astype(np.float64),
                labels=_to_numpy(pred['labels']).astype(np.int64),
                masks=list(masks) if isinstance(masks, (list, tuple)) else
                encode_mask_results(_to_numpy(masks)))
            if self._coco_api is None:
                if 'gt_instances' not in sample:
                    raise KeyError(
                        f'{type(self).__name__} without ann_file reads the gt '
                        f'from each data sample\'s gt_instances, found none '
                        f'(keys: {sorted(sample)}); a tools/test.py --out '
                        f'pickle has no gt: set ann_file')
                gt = sample['gt_instances']
                masks = gt['masks']
                masks = (masks.to_ndarray()
                         if hasattr(masks, 'to_ndarray') else
                         _to_numpy(masks))
                result['gt_labels'] = _to_numpy(gt['labels']).astype(np.int64)
                result['gt_masks'] = encode_mask_results(masks.astype(bool))
            self.results.append(result)

    def _gt_from_ann_file(self, img_id: int, cat2label: dict) -> tuple:
        """Non-crowd gt (labels (G,), RLE list) of an image from ann_file."""
        anns = [
            a for a in self._coco_api.load_anns(
                self._coco_api.get_ann_ids(img_ids=[img_id]))
            if not a.get('iscrowd', 0) and a['category_id'] in cat2label
        ]
        labels = np.array([cat2label[a['category_id']] for a in anns],
                          dtype=np.int64)
        return labels, [self._coco_api.annToRLE(a) for a in anns]

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """Per-class AP^r and mAP^r at each IoU threshold."""
        logger = MMLogger.get_current_instance()
        classes = self.dataset_meta['classes']
        num_classes = len(classes)
        scores = [[] for _ in range(num_classes)]
        ious = [[] for _ in range(num_classes)]
        num_gts = np.zeros(num_classes, dtype=np.int64)
        if self._coco_api is not None:
            cat_ids = self._coco_api.get_cat_ids(cat_names=classes)
            if len(cat_ids) != num_classes:
                raise ValueError(
                    f'expected the {num_classes} classes of dataset_meta '
                    f'among the ann_file categories, found {len(cat_ids)}')
            cat2label = {cat_id: i for i, cat_id in enumerate(cat_ids)}
        for res in results:
            if self._coco_api is None:
                gt_labels, gt_masks = res['gt_labels'], res['gt_masks']
            else:
                gt_labels, gt_masks = self._gt_from_ann_file(
                    res['img_id'], cat2label)
            num_gts += np.bincount(gt_labels, minlength=num_classes)
            for c in np.unique(res['labels']):
                dets = np.flatnonzero(res['labels'] == c)
                gts = np.flatnonzero(gt_labels == c)
                iou = np.zeros((dets.size, gts.size))
                if gts.size:
                    iou = mask_utils.iou([res['masks'][i] for i in dets],
                                         [gt_masks[j] for j in gts],
                                         [0] * gts.size)
                scores[c].append(res['scores'][dets])
                ious[c].append(np.asarray(iou, dtype=np.float64))

        metrics = OrderedDict()
        missing = [classes[c] for c in range(num_classes) if num_gts[c] == 0]
        if missing:
            logger.warning(f'{self.__class__.__name__}: no gt for classes '
                           f'{missing}; they are left out of mAP_r')
        for thr in self.iou_thrs:
            aps = {
                classes[c]: sds_ap(scores[c], ious[c], int(num_gts[c]), thr)
                for c in range(num_classes) if num_gts[c] > 0
            }
            metrics[f'mAP_r@{thr:g}'] = (
                float(np.mean(list(aps.values()))) if aps else 0.)
            if self.classwise:
                for name, ap in aps.items():
                    metrics[f'{name}_AP_r@{thr:g}'] = ap
            logger.info(f'mAP^r@{thr:g} = {metrics[f"mAP_r@{thr:g}"]:.4f}; ' +
                        ', '.join(f'{n}: {ap:.4f}' for n, ap in aps.items()))
        return metrics


def _to_numpy(x) -> np.ndarray:
    """A tensor or array-like as a numpy array."""
    return x.detach().cpu().numpy() if hasattr(x, 'detach') else np.asarray(x)
