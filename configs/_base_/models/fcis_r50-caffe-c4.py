# FCIS with a caffe-style ResNet-50 (stride 16, dilated res5), fcis_spec §3.
# The input matches the ImageNet weights the trunk starts from: the
# detectron2 Caffe ResNets take BGR minus their means, no std. (The
# official MXNet resnet_v1 takes RGB minus the FCIS means (fcis_spec §5.1,
# item 22): configs/fcis/fcis_r101-c4_official-coco.py, for the converted
# official model, uses that.)
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
        # (fcis_spec §3.1, §5.6).
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
    # py-faster-rcnn RPN (fcis_spec §4.3, §5.2), shared with MNC; on conv4
    rpn_head=dict(
        type='PyFasterRCNNRPNHead',
        in_index=-2,
        in_channels=1024,
        feat_channels=512,
        anchor_generator=dict(
            type='PyFasterRCNNAnchorGenerator',
            strides=[16],
            ratios=[0.5, 1.0, 2.0],
            scales=[4, 8, 16, 32]),
        bbox_coder=dict(type='PlusOneDeltaXYWHBBoxCoder'),
        loss_cls=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
        # sigma 3, divided by the 256 sampled anchors
        loss_bbox=dict(type='SmoothL1Loss', beta=1.0 / 9.0, loss_weight=1.0),
        init_cfg=dict(type='Normal', layer='Conv2d', std=0.01)),
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
        rpn=dict(
            assigner=dict(
                type='MaxIoUAssigner',
                pos_iou_thr=0.7,
                neg_iou_thr=0.3,
                # every anchor at a gt's best IoU is positive, however low
                min_pos_iou=0.0,
                gt_max_assign_all=True,
                match_low_quality=True,
                ignore_iof_thr=-1,
                iou_calculator=dict(type='BboxOverlaps2DPlusOne')),
            sampler=dict(
                type='RandomSampler',
                num=256,
                pos_fraction=0.5,
                neg_pos_ub=-1,
                add_gt_as_proposals=False),
            allowed_border=0,
            pos_weight=-1,
            debug=False),
        # RPN_MIN_SIZE 2 (COCO) on w + 1, network-input px; +1 NMS IoU
        rpn_proposal=dict(
            nms_pre=6000,
            max_per_img=300,
            nms=dict(type='nms', iou_threshold=0.7, offset=1),
            min_bbox_size=2),
        rcnn=dict(
            # gt boxes are always appended to the proposals by the head
            assigner=dict(
                type='MaxIoUAssigner',
                pos_iou_thr=0.5,
                neg_iou_thr=(0.0, 0.5),
                min_pos_iou=0.5,
                match_low_quality=False,
                ignore_iof_thr=-1,
                iou_calculator=dict(type='BboxOverlaps2DPlusOne')),
            # all 300 + G RoIs go forward, OHEM keeps the top 128
            sampler=dict(type='PseudoSampler'),
            ohem=dict(num=128),
            mask_thr_binary=0.4)),
    test_cfg=dict(
        rpn=dict(
            nms_pre=6000,
            max_per_img=300,
            nms=dict(type='nms', iou_threshold=0.7, offset=1),
            min_bbox_size=2),
        rcnn=dict(
            min_bbox_size=2,
            mask_voting=dict(type='MaskVoting'),
            mask_thr_binary=0.4)))
