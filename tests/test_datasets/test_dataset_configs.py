# Copyright (c) OpenMMLab. All rights reserved.
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.evaluator import Evaluator
from mmengine.registry import init_default_scope
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from mmdet.registry import DATASETS
from mnc_mm.datasets import make_shapes_dataset

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.fixture(scope='module')
def cfg(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('shapes')) + '/'
    make_shapes_dataset(root, 4, 2, seed=0, img_size=(96, 128))
    cfg = Config.fromfile(
        osp.join(REPO, 'configs/_base_/datasets/shapes_instance.py'))
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        loader.dataset.data_root = root
    cfg.val_evaluator.ann_file = root + 'annotations/instances_val.json'
    init_default_scope('mmdet')
    return cfg


def test_train_pipeline(cfg):
    ds = DATASETS.build(cfg.train_dataloader.dataset)
    assert type(ds).__name__ == 'CheckedCocoDataset'
    assert ds.metainfo['classes'] == ('circle', 'square', 'triangle')
    for i in range(2):
        out = ds[i]
        img, gt = out['inputs'], out['data_samples'].gt_instances
        assert img.dtype == torch.uint8 and img.shape[0] == 3
        # short side 256 or long side 384 after the keep-ratio resize
        h, w = img.shape[1:]
        assert min(h, w) == 256 or max(h, w) == 384
        assert len(gt) >= 1 and gt.masks.masks.shape[1:] == (h, w)
        assert set(gt.labels.tolist()) <= {0, 1, 2}


def test_val_metrics_are_perfect_on_gt(cfg):
    """Feed the val gt back as predictions: every metric must give 1."""
    ds = DATASETS.build(cfg.val_dataloader.dataset)
    evaluator = Evaluator(cfg.val_evaluator)
    evaluator.dataset_meta = ds.metainfo
    api = COCO(cfg.val_evaluator.ann_file)
    cat2label = {c: i for i, c in enumerate(sorted(api.getCatIds()))}
    for i in range(len(ds)):
        sample = ds[i]['data_samples']
        anns = api.loadAnns(api.getAnnIds(imgIds=[sample.img_id]))
        masks = np.stack([mask_utils.decode(a['segmentation']) for a in anns])
        boxes = [[x, y, x + w, y + h] for x, y, w, h in
                 (a['bbox'] for a in anns)]
        pred = dict(
            bboxes=torch.tensor(boxes, dtype=torch.float32),
            scores=torch.ones(len(anns)),
            labels=torch.tensor([cat2label[a['category_id']] for a in anns]),
            masks=torch.from_numpy(masks.astype(bool)))
        result = sample.to_dict()
        result['pred_instances'] = pred
        evaluator.process([result], {})
    metrics = evaluator.evaluate(len(ds))
    assert metrics['coco/segm_mAP'] == pytest.approx(1.)
    assert metrics['coco/bbox_mAP'] == pytest.approx(1.)
    assert metrics['voc_mask/mAP_r@0.5'] == pytest.approx(1.)
    assert metrics['voc_mask/mAP_r@0.7'] == pytest.approx(1.)


def test_sbd_config_parses():
    cfg = Config.fromfile(
        osp.join(REPO, 'configs/_base_/datasets/sbd_instance.py'))
    assert len(cfg.metainfo.classes) == 20
    assert len(cfg.metainfo.palette) == 20
    assert cfg.val_evaluator.type == 'CocoVOCMaskAPMetric'
    assert cfg.val_evaluator.voc_iou_thrs == (0.5, 0.7)
    assert cfg.val_evaluator.ann_file == cfg.data_root + \
        'annotations/instances_val.json'
