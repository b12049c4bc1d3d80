# The official MNC VGG-16 model (daijifeng001/MNC `mnc_model.caffemodel.h5`,
# converted by tools/model_converters/mnc_caffe_to_mmdet.py) with the
# official test-time behaviour (daijifeng001/MNC lib/caffeWrapper/
# TesterWrapper.py, models/VGG16/mnc_5stage/test.prototxt; each switch
# against its official value: configs/mnc/README.md): 5 stages, RPN
# 6000 -> 300 at NMS 0.7, mask voting, SBD VOC 2012 val.
_base_ = './mnc_vgg16_5stage_8xb1-40k_sbd.py'

model = dict(
    # Caffe VGG-16: BGR minus PIXEL_MEANS (B, G, R) of lib/mnc_config.py,
    # no std.
    data_preprocessor=dict(
        mean=[102.9801, 115.9465, 122.7717], std=[1.0, 1.0, 1.0],
        bgr_to_rgb=False),
    # The converter divides the released (de-normalised) bbox_pred by
    # these stds again.
    roi_head=dict(
        cls_head=dict(bbox_coder=dict(target_stds=(0.1, 0.1, 0.2, 0.2)))),
    # The official test net: stages 4/5 warp straight to 14 x 14 and the
    # stage bridge may pick the (untrained) background regressor.
    test_cfg=dict(rcnn=dict(ext_warp='direct', bridge_with_bg=True)))

# The checkpoint to test is given on the command line.
load_from = None
