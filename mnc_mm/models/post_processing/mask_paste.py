# Copyright (c) OpenMMLab. All rights reserved.
"""Pasting M x M box masks into the image as the official evaluators do.

FCIS (msracver/FCIS ``lib/utils/mask_voc2coco.py`` after
``clip_boxes``): clip the box to the image, ``np.round`` it, ``cv2.resize``
(INTER_LINEAR: half-pixel, edge-clamped, no anti-aliasing) the mask to the
box's (w + 1, h + 1) pixels, binarise at ``>= 0.4`` and paste. MNC
(daijifeng001/MNC ``lib/utils/voc_eval.py``) binarises the mask at ``>=
0.4`` before the resize as well.
"""
from typing import Tuple

import torch
from torch import Tensor

from mnc_mm.ops.checks import (check_float_tensors, check_img_shape,
                               check_shape)
from ..layers.separable_sampling import PixelTable, sample_separable


def paste_masks(masks: Tensor,
                boxes: Tensor,
                img_shape: Tuple[int, int],
                *,
                mask_thr: float = 0.4,
                binarize_first: bool = False) -> Tensor:
    """Paste box masks into (H, W) canvases.

    Args:
        masks (Tensor): (K, M, M) soft masks, each spanning its box.
        boxes (Tensor): (K, 4) [x1, y1, x2, y2] in image px, inclusive ends.
        img_shape (tuple[int, int]): (H, W).
        mask_thr (float): a pixel is on where the resized mask is
            ``>= mask_thr``.
        binarize_first (bool): binarise the M x M mask at ``>= mask_thr``
            before the resize too (MNC).

    Returns:
        Tensor: (K, H, W) bool. The box is clipped to the image and rounded
        (halves to even) and the whole mask is resized into it. A box that
        misses the image, or is empty once rounded, gives an empty mask (the
        official code would paste a one-pixel strip on the border, or fail).
    """
    op = 'paste_masks'
    height, width = check_img_shape(op, img_shape)
    dtype = check_float_tensors(op, masks=masks, boxes=boxes)
    check_shape(op, 'boxes', boxes, (None, 4), '(K, 4)')
    num_masks = boxes.size(0)
    check_shape(op, 'masks', masks, (num_masks, None, None),
                f'(K, M, M) with K = {num_masks} (from boxes)')
    mask_size = masks.size(1)
    if masks.size(2) != mask_size or mask_size == 0:
        raise ValueError(f'{op}: masks must be (K, M, M) with M >= 1, got '
                         f'shape {tuple(masks.shape)}')
    masks, boxes = masks.to(dtype), boxes.to(dtype)
    if binarize_first:
        masks = (masks >= mask_thr).to(dtype)

    last_pixel = boxes.new_tensor([width - 1, height - 1] * 2)
    edges = torch.minimum(boxes.clamp(min=0), last_pixel).round()
    visible = ((boxes[:, 2:] >= 0) & (boxes[:, :2] <= last_pixel[:2]) &
               (edges[:, 2:] >= edges[:, :2])).all(1)
    canvas = torch.zeros((num_masks, height, width),
                         dtype=torch.bool,
                         device=boxes.device)
    if not visible.any():
        return canvas
    index = visible.nonzero()[:, 0]
    edges = edges[index]
    table_x, table_y = (PixelTable(edges[:, a], edges[:, a + 2], edges[:, a],
                                   edges[:, a + 2], size, mask_size,
                                   'half_pixel')
                        for a, size in ((0, width), (1, height)))
    for k, (x0, y0, x1, y1), row_x, row_y in zip(
            index.tolist(),
            edges.long().tolist(), table_x.block_start.tolist(),
            table_y.block_start.tolist()):
        resized = sample_separable(masks[k:k + 1],
                                   table_y.own(row_y, y1 - y0 + 1),
                                   table_x.own(row_x, x1 - x0 + 1))[0]
        canvas[k, y0:y1 + 1, x0:x1 + 1] = resized >= mask_thr
    return canvas
