# Copyright (c) OpenMMLab. All rights reserved.
"""Check a converted state dict against the model a config builds."""
from typing import Dict, Mapping, Optional, Tuple

import torch

from .mapping import name_list

Shape = Tuple[int, ...]


def model_state_shapes(cfg, component: Optional[str] = None
                       ) -> Dict[str, Shape]:
    """``{key: shape}`` of ``cfg.model``'s state dict.

    The model is built on torch's meta device: no memory for the weights
    and no initialisation, so a full-size model costs nothing.

    Args:
        cfg (mmengine.Config): a detector config.
        component (str, optional): build only ``cfg.model[component]``
            (e.g. ``'backbone'``), whose keys have no prefix.
    """
    import mnc_mm  # noqa: F401  registers our modules
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    with torch.device('meta'):
        model = MODELS.build(cfg.model[component] if component else
                             cfg.model)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def check_state_dict(state_dict: Mapping[str, torch.Tensor],
                     shapes: Mapping[str, Shape],
                     source: str = '<converted>',
                     partial: bool = False) -> None:
    """Raise unless ``state_dict`` loads strictly into a model whose state
    dict has ``shapes``: the same keys and every tensor's shape equal.

    Args:
        partial: ``state_dict`` may lack keys of the model (an init file
            for ``load_from``); unexpected keys and shapes still count.

    Raises:
        KeyError: missing or unexpected keys (listed).
        ValueError: shape mismatches (listed with both shapes).
    """
    missing = set() if partial else set(shapes) - set(state_dict)
    unexpected = set(state_dict) - set(shapes)
    if missing or unexpected:
        raise KeyError(
            f'{source}: the converted state dict does not match the model '
            f'of the config: {len(missing)} missing keys '
            f'[{name_list(missing)}], {len(unexpected)} unexpected keys '
            f'[{name_list(unexpected)}]')
    wrong = {k: (shapes[k], tuple(v.shape)) for k, v in state_dict.items()
             if tuple(v.shape) != shapes[k]}
    if wrong:
        details = ', '.join(f'{k}: model {m}, converted {c}'
                            for k, (m, c) in sorted(wrong.items())[:20])
        raise ValueError(f'{source}: {len(wrong)} converted tensors do not '
                         f'have the shape the model of the config expects '
                         f'(a file of another model or data set?): {details}')


def dataset_classes(cfg) -> Tuple[str, ...]:
    """The class names of ``cfg.test_dataloader.dataset``: its
    ``metainfo.classes``, else its dataset type's ``METAINFO``."""
    import mnc_mm  # noqa: F401  registers our data sets
    from mmdet.registry import DATASETS
    dataset = cfg.test_dataloader.dataset
    classes = (dataset.get('metainfo') or {}).get('classes')
    if classes is None:
        classes = DATASETS.get(dataset.type).METAINFO['classes']
    return tuple(classes)
