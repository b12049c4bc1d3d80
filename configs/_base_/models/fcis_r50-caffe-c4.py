# Copyright (c) OpenMMLab. All rights reserved.
# FCIS with a caffe-style ResNet-50 (stride 16, dilated res5), as msracver/
# FCIS fcis/symbols/resnet_v1_101_fcis.py with 50 layers.
# The input matches the ImageNet weights the trunk starts from: the
# detectron2 Caffe ResNets take BGR minus their means, no std. (The
# official MXNet resnet_v1 takes RGB minus the FCIS yaml's PIXEL_MEANS:
# configs/fcis/fcis_r101-c4_official-coco.py, for the converted official
# model, uses that.)
_base_ = './py-faster-rcnn_rpn.py'

model = dict(
    type='FCIS',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[103.530, 116.280, 123.675],
        std=[1.0, 1.0, 1.0],
        bgr_to_rgb=False,
        pad_mask=True,
        pad_size_divisor=1),
    backbone=dict(
        type='ResNetCeilPool',
        depth=50,
        num_stages=4,
        strides=(1, 2, 2, 1),
        dilations=(1, 1, 1, 2),
        out_indices=(2, 3),
        frozen_stages=1,
        # BN statistics stay frozen (global stats) while the affine
        # parameters of res3-res5 train, as the official code does
        # (msracver/FCIS: use_global_stats, and FIXED_PARAMS that match
        # only conv1/res2 names).
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=True,
        style='caffe',
        init_cfg=dict(
            type='Pretrained',
            checkpoint='open-mmlab://detectron2/resnet50_caffe')),
    # conv_new_1: 1x1 conv 2048 -> 1024 + ReLU on res5
    neck=dict(
        type='ChannelMapper',
        in_channels=[2048],
        out_channels=1024,
        kernel_size=1,
        norm_cfg=None,
        act_cfg=dict(type='ReLU'),
        init_cfg=dict(type='Normal', layer='Conv2d', std=0.01)),
    # py-faster-rcnn RPN (from _base_), on conv4: the second-to-last feature
    rpn_head=dict(
        in_index=-2,
        in_channels=1024,
        feat_channels=512,
        anchor_generator=dict(scales=[4, 8, 16, 32])),
    roi_head=dict(
        type='FCISRoIHead',
        mask_head=dict(
            type='FCISHead',
            num_classes=80,
            in_channels=1024,
            group_size=7,
            pooled_size=21,
            spatial_scale=1.0 / 16,
            num_reg_classes=2,
            bbox_coder=dict(
                type='PlusOneDeltaXYWHBBoxCoder',
                target_stds=(0.2, 0.2, 0.5, 0.5)),
            loss_cls=dict(
                type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
            loss_mask=dict(type='FCISMaskLoss', loss_weight=10.0),
            loss_bbox=dict(type='SmoothL1Loss', beta=1.0, loss_weight=1.0))),
    train_cfg=dict(
        # RPN_MIN_SIZE 2 (COCO) on w + 1, network-input px
        rpn_proposal=dict(nms_pre=6000, min_bbox_size=2),
        rcnn=dict(
            # gt boxes are always appended to the proposals by the head
            assigner=dict(
                type='MaxIoUAssigner',
                pos_iou_thr=0.5,
                neg_iou_thr=(0.0, 0.5),
                min_pos_iou=0.5,
                match_low_quality=False,
                ignore_iof_thr=-1,
                iou_calculator={{_base_.iou_plus_one}}),
            # all 300 + G RoIs go forward, OHEM keeps the top 128
            sampler=dict(type='PseudoSampler'),
            ohem=dict(num=128),
            mask_thr_binary=0.4)),
    test_cfg=dict(
        rpn=dict(min_bbox_size=2),
        rcnn=dict(
            # MIN_DROP_SIZE (network-input px) after the two RoI passes
            min_bbox_size=2,
            # the official GPU voting (msracver/FCIS lib/mask/
            # mask_transform.py gpu_mask_voting, config.py defaults)
            mask_voting=dict(
                type='MaskVoting',
                preset='fcis',
                nms_thr=0.3,
                max_per_class=100,
                max_per_img=100,
                merge_iou_thr=0.5,
                mask_thr=0.4),
            mask_thr_binary=0.4)))
