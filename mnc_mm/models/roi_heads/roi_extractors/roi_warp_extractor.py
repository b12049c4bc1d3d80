# Copyright (c) OpenMMLab. All rights reserved.
"""MNC's RoI warping (daijifeng001/caffe-mnc
src/caffe/layers/roi_warping_layer.cu (ROIWarpingForward); daijifeng001/MNC
models/VGG16/mnc_5stage/test.prototxt) as an mmdet RoI extractor."""
from typing import List, Optional, Tuple

from mmdet.models.roi_heads.roi_extractors import SingleRoIExtractor
from mmdet.registry import MODELS
from mmdet.utils import ConfigType
from torch import Tensor, nn

from mnc_mm import ops
from mnc_mm.ops import roi_warp

_LAYERS = ('RoIWarp', 'RoIWarpPool')


@MODELS.register_module()
class RoIWarpExtractor(SingleRoIExtractor):
    """``SingleRoIExtractor`` whose ``roi_layer`` is one of
    :mod:`mnc_mm.ops`' warps, named by string in configs
    (``roi_layer=dict(type='RoIWarpPool', warp_size=28, output_size=14,
    quantize=True)``). The warp is differentiable w.r.t. the features and
    the box coordinates of ``rois``.

    :meth:`forward_direct` warps straight to ``output_size`` without the
    max-pool: the official test graph of stages 4/5 (daijifeng001/MNC
    models/VGG16/mnc_5stage/test.prototxt).
    """

    def build_roi_layers(self, layer_cfg: ConfigType,
                         featmap_strides: List[int]) -> nn.ModuleList:
        cfg = dict(layer_cfg)
        layer_type = cfg.pop('type')
        if layer_type not in _LAYERS and layer_type not in (
                ops.RoIWarp, ops.RoIWarpPool):
            raise ValueError(f'roi_layer type must be one of {_LAYERS}, got '
                             f'{layer_type!r}')
        layer_cls = getattr(ops, layer_type) if isinstance(
            layer_type, str) else layer_type
        return nn.ModuleList(
            [layer_cls(spatial_scale=1 / s, **cfg) for s in featmap_strides])

    def forward(self,
                feats: Tuple[Tensor],
                rois: Tensor,
                roi_scale_factor: Optional[float] = None) -> Tensor:
        """mmdet's ``SingleRoIExtractor.forward``, but a single level goes
        straight to the layer with ``rois`` as they are: the warp casts them
        itself (:func:`mnc_mm.ops.checks.rois_as_maps_dtype`), keeping them
        float32 under autocast, where mmdet's ``rois.type_as(feats[0])``
        would round them to bfloat16 first; and the layer takes zero RoIs,
        where mmdet's ``len(rois) == 0`` test cannot be decided by
        ``torch.compile`` on a data-dependent number of proposals (mmdet
        ignores ``roi_scale_factor`` on one level too)."""
        if len(feats) != 1:
            return super().forward(feats, rois, roi_scale_factor)
        return self.roi_layers[0](feats[0], rois)

    def forward_direct(self, feats: Tuple[Tensor], rois: Tensor) -> Tensor:
        """Warp each RoI straight to ``output_size`` (one sample per cell,
        no max-pool); single-level features only.

        Args:
            feats (tuple[Tensor]): one (B, C, H, W) map.
            rois (Tensor): (R, 5) ``[batch_idx, x1, y1, x2, y2]``.

        Returns:
            Tensor: (R, C, *output_size).
        """
        if len(feats) != 1:
            raise ValueError('forward_direct needs single-level features, '
                             f'got {len(feats)} levels')
        layer = self.roi_layers[0]
        return roi_warp(feats[0], rois, layer.output_size,
                        layer.spatial_scale, layer.quantize)
