# Copyright (c) OpenMMLab. All rights reserved.
"""Models of mnc_mm, registered into mmdet's registries on import."""
from . import (backbones, dense_heads, detectors, layers,  # noqa: F401
               losses, post_processing, roi_heads, task_modules,
               test_time_augs)
