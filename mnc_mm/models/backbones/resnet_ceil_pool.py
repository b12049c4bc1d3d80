# Copyright (c) OpenMMLab. All rights reserved.
"""mmdet's ResNet with the stem max-pool of the Caffe/MXNet ResNets."""
from mmdet.models.backbones import ResNet
from mmdet.registry import MODELS
from torch import nn


@MODELS.register_module()
class ResNetCeilPool(ResNet):
    """mmdet ``ResNet`` whose stem max-pool is 3x3/2 with **no padding and
    ceil mode**, as in the Caffe-converted ResNets both official codes use
    (msracver/FCIS fcis/symbols/resnet_v1_101_fcis.py; mmdet/torchvision pad by
    1 and floor instead: the output size can match but the windows shift by one
    pixel).

    Every other argument is mmdet's ``ResNet``'s, so e.g. the FCIS backbone
    is ``ResNetCeilPool(depth=101, style='caffe', strides=(1, 2, 2, 1),
    dilations=(1, 1, 1, 2), out_indices=(2, 3))``.
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=0,
                                    ceil_mode=True)
