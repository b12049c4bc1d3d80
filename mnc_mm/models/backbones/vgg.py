# Copyright (c) OpenMMLab. All rights reserved.
"""The Caffe VGG trunk of MNC (daijifeng001/MNC
models/VGG16/mnc_5stage/train.prototxt): conv1_1 ... conv5_3."""
import copy
from typing import Sequence, Tuple

from mmcv.cnn import VGG
from mmdet.registry import MODELS
from mmdet.utils import OptMultiConfig
from mmengine.model import BaseModule
from torch import Tensor


@MODELS.register_module()
class CaffeVGG(VGG, BaseModule):
    """VGG without BN, with ceil-mode 2x2 max-pools and no pool5.

    mmcv's ``VGG`` with ``ceil_mode=True`` and ``with_last_pool=False``: the
    last stage gives conv5_3 (+ ReLU) at stride 16, of shape
    ``(N, 512, ceil(H / 16), ceil(W / 16))`` (floor-mode pools would shift
    every anchor and warp, daijifeng001/MNC
    models/VGG16/mnc_5stage/train.prototxt). Stages 1-2 are frozen as in the
    official training (``frozen_stages=2``).

    Args:
        depth (int): 11, 13, 16 or 19.
        out_indices (Sequence[int]): stages to output (0-based).
        frozen_stages (int): first stages whose parameters are frozen.
        init_cfg (dict, optional): e.g. ``dict(type='Pretrained',
            checkpoint='open-mmlab://vgg16_caffe')``; the conv names match
            that checkpoint's ``features.*``.
    """

    def __init__(self,
                 depth: int = 16,
                 out_indices: Sequence[int] = (4, ),
                 frozen_stages: int = 2,
                 init_cfg: OptMultiConfig = None) -> None:
        # VGG.__init__ reaches BaseModule.__init__ through the MRO
        super().__init__(
            depth,
            out_indices=tuple(out_indices),
            frozen_stages=frozen_stages,
            ceil_mode=True,
            with_last_pool=False)
        self.init_cfg = copy.deepcopy(init_cfg)
        self._freeze_stages()

    def init_weights(self) -> None:
        """mmengine initialisation (``init_cfg``), not mmcv VGG's."""
        BaseModule.init_weights(self)

    def _freeze_stages(self) -> None:
        layers = getattr(self, self.module_name)
        for i in range(self.frozen_stages):
            for j in range(*self.range_sub_modules[i]):
                for param in layers[j].parameters():
                    param.requires_grad = False

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """x (N, 3, H, W) -> tuple of the ``out_indices`` feature maps."""
        out = super().forward(x)
        return out if isinstance(out, tuple) else (out, )
