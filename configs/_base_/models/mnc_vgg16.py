# Copyright (c) OpenMMLab. All rights reserved.
# MNC with the Caffe VGG-16 trunk, as the official VOC model
# (daijifeng001/MNC models/VGG16/mnc_5stage/{train,test}.prototxt): RPN on
# conv5_3 (stride 16), RoI warp 28x28 + 2x2 max-pool, a 21x21
# class-agnostic mask head, masked/box fc pathways, a 5-stage
# cascade trained through the box coordinates, mask voting at test.
# Boxes follow py-faster-rcnn (+1 widths) everywhere.
_base_ = './py-faster-rcnn_rpn.py'

num_classes = 20
box_coder_rcnn = dict(
    type='PlusOneDeltaXYWHBBoxCoder', target_stds=(0.1, 0.1, 0.2, 0.2))
# proposal -> gt assignment of stages 2/3 (daijifeng001/MNC lib/pylayer/
# proposal_target_layer.py), and of the stage bridge's boxes
# (lib/pylayer/stage_bridge_layer.py): foreground at IoU >= 0.5
rcnn_assigner = dict(
    type='MaxIoUAssigner',
    pos_iou_thr=0.5,
    neg_iou_thr=0.5,
    min_pos_iou=0.5,
    match_low_quality=False,
    ignore_iof_thr=-1,
    iou_calculator={{_base_.iou_plus_one}})
# MNCClsHead's own init: Xavier fcs, N(0, 0.01) classifiers, N(0, 0.001)
# regressor, zero biases (daijifeng001/MNC models/VGG16/mnc_5stage/
# train.prototxt fillers). The paper configs then load fc6/fc7 of both
# pathways and the convs from the official init (their load_from).
cls_head_init = [
    dict(type='Xavier', layer='Linear'),
    dict(
        type='Normal',
        std=0.01,
        override=[dict(name='fc_cls'), dict(name='fc_seg_cls')]),
    dict(type='Normal', std=0.001, override=dict(name='fc_reg'))
]
model = dict(
    type='MNC',
    # train through the box coordinates, gradient clamped to 1/512
    box_grad=True,
    box_grad_clip=1 / 512,
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        # Caffe VGG-16: BGR, mean subtraction only
        mean=[102.9801, 115.9465, 122.7717],
        std=[1.0, 1.0, 1.0],
        bgr_to_rgb=False,
        pad_mask=False,
        pad_size_divisor=16),
    backbone=dict(
        type='CaffeVGG',
        depth=16,
        out_indices=(4, ),
        frozen_stages=2,
        # the convs come with fc6/fc7 from the config's load_from (the
        # official VGG16.mask init, see configs/mnc/README.md)
        init_cfg=None),
    rpn_head=dict(
        in_channels=512,
        feat_channels=512,
        anchor_generator=dict(scales=[8, 16, 32])),
    roi_head=dict(
        type='MNCRoIHead',
        roi_extractor=dict(
            type='RoIWarpExtractor',
            roi_layer=dict(
                type='RoIWarpPool', warp_size=28, output_size=14,
                quantize=True),
            out_channels=512,
            featmap_strides=[16]),
        mask_head=dict(
            type='MNCMaskHead',
            in_channels=512,
            roi_feat_size=14,
            fc_channels=256,
            mask_size=21,
            loss_mask=dict(
                type='CrossEntropyLoss', use_sigmoid=True, loss_weight=2.0)),
        cls_head=dict(
            type='MNCClsHead',
            in_channels=512,
            roi_feat_size=14,
            num_classes=num_classes,
            pool='max',
            num_fcs=2,
            fc_channels=4096,
            bbox_coder=box_coder_rcnn,
            loss_cls=dict(
                type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
            loss_seg_cls=dict(
                type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
            loss_bbox=dict(type='SmoothL1Loss', beta=1.0, loss_weight=1.0),
            init_cfg=cls_head_init)),
    train_cfg=dict(
        rpn_proposal=dict(
            nms_pre=12000,
            # 16 original-image px (x the resize factor), +1 widths
            min_bbox_size=16,
            scale_min_bbox_size=True),
        rcnn=dict(
            num_stages=5,
            assigner=rcnn_assigner,
            sampler=dict(
                type='MNCRoISampler',
                num=64,
                pos_fraction=0.3,
                neg_iou_ranges=((0.1, 0.5), (0.0, 0.1)),
                neg_fractions=(0.85, 0.15),
                add_gt_as_proposals=True),
            # stage bridge: every bridged box + the gts, fg at IoU >= 0.5
            bridge_assigner=rcnn_assigner,
            mask_thr_binary=0.4,
            seg_pos_iou_thr=0.5,
            stage3_mask_grad='seg_positive',
            # official behaviours (see configs/mnc/README.md)
            bridge_raw_deltas=False,
            warp_coord_grad='exact')),
    test_cfg=dict(
        rpn=dict(min_bbox_size=16, scale_min_bbox_size=True),
        rcnn=dict(
            num_stages=5,
            # the official GPU voting (daijifeng001/MNC lib/transform/
            # mask_transform.py gpu_mask_voting): top-left rendering
            # of float boxes, soft vote, tight box at > 0.4, no score floor
            mask_voting=dict(
                type='MaskVoting',
                preset='mnc',
                nms_thr=0.3,
                max_per_class=100,
                max_per_img=100,
                merge_iou_thr=0.5,
                mask_thr=0.4),
            mask_thr_binary=0.4,
            paste_binarize_first=True,
            # official behaviours (see configs/mnc/README.md)
            bridge_with_bg=False,
            ext_warp='pool')))
