# Copyright (c) OpenMMLab. All rights reserved.
# The smallest MNC: a narrow ResNet-18 trunk (res2-res4, stride 16, 64
# channels) trained from scratch on the synthetic shapes set on CPU
# (`make demo MODEL=mnc`); see configs/demo/README.md.
_base_ = [
    '../_base_/models/mnc_vgg16.py', '../_base_/datasets/shapes_instance.py',
    '../_base_/schedules/schedule_adamw_20e_demo.py',
    '../_base_/tta/shapes_instance_tta.py'
]

width = 16  # channels of the first ResNet stage
feat_channels = width * 4
model = dict(
    box_grad=False,  # off with AdamW: see configs/demo/README.md
    data_preprocessor=dict(
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=32),
    backbone=dict(
        _delete_=True,
        type='ResNet',
        depth=18,
        base_channels=width,
        num_stages=3,
        strides=(1, 2, 2),
        dilations=(1, 1, 1),
        out_indices=(2, ),
        frozen_stages=-1,
        # GroupNorm: see configs/demo/README.md
        norm_cfg=dict(type='GN', num_groups=8, requires_grad=True),
        style='pytorch',
        init_cfg=None),
    rpn_head=dict(
        in_channels=feat_channels,
        feat_channels=feat_channels,
        anchor_generator=dict(scales=[2, 4, 8])),
    roi_head=dict(
        roi_extractor=dict(out_channels=feat_channels),
        mask_head=dict(in_channels=feat_channels, fc_channels=64),
        cls_head=dict(
            in_channels=feat_channels, num_classes=3, fc_channels=128)),
    train_cfg=dict(rpn_proposal=dict(nms_pre=2000, max_per_img=300)),
    test_cfg=dict(
        rpn=dict(nms_pre=1000, max_per_img=100),
        rcnn=dict(mask_voting=dict(max_per_img=20))))

# the demos' AdamW recipe, 16 epochs with GN: see configs/demo/README.md
max_epochs = 16
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=100),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True,
         milestones=[12, 15], gamma=0.1)
]
train_dataloader = dict(batch_size=4, persistent_workers=True)
