# Copyright (c) OpenMMLab. All rights reserved.
"""CocoVOCMaskAPMetric: COCO AP and mAP^r in one metric, so that a child
config's one-line ``val_evaluator = dict(ann_file=...)`` (mmdet's own-data
idiom) keeps both."""
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
BASES = ['configs/_base_/datasets/shapes_instance.py',
         'configs/_base_/datasets/sbd_instance.py',
         'configs/demo/fcis_r18-tiny_shapes.py',
         'configs/mnc/mnc_vgg16_official-sbd.py']


@pytest.fixture(scope='module')
def root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('own_data'))
    make_shapes_dataset(root + '/', 3, 3, seed=1, img_size=(96, 128))
    return root


def child_config(tmp_path, base, root):
    """mmdet's own-data idiom: a child that only moves the data."""
    path = tmp_path / 'child.py'
    path.write_text(f'''
_base_ = [{osp.join(REPO, base)!r}]
data_root = {root + '/'!r}
val_dataloader = dict(dataset=dict(
    data_root=data_root, ann_file='annotations/instances_val.json',
    data_prefix=dict(img='val/')))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = val_evaluator
''')
    return Config.fromfile(str(path))


@pytest.mark.parametrize('base', BASES)
def test_child_overrides_ann_file_in_one_line(tmp_path, root, base):
    cfg = child_config(tmp_path, base, root)
    for evaluator in (cfg.val_evaluator, cfg.test_evaluator):
        assert evaluator.type == 'CocoVOCMaskAPMetric'
        assert evaluator.ann_file == root + '/annotations/instances_val.json'
        assert evaluator.metric == ['bbox', 'segm']


def predictions(sample, api, cat2label, drop_first=False):
    """The image's gt as predictions (optionally without its first one)."""
    anns = api.loadAnns(api.getAnnIds(imgIds=[sample.img_id]))
    if drop_first:
        anns = anns[1:]
    masks = np.stack([mask_utils.decode(a['segmentation']) for a in anns]) \
        if anns else np.zeros((0, ) + sample.ori_shape, np.uint8)
    boxes = [[x, y, x + w, y + h] for x, y, w, h in (a['bbox'] for a in anns)]
    return dict(
        bboxes=torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        scores=torch.ones(len(anns)),
        labels=torch.tensor([cat2label[a['category_id']] for a in anns],
                            dtype=torch.long),
        masks=torch.from_numpy(masks.astype(bool)))


@pytest.mark.parametrize('drop_first', [False, True])
def test_both_metrics_from_the_child_config(tmp_path, root, drop_first):
    """Gt fed back as predictions gives 1 for both; leaving out one gt
    instance of the first image lowers both by what each protocol says."""
    init_default_scope('mmdet')
    cfg = child_config(tmp_path, BASES[0], root)
    dataset = DATASETS.build(cfg.val_dataloader.dataset)
    evaluator = Evaluator(cfg.val_evaluator)
    evaluator.dataset_meta = dataset.metainfo
    api = COCO(cfg.val_evaluator.ann_file)
    cat2label = {c: i for i, c in enumerate(sorted(api.getCatIds()))}
    for i in range(len(dataset)):
        sample = dataset[i]['data_samples']
        result = sample.to_dict()
        result['pred_instances'] = predictions(
            sample, api, cat2label, drop_first and i == 0)
        evaluator.process([result], {})
    metrics = evaluator.evaluate(len(dataset))
    keys = ('coco/segm_mAP', 'coco/bbox_mAP', 'voc_mask/mAP_r@0.5',
            'voc_mask/mAP_r@0.7')
    if not drop_first:
        assert [metrics[k] for k in keys] == pytest.approx([1.] * 4)
        return
    # mAP^r: the class of the missing instance has recall (n - 1) / n, all
    # detections correct: VOC07 11-point AP = #{t <= (n-1)/n} / 11
    first = api.loadAnns(api.getAnnIds(
        imgIds=[dataset[0]['data_samples'].img_id]))[0]
    label = cat2label[first['category_id']]
    n = len(api.getAnnIds(catIds=[first['category_id']]))
    recall = (n - 1) / n
    ap = sum(recall >= t for t in np.arange(0., 1.1, 0.1)) / 11
    classes = len({a['category_id'] for a in api.dataset['annotations']})
    expected = (ap + classes - 1) / classes  # the others stay at 1
    assert metrics['voc_mask/mAP_r@0.5'] == pytest.approx(expected)
    assert metrics[f'voc_mask/{dataset.metainfo["classes"][label]}'
                   '_AP_r@0.5'] == pytest.approx(ap)
    assert metrics['coco/segm_mAP'] < 1.
