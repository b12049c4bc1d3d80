# Copyright (c) OpenMMLab. All rights reserved.
import json
import os
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils

from mnc_mm.datasets.synthetic_shapes import (MIN_VISIBLE_PX, SHAPES_CLASSES,
                                              make_shapes_dataset,
                                              visible_instances)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SIZE = (96, 128)


@pytest.fixture(scope='module')
def shapes(tmp_path_factory):
    out = str(tmp_path_factory.mktemp('shapes'))
    paths = make_shapes_dataset(out, 8, 3, seed=1, img_size=SIZE)
    with open(paths['train_ann_file']) as f:
        return out, paths, json.load(f)


def _read(path):
    with open(path, 'rb') as f:
        return f.read()


def test_determinism(shapes, tmp_path):
    out, paths, _ = shapes
    again = make_shapes_dataset(str(tmp_path / 'a'), 8, 3, 1, SIZE)
    other = make_shapes_dataset(str(tmp_path / 'b'), 8, 3, 2, SIZE)
    for key in ('train_ann_file', 'val_ann_file'):
        assert _read(paths[key]) == _read(again[key])
        assert _read(paths[key]) != _read(other[key])
    assert _read(osp.join(out, 'train', '000003.png')) == _read(
        osp.join(again['train_img_dir'], '000003.png'))
    assert sorted(os.listdir(paths['val_img_dir'])) == [
        '000000.png', '000001.png', '000002.png'
    ]


def test_classes_and_instances_per_image(shapes):
    _, _, coco = shapes
    assert [(c['id'], c['name']) for c in coco['categories']] == [
        (1, 'circle'), (2, 'square'), (3, 'triangle')
    ]
    assert SHAPES_CLASSES == ('circle', 'square', 'triangle')
    per_image = np.bincount([a['image_id'] for a in coco['annotations']],
                            minlength=len(coco['images']) + 1)[1:]
    assert per_image.min() >= 1 and per_image.max() <= 6
    assert {a['category_id'] for a in coco['annotations']} <= {1, 2, 3}
    assert len({a['id'] for a in coco['annotations']}) == len(
        coco['annotations'])


def test_masks_agree_with_bbox_area_and_do_not_overlap(shapes):
    out, _, coco = shapes
    for img in coco['images']:
        png = cv2.imread(osp.join(out, 'train', img['file_name']))
        h, w = png.shape[:2]
        assert (img['height'], img['width']) == (h, w)
        assert SIZE[0] <= min(h, w) and max(h, w) <= SIZE[1]
        anns = [a for a in coco['annotations'] if a['image_id'] == img['id']]
        union = np.zeros((h, w), np.int64)
        for ann in anns:
            assert ann['iscrowd'] == 0
            mask = mask_utils.decode(ann['segmentation']).astype(bool)
            assert mask.shape == (h, w)
            assert ann['area'] == mask.sum() >= MIN_VISIBLE_PX
            ys, xs = np.nonzero(mask)
            assert ann['bbox'] == [
                xs.min(), ys.min(),
                xs.max() - xs.min() + 1,
                ys.max() - ys.min() + 1
            ]
            union += mask
        assert union.max() == 1  # visible parts of occluded shapes


def test_hidden_instances_are_dropped():
    owner = np.full((20, 20), -1)
    owner[:10, :10] = 0  # shape 0: 100 px, all visible
    owner[10:, :] = 1  # shape 1: 200 px visible of 1000 -> 20 % < 25 %
    owner[:10, 10:] = 2  # shape 2: 100 px visible of 300 -> kept
    owner[0, 19] = 3  # shape 3: 1 px visible -> dropped
    kept = visible_instances(owner, [0, 1, 2, 1], [100, 1000, 300, 50])
    assert [c for c, _ in kept] == [0, 2]
    assert [m.sum() for _, m in kept] == [100, 99]


def test_cli(tmp_path):
    env = dict(os.environ, PYTHONPATH=REPO)
    proc = subprocess.run([
        sys.executable,
        osp.join(REPO, 'tools/misc/make_shapes_dataset.py'),
        str(tmp_path), '--train', '2', '--val', '1', '--seed', '3',
        '--img-size', '64', '80'
    ],
                          env=env,
                          capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    with open(tmp_path / 'annotations' / 'instances_val.json') as f:
        assert len(json.load(f)['images']) == 1
    assert len(os.listdir(tmp_path / 'train')) == 2
