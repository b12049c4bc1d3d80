# Copyright (c) OpenMMLab. All rights reserved.
"""Models of mnc_mm, registered into mmdet's registries on import."""
from . import (backbones, detectors, losses, post_processing,  # noqa: F401
               roi_heads, task_modules)
