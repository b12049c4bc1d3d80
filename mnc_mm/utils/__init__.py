# Copyright (c) OpenMMLab. All rights reserved.
from .io_scope import checkpoint_io
from .pretrained_parts import PretrainedParts

__all__ = ['checkpoint_io', 'PretrainedParts']
