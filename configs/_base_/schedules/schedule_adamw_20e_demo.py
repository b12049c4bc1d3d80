# Copyright (c) OpenMMLab. All rights reserved.
# The demo models' training recipe (configs/demo): AdamW from scratch for 20
# epochs (steps at 16 and 19) at batch 4, seeded, with the hooks and log
# window of a 2-core run. The schedule of mmdet's schedule_20e.py with AdamW
# instead of the papers' SGD: see configs/demo/README.md. A child sets the
# batch, `train_dataloader = dict(batch_size=4)`, over its dataset base (which
# owns train_dataloader); one that changes max_epochs restates train_cfg and
# param_scheduler.
_base_ = '../default_runtime.py'

max_epochs = 20
train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=100),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True,
         milestones=[16, 19], gamma=0.1)
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-3, weight_decay=1e-4),
    clip_grad=dict(max_norm=35, norm_type=2),
    paramwise_cfg=dict(bias_decay_mult=0.0))  # no weight decay on biases
auto_scale_lr = dict(enable=False, base_batch_size=4)

default_hooks = dict(
    logger=dict(interval=10), checkpoint=dict(interval=4, max_keep_ckpts=2))
log_processor = dict(window_size=10)
randomness = dict(seed=0)
