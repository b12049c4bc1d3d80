# Copyright (c) OpenMMLab. All rights reserved.
# Flip x two scales test-time augmentation of the synthetic shapes set for
# FCIS and MNC (`tools/test.py CONFIG CKPT --tta`): every view keeps up to
# 100 instances and all views' instances are merged by mask voting
# (mnc_mm.models.test_time_augs.InstanceTTAModel).
tta_model = dict(
    type='InstanceTTAModel',
    # per view: no cap below the final one (the voting's own options stay)
    view_test_cfg=dict(rcnn=dict(mask_voting=dict(max_per_img=100))),
    tta_cfg=dict(nms_thr=0.3, merge_iou_thr=0.5, mask_thr=0.4,
                 max_per_img=20))

# The test scale of shapes_instance.py, (384, 256), and one 1.25x larger.
tta_img_scales = [(384, 256), (480, 320)]
tta_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(
        type='TestTimeAug',
        transforms=[
            [dict(type='Resize', scale=s, keep_ratio=True)
             for s in tta_img_scales],
            [dict(type='RandomFlip', prob=1.),
             dict(type='RandomFlip', prob=0.)],
            # gt stays at the original size, where the metrics compare masks
            [dict(type='LoadAnnotations', with_bbox=True, with_mask=True)],
            [dict(
                type='PackDetInputs',
                meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                           'scale_factor', 'flip', 'flip_direction'))],
        ])
]
