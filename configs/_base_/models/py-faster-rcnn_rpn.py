# Copyright (c) OpenMMLab. All rights reserved.
# The RPN both official codes share, py-faster-rcnn's (rbgirshick/
# py-faster-rcnn lib/rpn/{anchor_target_layer,proposal_layer}.py; copied
# into daijifeng001/MNC lib/pylayer and msracver/FCIS lib/rpn): anchors of
# base size 16 at stride 16, a 2-way softmax, +1 box widths, 256 anchors
# (half positive) per image, proposals NMS'd at 0.7 (+1 IoU), 300 kept.
# The method fragments set the trunk's channels, the anchor scales, the
# pre-NMS counts of training and RPN_MIN_SIZE.
iou_plus_one = dict(type='BboxOverlaps2DPlusOne')
rpn_nms = dict(type='nms', iou_threshold=0.7, offset=1)
model = dict(
    rpn_head=dict(
        type='PyFasterRCNNRPNHead',
        anchor_generator=dict(
            type='PyFasterRCNNAnchorGenerator',
            strides=[16],
            ratios=[0.5, 1.0, 2.0],
            base_size=16),
        bbox_coder=dict(type='PlusOneDeltaXYWHBBoxCoder'),
        loss_cls=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
        # sigma 3, divided by the 256 sampled anchors
        loss_bbox=dict(type='SmoothL1Loss', beta=1.0 / 9.0, loss_weight=1.0),
        init_cfg=dict(type='Normal', layer='Conv2d', std=0.01)),
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
                iou_calculator=iou_plus_one),
            sampler=dict(
                type='RandomSampler',
                num=256,
                pos_fraction=0.5,
                neg_pos_ub=-1,
                add_gt_as_proposals=False),
            allowed_border=0,
            pos_weight=-1,
            debug=False),
        rpn_proposal=dict(max_per_img=300, nms=rpn_nms)),
    test_cfg=dict(rpn=dict(nms_pre=6000, max_per_img=300, nms=rpn_nms)))
