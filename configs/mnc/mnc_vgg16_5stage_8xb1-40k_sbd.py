# Copyright (c) OpenMMLab. All rights reserved.
# The paper's VOC model: VGG-16, 5-stage cascade trained end to end, SBD
# instance masks of VOC 2012 train -> VOC 2012 val (mAP^r at 0.5 / 0.7).
# Init as the official code (daijifeng001/MNC experiments/scripts/
# mnc_5stage.sh --weights data/imagenet_models/VGG16.mask.caffemodel): the
# 13 convs, fc6/fc7 and their copies fc6_mask/fc7_mask come from that file,
# converted once with
#   python tools/model_converters/mnc_caffe_to_mmdet.py --init \
#       data/imagenet_models/VGG16.mask.caffemodel \
#       checkpoints/vgg16_mask_init.pth
# (see configs/mnc/README.md); the RPN, the mask head and the classifiers
# start from the prototxt's fillers (the heads' init_cfg).
# Schedule of the paper (Dai et al. 2016, Sec. 5): 8 GPUs x 1 image, SGD lr 1e-3 for
# 32k iterations then 1e-4 for 8k, momentum 0.9, weight decay 5e-4, bias
# lr x2 (biases decayed too), conv1-2 frozen.
# The official single-GPU recipe is the same gradient: 1 GPU x 1 image with
# `optim_wrapper.accumulative_counts=8` (Caffe iter_size 8), 25k updates =
# `max_iters=200000`, step at 160000.
_base_ = [
    '../_base_/models/mnc_vgg16.py', '../_base_/datasets/sbd_instance.py',
    '../_base_/default_runtime.py'
]

load_from = 'checkpoints/vgg16_mask_init.pth'

max_iters = 40000
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=5000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(
        type='MultiStepLR',
        by_epoch=False,
        begin=0,
        end=max_iters,
        milestones=[32000],
        gamma=0.1)
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.001, momentum=0.9, weight_decay=0.0005),
    paramwise_cfg=dict(bias_lr_mult=2.0, bias_decay_mult=1.0))
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=5000))
log_processor = dict(by_epoch=False)
# lr 1e-3 is for 8 images per iteration
auto_scale_lr = dict(enable=False, base_batch_size=8)
