# Copyright (c) OpenMMLab. All rights reserved.
"""SBD (Semantic Boundaries Dataset) instance masks for the papers' VOC runs.

Layout read here (as MNC's ``data/VOCdevkitSDS`` after
``data/scripts/fetch_sbd_data.sh``)::

    sbd_root/img/<name>.jpg
    sbd_root/inst/<name>.mat   GTinst: Segmentation (H, W) instance ids,
                               Boundaries, Categories
    sbd_root/cls/<name>.mat    GTcls: Segmentation (H, W) class ids 1..20,
                               Boundaries, CategoriesPresent

Split files (one image name per line): both papers train on "VOC 2012 train"
= 5623 images and test on "VOC 2012 val" = 5732 images, i.e. MNC's
``VOCdevkitSDS/train.txt`` / ``val.txt`` (FCIS: ``VOCSDS/ImageSets/Main/
{train,val}.txt``, "SDS_train"/"SDS_val"); see daijifeng001/MNC
lib/utils/voc_eval.py (voc_eval_sds) and msracver/FCIS
experiments/fcis/cfgs/*.yaml. These are *not* SBD's own ``dataset/train.txt``
(8498) / ``val.txt`` (2857).
"""
import os.path as osp
from typing import Dict, List, Optional, Tuple

import numpy as np
import scipy.io as sio

from .coco_format import mask_to_coco_annotation

VOC_CLASSES = ('aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus',
               'car', 'cat', 'chair', 'cow', 'diningtable', 'dog', 'horse',
               'motorbike', 'person', 'pottedplant', 'sheep', 'sofa',
               'train', 'tvmonitor')
# Image counts of the papers' splits (daijifeng001/MNC lib/utils/voc_eval.py
# (voc_eval_sds), msracver/FCIS experiments/fcis/cfgs/*.yaml).
SDS_SPLIT_SIZES = {'train': 5623, 'val': 5732}
# Instance id of the VOC 'boundary/void' label. msracver/FCIS
# lib/dataset/pascal_voc.py (VOC: "ids 0 and 255 skipped"): the official FCIS
# loader and its SDS evaluation (``pascal_voc.py``
# ``load_sbd_mask_annotations``, ``pascal_voc_eval.py`` ``parse_inst``) drop
# instance ids 0 and 255, so 255-pixels belong to no instance. (MNC drops only
# 0; SBD's ``inst`` maps never contain 255, so the two agree on the real data.)
BOUNDARY_ID = 255


def read_split_file(split_file: str) -> List[str]:
    """Image names listed one per line (blank lines ignored)."""
    if not osp.isfile(split_file):
        raise FileNotFoundError(f'SBD split file not found: {split_file}')
    with open(split_file) as f:
        return [line.strip() for line in f if line.strip()]


def _mat_field(mat_file: str, struct: str, field: str) -> np.ndarray:
    """Read ``struct.field`` from a MATLAB file written like SBD's."""
    if not osp.isfile(mat_file):
        raise FileNotFoundError(f'SBD annotation not found: {mat_file}')
    mat = sio.loadmat(mat_file)
    if struct not in mat or field not in (mat[struct].dtype.names or ()):
        raise KeyError(f'{mat_file}: expected a struct {struct!r} with field '
                       f'{field!r}, found variables '
                       f'{sorted(k for k in mat if not k.startswith("__"))}')
    return mat[struct][field][0, 0]


def load_sbd_instances(
    inst_file: str, cls_file: str
) -> Tuple[Tuple[int, int], List[Tuple[int, int, np.ndarray]]]:
    """Instances of one SBD image, as the official loaders read them.

    Every instance id of ``GTinst.Segmentation`` except 0 (background) and
    255 (boundary, see ``BOUNDARY_ID``) is one instance; its class is the
    single ``GTcls.Segmentation`` value under its pixels.

    Args:
        inst_file (str): ``inst/<name>.mat``.
        cls_file (str): ``cls/<name>.mat``.

    Returns:
        tuple: the image shape (H, W) and a list of ``(instance id, class id
        in 1..20, (H, W) bool mask)`` in increasing instance id.
    """
    inst = _mat_field(inst_file, 'GTinst', 'Segmentation')
    cls = _mat_field(cls_file, 'GTcls', 'Segmentation')
    if inst.shape != cls.shape:
        raise ValueError(f'{inst_file}: instance map is {inst.shape} but '
                         f'class map {cls_file} is {cls.shape}')
    instances = []
    for inst_id in np.unique(inst):
        if inst_id in (0, BOUNDARY_ID):
            continue
        mask = inst == inst_id
        labels = np.unique(cls[mask])
        if labels.size != 1 or not 1 <= labels[0] <= len(VOC_CLASSES):
            raise ValueError(
                f'{inst_file}: instance {int(inst_id)} should cover a '
                f'single class in 1..{len(VOC_CLASSES)} of {cls_file}, '
                f'found classes {labels.tolist()}')
        instances.append((int(inst_id), int(labels[0]), mask))
    return inst.shape, instances


def sbd_to_coco(sbd_root: str,
                split_file: str,
                img_dir: str = 'img',
                check_images: bool = True) -> Dict:
    """Convert the SBD images of a split file to a COCO instance dict.

    Args:
        sbd_root (str): Folder holding ``img/``, ``inst/`` and ``cls/``.
        split_file (str): Image-name list, e.g. MNC's ``train.txt``.
        img_dir (str): Image folder relative to ``sbd_root``.
        check_images (bool): Raise if ``img/<name>.jpg`` is missing.

    Returns:
        dict: COCO json dict. Category ids are 1..20 (``VOC_CLASSES``),
        masks are compressed RLE, ``bbox`` is the tight box of the mask
        (xywh with w = x2 - x1 + 1), ``iscrowd`` is 0.
    """
    images, annotations = [], []
    for img_id, name in enumerate(read_split_file(split_file), 1):
        img_file = osp.join(sbd_root, img_dir, name + '.jpg')
        if check_images and not osp.isfile(img_file):
            raise FileNotFoundError(f'{split_file}: image {name!r} is listed '
                                    f'but {img_file} does not exist')
        (h, w), instances = load_sbd_instances(
            osp.join(sbd_root, 'inst', name + '.mat'),
            osp.join(sbd_root, 'cls', name + '.mat'))
        images.append(
            dict(id=img_id, file_name=name + '.jpg', height=h, width=w))
        for inst_id, label, mask in instances:
            annotations.append(
                mask_to_coco_annotation(
                    mask, len(annotations) + 1, img_id, label,
                    sbd_instance_id=inst_id))
    return dict(
        images=images,
        annotations=annotations,
        categories=[
            dict(id=i, name=name, supercategory='voc')
            for i, name in enumerate(VOC_CLASSES, 1)
        ])


def check_split_size(split_file: str, split: Optional[str],
                     num_images: int) -> Optional[str]:
    """A warning text if a 'train'/'val' split is not the papers' size."""
    expected = SDS_SPLIT_SIZES.get(split)
    if expected is None or expected == num_images:
        return None
    return (f'{split_file} lists {num_images} images; the papers\' {split} '
            f'split (MNC VOCdevkitSDS/{split}.txt) has {expected}')
