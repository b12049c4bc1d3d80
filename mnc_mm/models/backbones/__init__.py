# Copyright (c) OpenMMLab. All rights reserved.
from .vgg import CaffeVGG

__all__ = ['CaffeVGG']
