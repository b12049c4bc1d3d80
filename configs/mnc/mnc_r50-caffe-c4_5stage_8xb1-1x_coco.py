# Copyright (c) OpenMMLab. All rights reserved.
# MNC, ResNet-50 C4 (res5 per RoI), 5 stages, COCO 2017.
# Neither the paper nor the official code gives a COCO schedule; this is
# mmdet's 1x (12 epochs, steps at 8 and 11) for 8 GPUs x 1 image.
_base_ = [
    '../_base_/models/mnc_r50-caffe-c4.py',
    '../_base_/datasets/coco_instance.py',
    'mmdet::_base_/schedules/schedule_1x.py', '../_base_/default_runtime.py'
]

model = dict(roi_head=dict(cls_head=dict(num_classes=80)))
train_dataloader = dict(batch_size=1)
optim_wrapper = dict(
    optimizer=dict(lr=0.01),
    paramwise_cfg=dict(bias_lr_mult=2.0, bias_decay_mult=1.0))
auto_scale_lr = dict(enable=False, base_batch_size=8)
