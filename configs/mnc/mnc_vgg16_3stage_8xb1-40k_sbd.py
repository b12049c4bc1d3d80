# Copyright (c) OpenMMLab. All rights reserved.
# The paper's 3-stage ablation: train stages 1-3 only (no stage bridge),
# still infer with 5 stages and mask voting.
_base_ = './mnc_vgg16_5stage_8xb1-40k_sbd.py'

model = dict(train_cfg=dict(rcnn=dict(num_stages=3)))
