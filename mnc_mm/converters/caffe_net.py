# Copyright (c) OpenMMLab. All rights reserved.
"""The parameters of a Caffe net, as read from either Caffe weight format."""
from dataclasses import dataclass
from typing import Dict, List

import numpy as np


@dataclass
class CaffeLayer:
    """One layer of a Caffe weight file.

    Attributes:
        name: the layer name (the key Caffe copies weights by).
        type: the layer type (``'Convolution'``, ``'InnerProduct'``, ...);
            ``''`` where the file does not record it (HDF5).
        blobs: the parameter blobs in Caffe's order (0 = weight, 1 = bias),
            e.g. a conv weight (out, in / group, kh, kw), an InnerProduct
            weight (N_out, K_in) and a bias (N,).
    """
    name: str
    type: str
    blobs: List[np.ndarray]


@dataclass
class CaffeNet:
    """All layers of a Caffe weight file, in file order.

    Attributes:
        name: the net name (``''`` if the file has none).
        layers: every layer, including those without parameters.
        format: how the file stored them: ``'protobuf'`` (``layer``,
            field 100), ``'protobuf-v1'`` (``layers``, field 2) or ``'hdf5'``.
        source: the file the net was read from.
    """
    name: str
    layers: List[CaffeLayer]
    format: str
    source: str

    def params(self) -> Dict[str, List[np.ndarray]]:
        """``{layer name: blobs}`` of the layers that have blobs.

        Raises:
            ValueError: two layers with blobs share a name (Caffe would copy
                both onto the same target).
        """
        result: Dict[str, List[np.ndarray]] = {}
        for layer in self.layers:
            if not layer.blobs:
                continue
            if layer.name in result:
                raise ValueError(f'{self.source}: expected one layer with '
                                 f'parameters per name, found two named '
                                 f'{layer.name!r}')
            result[layer.name] = layer.blobs
        return result
