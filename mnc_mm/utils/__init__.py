# Copyright (c) OpenMMLab. All rights reserved.
from .io_scope import checkpoint_io

__all__ = ['checkpoint_io']
