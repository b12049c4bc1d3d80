# Copyright (c) OpenMMLab. All rights reserved.
"""Fixtures of the model tests: tiny synthetic detection batches."""
import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.structures import InstanceData


def _synthetic_batch(num_imgs=1, size=(64, 96), with_gt=True, seed=0):
    """Images (B, 3, H, W) with a bright square and a bright disc, and
    their data samples (exclusive-end boxes, bitmap masks)."""
    rng = np.random.default_rng(seed)
    h, w = size
    imgs, samples = [], []
    yy, xx = np.mgrid[:h, :w]
    for _ in range(num_imgs):
        img = rng.normal(0, 10, (3, h, w)).astype(np.float32)
        square = np.zeros((h, w), np.uint8)
        square[10:34, 8:36] = 1
        disc = ((yy - 40) ** 2 + (xx - 66) ** 2 <= 14 ** 2).astype(np.uint8)
        img += 120 * square + 200 * disc
        masks = np.stack([square, disc])
        boxes = torch.tensor([[8., 10., 36., 34.], [52., 26., 81., 55.]])
        sample = DetDataSample(metainfo=dict(
            img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w),
            batch_input_shape=(h, w), scale_factor=(1., 1.)))
        if with_gt:
            sample.gt_instances = InstanceData(
                bboxes=boxes, labels=torch.tensor([1, 0]),
                masks=BitmapMasks(masks, h, w))
        else:
            sample.gt_instances = InstanceData(
                bboxes=torch.zeros(0, 4), labels=torch.zeros(0).long(),
                masks=BitmapMasks(np.zeros((0, h, w), np.uint8), h, w))
        imgs.append(torch.from_numpy(img))
        samples.append(sample)
    return torch.stack(imgs), samples


@pytest.fixture(scope='session')
def synthetic_batch():
    """Factory ``(num_imgs=1, size=(64, 96), with_gt=True, seed=0) ->
    (imgs, data_samples)``: a square (label 1) and a disc (label 0)."""
    return _synthetic_batch


@pytest.fixture(scope='session', autouse=True)
def _mmdet_scope():
    """Build models in mmdet's scope, as the Runner does."""
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=True)
