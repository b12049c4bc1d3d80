# Copyright (c) OpenMMLab. All rights reserved.
# mmdet's Mask R-CNN as the like-for-like peer of the FCIS and MNC demos:
# the same narrow ResNet-18 GroupNorm trunk trained from scratch, the same
# data, and the FCIS demo's recipe (AdamW, batch 4, 20 epochs, steps at 16
# and 19, seed 0: _base_/schedules/schedule_adamw_20e_demo.py); an FPN of 32
# channels. See configs/demo/README.md.
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    '../_base_/datasets/shapes_instance.py',
    '../_base_/schedules/schedule_adamw_20e_demo.py'
]

width = 16  # channels of the first ResNet stage (BasicBlock: 16-128)
fpn_channels = 32
model = dict(
    data_preprocessor=dict(pad_size_divisor=32),
    backbone=dict(
        depth=18,
        base_channels=width,
        # the FCIS/MNC demos' trunk: GroupNorm, nothing frozen
        norm_cfg=dict(type='GN', num_groups=8, requires_grad=True),
        frozen_stages=-1,
        init_cfg=None),
    neck=dict(
        in_channels=[width, width * 2, width * 4, width * 8],
        out_channels=fpn_channels),
    rpn_head=dict(in_channels=fpn_channels, feat_channels=fpn_channels),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=fpn_channels),
        bbox_head=dict(
            in_channels=fpn_channels, fc_out_channels=128, num_classes=3),
        mask_roi_extractor=dict(out_channels=fpn_channels),
        mask_head=dict(
            in_channels=fpn_channels, conv_out_channels=fpn_channels,
            num_classes=3)),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=1000, max_per_img=300),
        rcnn=dict(sampler=dict(num=128))),
    test_cfg=dict(
        rpn=dict(nms_pre=300, max_per_img=100),
        rcnn=dict(max_per_img=20)))

train_dataloader = dict(batch_size=4, persistent_workers=True)
