# The paper's COCO setting (msracver/FCIS experiments/fcis/cfgs/
# resnet_v1_101_coco_fcis_end2end_ohem.yaml): ResNet-101, OHEM 128 of
# 300 + G RoIs, 8 GPUs x 1 image.
_base_ = './fcis_r50-caffe-c4_ohem_8xb1-16e_coco.py'

model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='open-mmlab://detectron2/resnet101_caffe')))
