# FCIS ResNet-50 on COCO with the paper's training recipe (msracver/FCIS
# experiments/fcis/cfgs/resnet_v1_101_coco_fcis_end2end_ohem.yaml), on 8
# GPUs x 1 image.
_base_ = [
    '../_base_/models/fcis_r50-caffe-c4.py',
    '../_base_/datasets/coco_instance.py', '../_base_/default_runtime.py'
]

# The official dataset holds every image twice (plain and flipped): its
# 8 epochs, step at 5.33, are 16 epochs of random flips here, step at
# 10.66 (rounded to 11).
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=16, val_interval=16)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    # a constant warm-up: lr 5e-5 (x0.1) for the first 250 updates
    dict(type='ConstantLR', factor=0.1, by_epoch=False, begin=0, end=250),
    dict(
        type='MultiStepLR',
        begin=0,
        end=16,
        by_epoch=True,
        milestones=[11],
        gamma=0.1)
]
# The official MXNet SGD (msracver/FCIS experiments/fcis/cfgs/
# resnet_v1_101_coco_fcis_end2end_ohem.yaml: lr 5e-4, wd 5e-4) sums the
# gradients of its 8 GPUs; DDP averages them. MXNetOptimWrapperConstructor
# gives the same update for any number of GPUs: lr 5e-4 x 8 for 8 images
# (scaled by --auto-scale-lr), weight decay 5e-4 x 5e-4 / lr; no decay on
# biases and BN betas (MXNet's wd_mult). conv_new_1 (the neck) learns 3x
# faster, which in MXNet scales its decay step too (decay_mult 1 here).
optim_wrapper = dict(
    type='OptimWrapper',
    constructor='MXNetOptimWrapperConstructor',
    optimizer=dict(type='SGD', lr=5e-4 * 8, momentum=0.9),
    summed_grad=dict(lr=5e-4, weight_decay=5e-4),
    paramwise_cfg=dict(custom_keys=dict(neck=dict(lr_mult=3.0))))
auto_scale_lr = dict(enable=False, base_batch_size=8)
