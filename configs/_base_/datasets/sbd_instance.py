# Copyright (c) OpenMMLab. All rights reserved.
# The papers' VOC protocol: SBD instance masks, VOC 2012 train (5623 images)
# -> VOC 2012 val (5732), mAP^r at mask IoU 0.5 / 0.7 (daijifeng001/MNC
# lib/utils/voc_eval.py voc_eval_sds; msracver/FCIS lib/dataset/
# pascal_voc_eval.py), and COCO AP. Convert once with
# tools/dataset_converters/sbd_to_coco.py:
#   --split train --split-file data/VOCdevkitSDS/train.txt
#   --split val   --split-file data/VOCdevkitSDS/val.txt
# The COCO-format data set, pipelines and loaders are those of
# coco_instance.py (short side 600, long side <= 1000, flips).
_base_ = './coco_instance.py'

dataset_type = 'CheckedCocoDataset'
data_root = 'data/VOCdevkitSDS/'
metainfo = dict(
    classes=('aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car',
             'cat', 'chair', 'cow', 'diningtable', 'dog', 'horse',
             'motorbike', 'person', 'pottedplant', 'sheep', 'sofa', 'train',
             'tvmonitor'),
    palette=[(106, 0, 228), (119, 11, 32), (165, 42, 42), (0, 0, 192),
             (197, 226, 255), (0, 60, 100), (0, 0, 142), (255, 77, 255),
             (153, 69, 1), (120, 166, 157), (0, 182, 199), (0, 226, 252),
             (182, 182, 255), (0, 0, 230), (220, 20, 60), (163, 255, 0),
             (0, 82, 0), (3, 95, 161), (0, 80, 100), (183, 130, 88)])

train_dataloader = dict(
    persistent_workers=False,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='img/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=1)))
val_dataloader = dict(
    persistent_workers=False,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_val.json',
        data_prefix=dict(img='img/')))
test_dataloader = val_dataloader

# One metric for both (a child config overrides ann_file alone).
val_evaluator = dict(
    type='CocoVOCMaskAPMetric',
    ann_file=data_root + 'annotations/instances_val.json',
    voc_iou_thrs=(0.5, 0.7))
test_evaluator = val_evaluator
