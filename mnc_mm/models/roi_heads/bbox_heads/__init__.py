# Copyright (c) OpenMMLab. All rights reserved.
from .mnc_cls_head import MNCClsHead

__all__ = ['MNCClsHead']
