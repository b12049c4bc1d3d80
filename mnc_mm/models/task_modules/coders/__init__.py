# Copyright (c) OpenMMLab. All rights reserved.
from .plus_one_delta_xywh_bbox_coder import (PlusOneDeltaXYWHBBoxCoder,
                                             clip_boxes, select_class_deltas)

__all__ = ['PlusOneDeltaXYWHBBoxCoder', 'clip_boxes', 'select_class_deltas']
