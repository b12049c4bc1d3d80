# Copyright (c) OpenMMLab. All rights reserved.
"""The RPN classifier layout of the official codes versus mmdet's.

Both FCIS (MXNet) and MNC (Caffe) score anchors with a 2A-channel conv read
as (2, A): channel ``k * A + a``, k = 0 background, k = 1 foreground, and a
softmax over k (msracver/FCIS fcis/symbols/resnet_v1_101_fcis.py,
fcis/operator_py/proposal.py). mmdet's softmax ``RPNHead`` reads its 2A
channels as (A, 2): channel ``a * 2 + j`` with j = 0 **foreground** and j = 1
background (``softmax(-1)[:, :-1]``). The anchor index a means the same (ratio,
scale) on both sides.
"""
import numpy as np


def rpn_cls_official_to_mmdet_softmax(array: np.ndarray) -> np.ndarray:
    """Reorder the output channels of an official ``rpn_cls_score``.

    Args:
        array: the conv weight (2A, C, kh, kw) or bias (2A,), official
            (2, A) background-first layout.

    Returns:
        np.ndarray: same shape, mmdet softmax layout: ``new[2a] = old[A + a]``
        (foreground) and ``new[2a + 1] = old[a]`` (background).
    """
    if array.ndim < 1 or array.shape[0] % 2:
        raise ValueError(f'rpn_cls_score: expected 2A output channels (an '
                         f'even first dim), found shape {array.shape}')
    num_anchors = array.shape[0] // 2
    by_class = array.reshape(2, num_anchors, *array.shape[1:])
    fg_first = by_class[::-1].swapaxes(0, 1)  # (A, 2, ...), j = 0 is fg
    return np.ascontiguousarray(fg_first).reshape(array.shape)
