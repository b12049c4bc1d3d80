# Copyright (c) OpenMMLab. All rights reserved.
from .py_faster_rcnn_anchor_generator import PyFasterRCNNAnchorGenerator

__all__ = ['PyFasterRCNNAnchorGenerator']
