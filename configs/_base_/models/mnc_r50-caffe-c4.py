# Copyright (c) OpenMMLab. All rights reserved.
# MNC with a ResNet-50 C4 trunk, as the paper's COCO model (which used
# ResNet-101): RPN and RoI warp on res4 (stride 16); res5 runs per RoI on
# the 14x14 warped features (like mmdet's Mask R-CNN C4 shared head) and
# gives 2048 x 7 x 7 maps. The official code has no ResNet model; here the
# mask head reads the res5 map, the stage-2 mask is resized to 7x7 to mask
# it, and each classifier pathway is a global average pool (no hidden fc),
# as the ResNet detection heads. res5 starts from the ImageNet ResNet's
# layer4 (mmdet's ResLayer would otherwise start it from Kaiming init).
_base_ = './mnc_vgg16.py'

norm_cfg = dict(type='BN', requires_grad=False)
model = dict(
    data_preprocessor=dict(
        mean=[103.530, 116.280, 123.675], pad_size_divisor=32),
    backbone=dict(
        _delete_=True,
        type='ResNet',
        depth=50,
        num_stages=3,
        strides=(1, 2, 2),
        dilations=(1, 1, 1),
        out_indices=(2, ),
        frozen_stages=1,
        norm_cfg=norm_cfg,
        norm_eval=True,
        style='caffe',
        init_cfg=dict(
            type='Pretrained',
            checkpoint='open-mmlab://detectron2/resnet50_caffe')),
    rpn_head=dict(in_channels=1024, feat_channels=1024),
    roi_head=dict(
        roi_extractor=dict(out_channels=1024),
        shared_head=dict(
            type='ResLayer',
            depth=50,
            stage=3,
            stride=2,
            dilation=1,
            style='caffe',
            norm_cfg=norm_cfg,
            norm_eval=True,
            # res5 (layer4.*) of the ImageNet file the trunk starts from
            init_cfg=dict(
                type='Pretrained',
                checkpoint='open-mmlab://detectron2/resnet50_caffe')),
        mask_head=dict(in_channels=2048, roi_feat_size=7),
        cls_head=dict(
            in_channels=2048, roi_feat_size=7, pool='avg', num_fcs=0)))
