# Copyright (c) OpenMMLab. All rights reserved.
import json
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import scipy.io as sio
import scipy.sparse as sp
from pycocotools import mask as mask_utils

from mnc_mm.datasets.sbd import VOC_CLASSES, load_sbd_instances, sbd_to_coco

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _cell(n, shape):
    """An (n, 1) MATLAB cell of sparse boundary maps, as SBD stores them."""
    cell = np.empty((n, 1), dtype=object)
    for i in range(n):
        cell[i, 0] = sp.csc_matrix(np.zeros(shape))
    return cell


def write_sbd_image(root, name, inst, cls, write_img=True):
    """Write ``inst/<name>.mat``, ``cls/<name>.mat`` (and a jpg)."""
    ids = [i for i in np.unique(inst) if i not in (0, 255)]
    for sub in ('inst', 'cls', 'img'):
        os.makedirs(osp.join(root, sub), exist_ok=True)
    sio.savemat(
        osp.join(root, 'inst', name + '.mat'), {
            'GTinst':
            dict(
                Segmentation=inst.astype(np.uint8),
                Boundaries=_cell(len(ids), inst.shape),
                Categories=np.array(
                    [[np.unique(cls[inst == i])[0]] for i in ids],
                    dtype=np.uint8).reshape(-1, 1))
        })
    sio.savemat(
        osp.join(root, 'cls', name + '.mat'), {
            'GTcls':
            dict(
                Segmentation=cls.astype(np.uint8),
                Boundaries=_cell(len(VOC_CLASSES), cls.shape),
                CategoriesPresent=np.unique(cls[(cls > 0) & (cls < 255)])
                .astype(np.uint8).reshape(-1, 1))
        })
    if write_img:
        import cv2
        cv2.imwrite(
            osp.join(root, 'img', name + '.jpg'),
            np.full(inst.shape + (3, ), 128, np.uint8))


def example_maps():
    """A 12x16 image: person (inst 1), dog (inst 2) and a 255 border."""
    inst = np.zeros((12, 16), np.uint8)
    cls = np.zeros((12, 16), np.uint8)
    inst[1:6, 2:7], cls[1:6, 2:7] = 1, 15  # person, box x 2..6, y 1..5
    inst[7:11, 9:15], cls[7:11, 9:15] = 2, 12  # dog, box x 9..14, y 7..10
    # The VOC 'boundary/void' label around the dog: id 255, class 255.
    inst[6, 8:16], cls[6, 8:16] = 255, 255
    inst[7:11, 8], cls[7:11, 8] = 255, 255
    return inst, cls


@pytest.fixture
def sbd_root(tmp_path):
    inst, cls = example_maps()
    write_sbd_image(str(tmp_path), '2008_000001', inst, cls)
    empty = np.zeros((5, 7), np.uint8)
    write_sbd_image(str(tmp_path), '2008_000002', empty, empty)
    (tmp_path / 'train.txt').write_text('2008_000001\n2008_000002\n')
    return str(tmp_path)


def test_load_instances_skips_background_and_boundary(sbd_root):
    shape, instances = load_sbd_instances(
        osp.join(sbd_root, 'inst', '2008_000001.mat'),
        osp.join(sbd_root, 'cls', '2008_000001.mat'))
    inst, _ = example_maps()
    assert shape == (12, 16)
    assert [(i, c) for i, c, _ in instances] == [(1, 15), (2, 12)]
    for inst_id, _, mask in instances:
        np.testing.assert_array_equal(mask, inst == inst_id)
    # boundary pixels belong to no instance
    assert not (instances[0][2] | instances[1][2])[inst == 255].any()


def test_sbd_to_coco(sbd_root):
    coco = sbd_to_coco(sbd_root, osp.join(sbd_root, 'train.txt'))
    assert [c['name'] for c in coco['categories']] == list(VOC_CLASSES)
    assert [c['id'] for c in coco['categories']] == list(range(1, 21))
    assert coco['images'] == [
        dict(id=1, file_name='2008_000001.jpg', height=12, width=16),
        dict(id=2, file_name='2008_000002.jpg', height=5, width=7)
    ]
    inst, _ = example_maps()
    anns = coco['annotations']
    assert [(a['image_id'], a['category_id'], a['sbd_instance_id'])
            for a in anns] == [(1, 15, 1), (1, 12, 2)]
    assert VOC_CLASSES[15 - 1] == 'person' and VOC_CLASSES[12 - 1] == 'dog'
    assert anns[0]['bbox'] == [2, 1, 5, 5] and anns[0]['area'] == 25
    assert anns[1]['bbox'] == [9, 7, 6, 4] and anns[1]['area'] == 24
    for ann in anns:
        mask = mask_utils.decode(ann['segmentation'])
        np.testing.assert_array_equal(mask, inst == ann['sbd_instance_id'])
        assert ann['iscrowd'] == 0


def test_errors_name_the_file(sbd_root):
    inst, cls = example_maps()
    cls[1, 2] = 7  # the person instance now covers two classes
    write_sbd_image(sbd_root, 'bad', inst, cls, write_img=False)
    with pytest.raises(ValueError, match=r'bad\.mat.*instance 1.*\[7, 15\]'):
        load_sbd_instances(
            osp.join(sbd_root, 'inst', 'bad.mat'),
            osp.join(sbd_root, 'cls', 'bad.mat'))
    split = osp.join(sbd_root, 'val.txt')
    with open(split, 'w') as f:
        f.write('2008_000001\nmissing_image\n')
    with pytest.raises(FileNotFoundError, match='missing_image'):
        sbd_to_coco(sbd_root, split)
    sio.savemat(osp.join(sbd_root, 'inst', 'x.mat'), {'Segmentation': inst})
    with pytest.raises(KeyError, match=r"x\.mat.*GTinst"):
        load_sbd_instances(
            osp.join(sbd_root, 'inst', 'x.mat'),
            osp.join(sbd_root, 'cls', '2008_000001.mat'))


def test_converter_cli(sbd_root):
    out = osp.join(sbd_root, 'annotations', 'instances_train.json')
    proc = subprocess.run([
        sys.executable,
        osp.join(REPO, 'tools/dataset_converters/sbd_to_coco.py'), sbd_root,
        '--split', 'train'
    ],
                          env=dict(os.environ, PYTHONPATH=REPO),
                          capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    assert 'lists 2 images' in proc.stdout and '5623' in proc.stdout
    with open(out) as f:
        assert len(json.load(f)['annotations']) == 2
