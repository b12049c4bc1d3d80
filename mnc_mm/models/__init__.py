# Copyright (c) OpenMMLab. All rights reserved.
from . import post_processing  # noqa: F401
