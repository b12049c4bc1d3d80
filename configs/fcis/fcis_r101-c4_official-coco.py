# The official FCIS R-101 COCO model (msracver/FCIS `fcis_coco-0000.params`,
# converted by tools/model_converters/fcis_mxnet_to_mmdet.py) with the
# official test-time settings (msracver/FCIS fcis/core/tester.py; each
# switch against its official value: configs/fcis/README.md): the paper
# config's model, RPN 6000 -> 300 at NMS 0.7, 300 + 300 RoIs,
# mask voting, mask threshold 0.4, short side 600 (long side <= 1000).
# COCO val2017 holds the images of the official minival 2014 split.
_base_ = './fcis_r101-caffe-c4_ohem_8xb1-16e_coco.py'

model = dict(
    # The MXNet weights expect RGB minus the means of the official yaml
    # (PIXEL_MEANS B 103.06, G 115.90, R 123.15) and no std.
    data_preprocessor=dict(
        mean=[123.15, 115.90, 103.06], std=[1.0, 1.0, 1.0],
        bgr_to_rgb=True),
    # ResNetCeilPool: the official stem max-pool (3x3/2, no padding, ceil
    # mode). All weights come from the converted checkpoint.
    backbone=dict(type='ResNetCeilPool', init_cfg=None),
    # The converter's default (--bbox-weights normalised) keeps fcis_bbox,
    # which the official test code de-normalises with these stds; use
    # (1, 1, 1, 1) with --bbox-weights test.
    roi_head=dict(
        mask_head=dict(bbox_coder=dict(target_stds=(0.2, 0.2, 0.5, 0.5)))))
