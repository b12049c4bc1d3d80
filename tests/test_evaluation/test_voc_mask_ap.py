# Copyright (c) OpenMMLab. All rights reserved.
import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from mmdet.evaluation.functional import average_precision

from mnc_mm.evaluation import VOCMaskAPMetric, sds_ap


def box_mask(y0, y1, x0, x1, shape=(10, 10)):
    """(H, W) bool mask, rows y0..y1-1 and cols x0..x1-1 set."""
    mask = np.zeros(shape, bool)
    mask[y0:y1, x0:x1] = True
    return mask


def sample(img_id, gt, preds):
    """A data sample; gt: [(label, mask)], preds: [(score, label, mask)]."""
    return dict(
        img_id=img_id,
        gt_instances=dict(
            labels=torch.tensor([g[0] for g in gt], dtype=torch.long),
            masks=np.stack([g[1] for g in gt])),
        pred_instances=dict(
            scores=torch.tensor([p[0] for p in preds]),
            labels=torch.tensor([p[1] for p in preds]),
            masks=torch.from_numpy(np.stack([p[2] for p in preds]))))


def evaluate(samples, classes, **kwargs):
    metric = VOCMaskAPMetric(**kwargs)
    metric.dataset_meta = dict(classes=classes)
    metric.process({}, samples)
    return metric.evaluate(len(samples))


def official_voc07_ap(recall, precision):
    """VOC07 11-point AP as MNC ``lib/utils/voc_eval.py`` ``voc_ap`` and
    FCIS ``lib/dataset/pascal_voc_eval.py`` write it (use_07_metric)."""
    ap = 0.
    for t in np.arange(0., 1.1, 0.1):
        p = 0. if np.sum(recall >= t) == 0 else np.max(precision[recall >= t])
        ap += p / 11.
    return ap


def test_mmdet_11points_ap_is_the_official_voc07_ap():
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(0, 30))
        tp = rng.random(n) < 0.6
        num_gts = max(1, int(tp.sum()) + int(rng.integers(0, 3)))
        recall = np.cumsum(tp) / num_gts
        precision = np.cumsum(tp) / np.arange(1, n + 1)
        # mmdet sums in float32: equal up to its rounding
        assert average_precision(recall, precision, mode='11points') == \
            pytest.approx(official_voc07_ap(recall, precision), abs=2e-7)
    # the 4th threshold is 0.30000000000000004: recall 0.3 reaches 3 of 11
    assert average_precision(np.array([0.3]), np.array([1.]),
                             '11points') == pytest.approx(3 / 11)
    assert sds_ap([], [], 3, 0.5) == 0.


def test_hand_computed_map():
    """Two classes A (0) and B (1), two 10x10 images.

    gt: image 1 has A1 (rows 0-4, cols 0-4), A2 (rows 5-9, cols 5-9) and B1
    (rows 0-4, cols 5-9); image 2 has A3 (cols 0-1, all rows). 3 A, 1 B.

    A predictions by score, with IoU to the best gt of the same image:
      0.9 im1 = A1 (IoU 1)            -> TP @.5, TP @.7
      0.8 im1 = A1 again (IoU 1)      -> FP (A1 already matched)
      0.7 im2 cols 0-2 (IoU 20/30)    -> TP @.5, FP @.7
      0.6 im1 A2 minus col 9 (IoU 0.8) -> TP, TP
      0.5 im2 cols 5-9 (IoU 0)        -> FP, FP
    @0.5: rec 1/3 1/3 2/3 1 1, prec 1 1/2 2/3 3/4 3/5: the 11-point
      envelope is 1 for t <= 0.3 (4 points) and 3/4 for t >= 0.4 (7):
      AP = (4 + 7 * 0.75) / 11 = 9.25 / 11.
    @0.7: rec 1/3 1/3 1/3 2/3 2/3, prec 1 1/2 1/3 1/2 2/5: 1 for 4 points,
      1/2 for t = 0.4, 0.5, 0.6, 0 above: AP = (4 + 1.5) / 11 = 0.5.
    B: 0.95 in image 2 (no B gt there) -> FP; 0.3 im1 = B1 -> TP:
      rec 0 1, prec 0 1/2: AP = 0.5 at both thresholds.
    """
    a1, a2, b1 = box_mask(0, 5, 0, 5), box_mask(5, 10, 5, 10), box_mask(
        0, 5, 5, 10)
    a3 = box_mask(0, 10, 0, 2)
    a2_part = box_mask(5, 10, 5, 9)
    samples = [
        sample(1, [(0, a1), (0, a2), (1, b1)], [(0.9, 0, a1), (0.8, 0, a1),
                                                (0.6, 0, a2_part),
                                                (0.3, 1, b1)]),
        sample(2, [(0, a3)], [(0.7, 0, box_mask(0, 10, 0, 3)),
                              (0.5, 0, box_mask(0, 10, 5, 10)),
                              (0.95, 1, box_mask(0, 3, 0, 3))]),
    ]
    res = evaluate(samples, ('A', 'B'))
    ap_a5, ap_a7 = 9.25 / 11, 0.5
    assert res['voc_mask/A_AP_r@0.5'] == pytest.approx(ap_a5)
    assert res['voc_mask/A_AP_r@0.7'] == pytest.approx(ap_a7)
    assert res['voc_mask/B_AP_r@0.5'] == pytest.approx(0.5)
    assert res['voc_mask/B_AP_r@0.7'] == pytest.approx(0.5)
    assert res['voc_mask/mAP_r@0.5'] == pytest.approx((ap_a5 + 0.5) / 2)
    assert res['voc_mask/mAP_r@0.7'] == pytest.approx((ap_a7 + 0.5) / 2)
    res = evaluate(samples, ('A', 'B'), classwise=False, iou_thrs=(0.5, ))
    assert list(res) == ['voc_mask/mAP_r@0.5']


def test_class_without_gt_is_left_out_of_the_mean():
    m = box_mask(0, 5, 0, 5)
    res = evaluate([sample(1, [(0, m)], [(0.9, 0, m), (0.8, 1, m)])],
                   ('A', 'B'))
    assert res['voc_mask/mAP_r@0.5'] == pytest.approx(1.)
    assert 'voc_mask/B_AP_r@0.5' not in res


def test_agrees_with_coco_ap50():
    """Where VOC07 11-point and COCO 101-point AP50 coincide exactly.

    One class; every prediction either equals a gt mask (IoU 1) or touches
    no gt (IoU 0); all misses score above all hits, and every gt is found.
    Then precision only rises along the ranking, its envelope is the final
    precision P = #gt / #predictions at every recall, and both protocols
    average that constant: AP = P (here 5 / 8) for 11 or 101 points alike.
    """
    shape = (16, 16)
    gts = {
        1: [box_mask(0, 4, 0, 4, shape),
            box_mask(8, 16, 8, 16, shape)],
        2: [box_mask(2, 6, 2, 12, shape)],
        3: [box_mask(0, 16, 0, 3, shape),
            box_mask(0, 3, 5, 16, shape)],
    }
    misses = {1: [box_mask(0, 4, 10, 14, shape)],
              2: [box_mask(10, 14, 0, 16, shape)],
              3: [box_mask(8, 12, 8, 12, shape)]}
    samples, coco_gt, coco_dt = [], [], []
    for img_id in gts:
        hits = [(0.5 - 0.01 * i, m) for i, m in enumerate(gts[img_id])]
        miss = [(0.9 - 0.01 * img_id, m) for m in misses[img_id]]
        preds = [(s, 0, m) for s, m in hits + miss]
        samples.append(sample(img_id, [(0, m) for m in gts[img_id]], preds))
        for m in gts[img_id]:
            rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
            coco_gt.append(
                dict(
                    id=len(coco_gt) + 1,
                    image_id=img_id,
                    category_id=1,
                    segmentation=rle,
                    area=float(m.sum()),
                    bbox=list(mask_utils.toBbox(rle)),
                    iscrowd=0))
        for s, _, m in preds:
            rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
            coco_dt.append(
                dict(image_id=img_id, category_id=1, segmentation=rle,
                     score=s))
    api = COCO()
    api.dataset = dict(
        images=[dict(id=i, height=16, width=16) for i in gts],
        annotations=coco_gt,
        categories=[dict(id=1, name='thing')])
    api.createIndex()
    coco_eval = COCOeval(api, api.loadRes(coco_dt), 'segm')
    coco_eval.evaluate()
    coco_eval.accumulate()
    coco_eval.summarize()
    ap50 = coco_eval.stats[1]
    res = evaluate(samples, ('thing', ))
    assert ap50 == pytest.approx(5 / 8)
    assert res['voc_mask/mAP_r@0.5'] == pytest.approx(ap50)


def _hand_samples():
    a, b = box_mask(0, 5, 0, 5), box_mask(5, 10, 5, 10)
    return [sample(1, [(0, a), (1, b)], [(0.9, 0, a), (0.8, 1, a),
                                         (0.7, 1, box_mask(5, 10, 5, 8))]),
            sample(2, [(0, b)], [(0.6, 0, box_mask(4, 10, 4, 10))])]


def test_rle_predictions_as_in_an_out_pickle():
    """mmdet's DumpDetResults (``tools/test.py --out``) stores the masks as
    RLE; the metric gives the same numbers on them as on the tensors."""
    from mmdet.structures.mask import encode_mask_results
    as_tensors = _hand_samples()
    as_rle = _hand_samples()
    for s in as_rle:
        pred = s['pred_instances']
        pred['masks'] = encode_mask_results(pred['masks'].numpy())
    expected = evaluate(as_tensors, ('A', 'B'))
    assert evaluate(as_rle, ('A', 'B')) == expected
    assert 0 < expected['voc_mask/mAP_r@0.7'] < 1

    del as_rle[0]['gt_instances']
    with pytest.raises(KeyError, match='set ann_file'):
        evaluate(as_rle, ('A', 'B'))
