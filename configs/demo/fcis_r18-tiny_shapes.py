# A narrow ResNet-18 FCIS that trains from scratch on the synthetic shapes
# set on 2 CPU cores (`make demo`); see configs/demo/README.md.
_base_ = [
    '../_base_/models/fcis_r50-caffe-c4.py',
    '../_base_/datasets/shapes_instance.py',
    '../_base_/schedules/schedule_adamw_20e_demo.py',
    '../_base_/tta/shapes_instance_tta.py'
]

width = 16  # channels of the first ResNet stage (BasicBlock: 16-128)
head_channels = 128  # 256 did not help: see configs/demo/README.md
model = dict(
    backbone=dict(
        depth=18,
        base_channels=width,
        # GroupNorm: see configs/demo/README.md
        norm_cfg=dict(type='GN', num_groups=8, requires_grad=True),
        # stride 8 for 40-130 px shapes: see configs/demo/README.md
        strides=(1, 2, 1, 1),
        dilations=(1, 1, 2, 4),
        frozen_stages=-1,
        init_cfg=None),
    neck=dict(in_channels=[width * 8], out_channels=head_channels),
    rpn_head=dict(
        in_channels=width * 4,
        feat_channels=64,
        anchor_generator=dict(strides=[8], scales=[2, 4, 8])),
    roi_head=dict(
        mask_head=dict(
            num_classes=3,
            in_channels=head_channels,
            spatial_scale=1.0 / 8,
            # class loss 3x the official weight: see configs/demo/README.md
            loss_cls=dict(loss_weight=3.0))),
    train_cfg=dict(rpn_proposal=dict(nms_pre=1000)),
    test_cfg=dict(
        rpn=dict(nms_pre=1000),
        rcnn=dict(mask_voting=dict(max_per_img=20))))

# conv_new_1 (the neck) learns 3x faster
optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys=dict(neck=dict(lr_mult=3.0))))
train_dataloader = dict(batch_size=4, persistent_workers=True)
