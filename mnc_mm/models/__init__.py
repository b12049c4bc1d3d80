# Copyright (c) OpenMMLab. All rights reserved.
"""Models of mnc_mm, registered into mmdet's registries on import."""
from . import (backbones, detectors, heads, layers, losses,  # noqa: F401
               post_processing, roi_extractors, roi_heads, task_modules)
