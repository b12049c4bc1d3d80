# Copyright (c) OpenMMLab. All rights reserved.
# The paper's COCO model: ResNet-101 C4, 5 stages (schedule: see the R-50
# config).
_base_ = './mnc_r50-caffe-c4_5stage_8xb1-1x_coco.py'

imagenet = dict(
    type='Pretrained', checkpoint='open-mmlab://detectron2/resnet101_caffe')
model = dict(
    backbone=dict(depth=101, init_cfg=imagenet),
    roi_head=dict(shared_head=dict(depth=101, init_cfg=imagenet)))
