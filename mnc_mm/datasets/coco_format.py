# Copyright (c) OpenMMLab. All rights reserved.
"""Writing instance masks as COCO annotations (shared by the converters)."""
import numpy as np
from pycocotools import mask as mask_utils


def mask_to_coco_annotation(mask: np.ndarray, ann_id: int, image_id: int,
                            category_id: int, **extra) -> dict:
    """COCO annotation of a bool (H, W) mask as compressed RLE.

    ``bbox`` (xywh) and ``area`` are pycocotools' values for the mask, so
    they always agree with it; ``iscrowd`` is 0. ``extra`` keys are appended.
    """
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return dict(
        id=ann_id,
        image_id=image_id,
        category_id=category_id,
        segmentation=dict(
            size=[int(s) for s in rle['size']],
            counts=rle['counts'].decode('ascii')),
        area=float(mask_utils.area(rle)),
        bbox=[float(v) for v in mask_utils.toBbox(rle)],
        iscrowd=0,
        **extra)
