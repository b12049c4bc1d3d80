# Copyright (c) OpenMMLab. All rights reserved.
# Synthetic shapes (circle/square/triangle, 256-384 px images); generate with
#   python tools/misc/make_shapes_dataset.py data/shapes --train 200 --val 50
# The COCO-format data set and loaders of coco_instance.py, at this set's
# scale, scored like SBD (COCO AP and mAP^r).
_base_ = './coco_instance.py'

dataset_type = 'CheckedCocoDataset'
data_root = 'data/shapes/'
metainfo = dict(
    classes=('circle', 'square', 'triangle'),
    palette=[(220, 20, 60), (0, 128, 255), (255, 200, 0)])
backend_args = None

# Images are 256-384 px per side: short side 256, long side at most 384.
img_scale = (384, 256)
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    # gt stays at the original size, where the metrics compare masks
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]
train_dataloader = dict(
    persistent_workers=False,
    batch_size=2,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='train/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=8),
        pipeline=train_pipeline))
val_dataloader = dict(
    persistent_workers=False,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_val.json',
        data_prefix=dict(img='val/'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader

# One metric for both (a child config overrides ann_file alone).
val_evaluator = dict(
    type='CocoVOCMaskAPMetric',
    ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = val_evaluator
