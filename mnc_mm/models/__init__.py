# Copyright (c) OpenMMLab. All rights reserved.
"""Models of mnc_mm, registered into mmdet's registries on import."""
from . import task_modules  # noqa: F401
