# The paper's VOC setting (msracver/FCIS experiments/fcis/cfgs/
# resnet_v1_101_vocSDS_fcis_end2end.yaml): ResNet-101, SBD train -> val,
# 128 random RoIs (25% fg), no OHEM, 9 anchors, 4 GPUs x 1 image; mAP^r at
# 0.5 / 0.7.
_base_ = [
    '../_base_/models/fcis_r50-caffe-c4.py',
    '../_base_/datasets/sbd_instance.py', '../_base_/default_runtime.py'
]

model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='open-mmlab://detectron2/resnet101_caffe')),
    rpn_head=dict(anchor_generator=dict(scales=[8, 16, 32])),
    roi_head=dict(mask_head=dict(num_classes=20)),
    train_cfg=dict(
        rpn_proposal=dict(min_bbox_size=16),
        rcnn=dict(
            assigner=dict(neg_iou_thr=(0.1, 0.5)),
            sampler=dict(
                _delete_=True,
                type='RandomSampler',
                num=128,
                pos_fraction=0.25,
                neg_pos_ub=-1,
                add_gt_as_proposals=False),
            ohem=None)),
    test_cfg=dict(
        rpn=dict(min_bbox_size=16), rcnn=dict(min_bbox_size=16)))

# Official: x0.1 at epoch 14 of 22 over the flip-doubled set, i.e. 28 / 44
# epochs of random flips here.
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=44, val_interval=4)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(
        type='MultiStepLR',
        begin=0,
        end=44,
        by_epoch=True,
        milestones=[28],
        gamma=0.1)
]
# The official 4 GPUs with summed gradients (lr 5e-4, wd 5e-4 on the sum;
# see fcis_r50-caffe-c4_ohem_8xb1-16e_coco.py).
optim_wrapper = dict(
    type='OptimWrapper',
    constructor='MXNetOptimWrapperConstructor',
    optimizer=dict(type='SGD', lr=5e-4 * 4, momentum=0.9),
    summed_grad=dict(lr=5e-4, weight_decay=5e-4),
    paramwise_cfg=dict(custom_keys=dict(neck=dict(lr_mult=3.0))))
auto_scale_lr = dict(enable=False, base_batch_size=4)
