# Copyright (c) OpenMMLab. All rights reserved.
import copy
import json
import os.path as osp

import numpy as np
import pytest
from mmengine.logging import MMLogger
from pycocotools import mask as mask_utils

from mnc_mm.datasets import CheckedCocoDataset, segmentation_error
from mnc_mm.datasets.checked_coco import _rle_string_counts
from mnc_mm.datasets.synthetic_shapes import write_png

CLASSES = ('circle', 'square')


def rle(mask):
    out = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return dict(size=out['size'], counts=out['counts'].decode('ascii'))


@pytest.fixture
def coco(tmp_path):
    """A valid 2-image set; returns (root, dict) to be mutated and saved."""
    mask = np.zeros((20, 30), bool)
    mask[2:8, 3:12] = True
    for name in ('a.png', 'b.png'):
        write_png(str(tmp_path / name), np.zeros((20, 30, 3), np.uint8))
    ann = dict(id=1, image_id=1, category_id=1, segmentation=rle(mask),
               area=54., bbox=[3., 2., 9., 6.], iscrowd=0)
    poly = dict(id=2, image_id=2, category_id=2, area=20.,
                segmentation=[[1., 1., 10., 1., 10., 5., 1., 5.]],
                bbox=[1., 1., 9., 4.], iscrowd=0)
    data = dict(
        images=[dict(id=1, file_name='a.png', height=20, width=30),
                dict(id=2, file_name='b.png', height=20, width=30)],
        annotations=[ann, poly],
        categories=[dict(id=1, name='circle'), dict(id=2, name='square'),
                    dict(id=3, name='triangle')])
    return tmp_path, data


def build(root, data, test_mode=False, classes=CLASSES, raw=None):
    ann_file = osp.join(root, 'ann.json')
    with open(ann_file, 'w') as f:
        f.write(raw if raw is not None else json.dumps(data))
    return CheckedCocoDataset(
        ann_file=ann_file,
        data_prefix=dict(img=str(root) + '/'),
        metainfo=dict(classes=classes),
        test_mode=test_mode,
        pipeline=[])


def test_valid_file_loads(coco):
    ds = build(*coco)
    assert len(ds) == 2
    assert [len(ds.get_data_info(i)['instances']) for i in (0, 1)] == [1, 1]


def test_invalid_json(coco):
    with pytest.raises(ValueError, match=r'ann\.json: not a valid JSON'):
        build(*coco, raw='{"images": [')


@pytest.mark.parametrize('edit, pattern', [
    (lambda d: d.pop('images'), r"expected a list under 'images'"),
    (lambda d: d['annotations'][1].pop('bbox'),
     r"annotations\[1\] \(id=2\) misses keys \['bbox'\]"),
    (lambda d: d['images'][0].pop('height'),
     r"images\[0\] \(id=1\) misses keys \['height'\]"),
    (lambda d: d['annotations'][0].update(image_id=9), r'image_id 9'),
    (lambda d: d['annotations'][0].update(category_id=7),
     r'category_id 7, expected one of .*\[1, 2, 3\]'),
])
def test_missing_keys_and_bad_references(coco, edit, pattern):
    root, data = coco
    edit(data)
    with pytest.raises(ValueError, match=r'ann\.json: .*' + pattern):
        build(root, data)


def test_missing_image(coco):
    root, data = coco
    data['images'][1]['file_name'] = 'gone.png'
    with pytest.raises(FileNotFoundError,
                       match=r"ann\.json: image id 2 .*'gone\.png'"):
        build(root, data)


@pytest.mark.parametrize('index, segmentation, pattern', [
    (1, [[1., 1., 10., 1., 10.]], r'polygon 0 should be'),
    (1, [[1., 1., 10., 1., 'x', 5.]], r'non-numeric'),
    (1, [], r'empty polygon'),
    (0, dict(size=[20, 30], counts='\x7f\x7f'), r'invalid character'),
    (0, dict(size=[20, 30], counts='0o'), r'ends inside a run'),
    (0, dict(size=[20, 30], counts=[10, 5]), r'sum to 20 x 30 = 600'),
    (0, dict(size=[20, 31], counts=[620]), r'differs from the image size'),
])
def test_undecodable_masks(coco, index, segmentation, pattern):
    root, data = coco
    data['annotations'][index]['segmentation'] = segmentation
    ann_id = data['annotations'][index]['id']
    with pytest.raises(ValueError,
                       match=rf'ann\.json: annotation id {ann_id} .*'
                       + pattern):
        build(root, data)


def test_empty_annotations(coco):
    root, data = coco
    data['annotations'] = []
    with pytest.raises(ValueError, match=r'ann\.json: no annotations'):
        build(root, data)
    ds = build(root, data, test_mode=True)  # e.g. a test-dev file
    assert len(ds) == 2


def test_category_outside_metainfo_is_skipped_with_warning(
        coco, monkeypatch):
    root, data = coco
    data['annotations'][1]['category_id'] = 3  # a file category
    warnings = []
    monkeypatch.setattr(MMLogger.get_current_instance(), 'warning',
                        warnings.append)
    ds = build(root, data)
    assert len(warnings) == 1
    assert 'ann.json: skipped annotations of categories not in metainfo ' \
        'classes (category_id: count) {3: 1}' in warnings[0]
    assert [len(ds.get_data_info(i)['instances']) for i in (0, 1)] == [1, 0]


def test_metainfo_classes_must_match_categories(coco):
    with pytest.raises(ValueError, match=r"metainfo classes \['square', "
                       r"'circle'\] among the file's categories"):
        build(*coco, classes=('square', 'circle'))
    with pytest.raises(ValueError, match='metainfo classes'):
        build(*coco, classes=('circle', 'hexagon'))


def test_rle_string_counts_match_pycocotools():
    rng = np.random.default_rng(0)
    for _ in range(20):
        mask = rng.random((23, 17)) < rng.random()
        runs = _rle_string_counts(rle(mask)['counts'])
        flat = np.repeat(np.arange(len(runs)) % 2, runs).astype(bool)
        np.testing.assert_array_equal(flat, mask.T.ravel())
        assert segmentation_error(rle(mask), 23, 17) is None
    bad = copy.deepcopy(rle(mask))
    bad['counts'] = bad['counts'][:-1] + 'o'
    assert segmentation_error(bad, 23, 17) is not None


def test_top_level_not_an_object(coco):
    with pytest.raises(ValueError, match=r'ann\.json: expected a JSON obj'):
        build(*coco, raw='[1, 2]')
