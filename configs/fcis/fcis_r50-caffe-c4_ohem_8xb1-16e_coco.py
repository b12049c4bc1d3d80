# FCIS ResNet-50 on COCO with the paper's training recipe (fcis_spec §5.6-
# 5.7), on 8 GPUs x 1 image.
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
# MXNet sums the gradients of the 8 GPUs; DDP averages them. lr x 8 and
# weight decay / 8 give the same updates (fcis_spec §5.6, item 31).
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='SGD', lr=5e-4 * 8, momentum=0.9, weight_decay=5e-4 / 8),
    # conv_new_1 (the neck) learns 3x faster (its decay too, as in MXNet);
    # biases get no weight decay
    paramwise_cfg=dict(
        custom_keys=dict(neck=dict(lr_mult=3.0, decay_mult=3.0)),
        bias_decay_mult=0.0))
auto_scale_lr = dict(enable=False, base_batch_size=8)
