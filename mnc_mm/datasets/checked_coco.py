# Copyright (c) OpenMMLab. All rights reserved.
"""A ``CocoDataset`` that validates its annotation file up front.

Broken data fails at dataset construction with an error naming the file and
the entry, instead of deep inside a dataloader worker (or, for mmdet's silent
paths, being trained on as something else).
"""
import json
import math
from collections import Counter
from typing import List, Optional, Union

from mmengine import fileio
from mmengine.logging import MMLogger

from mmdet.datasets import CocoDataset
from mmdet.datasets.api_wrappers import COCO
from mmdet.registry import DATASETS

_REQUIRED = dict(
    images=('id', 'file_name', 'height', 'width'),
    annotations=('id', 'image_id', 'category_id', 'bbox', 'area'),
    categories=('id', 'name'))


def validate_coco_dict(dataset: dict, ann_file: str) -> None:
    """Check the keys and cross references of a COCO instances dict.

    Raises:
        ValueError: naming ``ann_file`` and the first bad entry.
    """
    if not isinstance(dataset, dict):
        raise ValueError(f'{ann_file}: expected a JSON object at the top '
                         f'level, found {type(dataset).__name__}')
    for key, fields in _REQUIRED.items():
        entries = dataset.get(key)
        if not isinstance(entries, list):
            raise ValueError(f'{ann_file}: expected a list under {key!r}, '
                             f'found {type(entries).__name__}')
        for i, entry in enumerate(entries):
            missing = [f for f in fields if f not in entry]
            if missing:
                raise ValueError(f'{ann_file}: {key}[{i}] (id='
                                 f'{entry.get("id")}) misses keys {missing}')
    img_ids = {img['id'] for img in dataset['images']}
    cat_ids = {cat['id'] for cat in dataset['categories']}
    for i, ann in enumerate(dataset['annotations']):
        if ann['image_id'] not in img_ids:
            raise ValueError(f'{ann_file}: annotations[{i}] (id={ann["id"]}) '
                             f'refers to image_id {ann["image_id"]}, which '
                             f'is not in "images"')
        if ann['category_id'] not in cat_ids:
            raise ValueError(
                f'{ann_file}: annotations[{i}] (id={ann["id"]}) has '
                f'category_id {ann["category_id"]}, expected one of the '
                f'file\'s categories {sorted(cat_ids)}')


class CheckedCOCO(COCO):
    """mmdet's ``COCO`` wrapper that names the file on unreadable JSON and
    validates the dict (``validate_coco_dict``) before indexing it."""

    def __init__(self, annotation_file: Optional[str] = None) -> None:
        self._ann_file = annotation_file
        try:
            super().__init__(annotation_file)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(
                f'{annotation_file}: not a valid JSON file ({e})') from e
        except AssertionError as e:  # pycocotools' check for a dict
            raise ValueError(f'{annotation_file}: expected a JSON object at '
                             f'the top level ({e})') from e

    def createIndex(self) -> None:  # noqa: N802 (pycocotools' name)
        validate_coco_dict(self.dataset, self._ann_file)
        super().createIndex()


def _rle_string_counts(counts: str) -> List[int]:
    """Run lengths of a COCO compressed RLE string (pycocotools' scheme)."""
    runs, p = [], 0
    while p < len(counts):
        value, k, more = 0, 0, True
        while more:
            if p == len(counts):
                raise ValueError('the string ends inside a run length')
            c = ord(counts[p]) - 48
            if not 0 <= c < 64:
                raise ValueError(f'invalid character {counts[p]!r} at {p}')
            value |= (c & 0x1f) << (5 * k)
            more = bool(c & 0x20)
            p, k = p + 1, k + 1
            if not more and c & 0x10:
                value |= -1 << (5 * k)
        if len(runs) > 2:
            value += runs[-2]
        runs.append(value)
    return runs


def segmentation_error(seg, height: int, width: int) -> Optional[str]:
    """Why a COCO ``segmentation`` would not decode to an (H, W) mask.

    Args:
        seg: polygons (list of [x0, y0, x1, y1, ...]) or RLE dict.
        height, width (int): Image size in px.

    Returns:
        str or None: a description of the problem, None if it decodes.
    """
    if isinstance(seg, list):
        if not seg:
            return 'empty polygon list'
        for i, poly in enumerate(seg):
            if (not isinstance(poly, list) or len(poly) < 6
                    or len(poly) % 2):
                return (f'polygon {i} should be a flat list of >= 3 (x, y) '
                        f'pairs, found {str(poly)[:60]}')
            if not all(
                    isinstance(v, (int, float)) and math.isfinite(v)
                    for v in poly):
                return f'polygon {i} has non-numeric or non-finite values'
        return None
    if not isinstance(seg, dict) or set(seg) != {'size', 'counts'}:
        return ('expected polygons or an RLE dict with "size" and "counts", '
                f'found {str(seg)[:60]}')
    if list(seg['size']) != [height, width]:
        return (f'RLE size {seg["size"]} differs from the image size '
                f'[{height}, {width}]')
    counts = seg['counts']
    try:
        runs = (_rle_string_counts(counts) if isinstance(counts, str) else
                [int(c) for c in counts])
    except (TypeError, ValueError) as e:
        return f'RLE counts do not decode: {e}'
    if min(runs, default=0) < 0 or sum(runs) != height * width:
        return (f'RLE run lengths should be >= 0 and sum to {height} x '
                f'{width} = {height * width}, found sum {sum(runs)} and '
                f'min {min(runs, default=0)}')
    return None


@DATASETS.register_module()
class CheckedCocoDataset(CocoDataset):
    """``CocoDataset`` that validates the annotation file when loading.

    Errors (raised at construction, naming the file and the entry):
    unreadable JSON; missing "images"/"annotations"/"categories" or missing
    keys in their entries; an annotation whose image or category is not in
    the file; a ``metainfo`` class that is not a category of the file or is
    in another order than the file's categories (mmdet would then silently
    mislabel); an image listed but missing on disk; a polygon or RLE that
    does not decode to the image size (mmdet would ignore bad polygons
    silently or crash in a worker); no annotation of the metainfo classes
    at all (e.g. an empty "annotations" list) when training (a warning in
    ``test_mode``).

    Warnings (mmdet skips these too): annotations of a category the
    ``metainfo`` does not select.

    Args:
        check_masks (bool): Validate every ``segmentation`` (needed when the
            pipeline loads masks). Default True.
        check_images (bool): Check that every image file exists.
            Default True.
        **kwargs: ``CocoDataset`` arguments.
    """
    COCOAPI = CheckedCOCO

    def __init__(self,
                 *args,
                 check_masks: bool = True,
                 check_images: bool = True,
                 **kwargs) -> None:
        self.check_masks = check_masks
        self.check_images = check_images
        super().__init__(*args, **kwargs)

    def load_data_list(self) -> List[dict]:
        """Load and validate; see the class docstring."""
        self._skipped_cats = Counter()
        self._categories_checked = False
        data_list = super().load_data_list()
        num_anns = sum(len(d['instances']) for d in data_list)
        logger = MMLogger.get_current_instance()
        if self._skipped_cats:
            logger.warning(
                f'{self.ann_file}: skipped annotations of categories not in '
                f'metainfo classes (category_id: count) '
                f'{dict(self._skipped_cats)}')
        if num_anns == 0:
            msg = (f'{self.ann_file}: no annotations of the metainfo classes '
                   f'{list(self.metainfo["classes"])}')
            if not self.test_mode:
                raise ValueError(f'{msg}; expected instances to train on')
            logger.warning(msg)
        return data_list

    def _check_categories(self) -> None:
        """Every metainfo class is a file category, in the file's order."""
        classes = list(self.metainfo['classes'])
        names = [self.coco.cats[i]['name'] for i in self.cat_ids]
        if names != classes:
            all_names = [c['name'] for c in self.coco.dataset['categories']]
            raise ValueError(
                f'{self.ann_file}: expected the metainfo classes {classes} '
                f'among the file\'s categories and in their order, found '
                f'categories {all_names}')
        self._categories_checked = True

    def parse_data_info(self, raw_data_info: dict) -> Union[dict, List[dict]]:
        """Check one image entry and its annotations, then parse them."""
        if not self._categories_checked:
            self._check_categories()
        img_info = raw_data_info['raw_img_info']
        h, w = img_info['height'], img_info['width']
        for ann in raw_data_info['raw_ann_info']:
            where = (f'{self.ann_file}: annotation id {ann["id"]} of image '
                     f'id {img_info["img_id"]} ({img_info["file_name"]})')
            if ann['category_id'] not in self.cat2label:
                self._skipped_cats[ann['category_id']] += 1
                continue
            bbox = ann['bbox']
            if not (isinstance(bbox, list) and len(bbox) == 4 and all(
                    isinstance(v, (int, float)) for v in bbox)):
                raise ValueError(f'{where}: expected bbox [x, y, w, h], '
                                 f'found {bbox}')
            if self.check_masks:
                error = ('missing "segmentation"' if 'segmentation'
                         not in ann else segmentation_error(
                             ann['segmentation'], h, w))
                if error:
                    raise ValueError(f'{where}: {error}')
        data_info = super().parse_data_info(raw_data_info)
        if self.check_images and not fileio.exists(
                data_info['img_path'], backend_args=self.backend_args):
            raise FileNotFoundError(
                f'{self.ann_file}: image id {img_info["img_id"]} is listed '
                f'as {img_info["file_name"]!r} but {data_info["img_path"]} '
                'does not exist')
        return data_info
