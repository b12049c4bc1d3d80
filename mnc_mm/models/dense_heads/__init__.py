# Copyright (c) OpenMMLab. All rights reserved.
from .py_faster_rcnn_rpn_head import PyFasterRCNNRPNHead

__all__ = ['PyFasterRCNNRPNHead']
