# Copyright (c) OpenMMLab. All rights reserved.
"""At test and inference time, a checkpoint must fit the config.

mmengine loads with ``strict=False``: a parameter whose shape differs
(a head for another number of classes) is skipped with a warning and keeps
its random initial value, so ``tools/test.py`` reports mAP 0 or fails later
in the metric, and a demo draws from a random head. That is right for
fine-tuning (``load_from`` in training), wrong when evaluating: there
:func:`check_checkpoint_fits` raises, naming both sides.
"""
from typing import Dict, List, Optional, Sequence

import torch


class CheckpointMismatchError(ValueError):
    """A checkpoint does not fit the model or classes of the config."""


def shape_mismatches(model_state: Dict[str, torch.Tensor],
                     checkpoint_state: Dict[str, torch.Tensor]) -> List[str]:
    """``'name: checkpoint (a, b) vs config (c, d)'`` for every parameter
    or buffer both hold with different shapes."""
    found = []
    for name, value in checkpoint_state.items():
        name = name[len('module.'):] if name.startswith('module.') else name
        if name in model_state and hasattr(value, 'shape') and \
                tuple(value.shape) != tuple(model_state[name].shape):
            found.append(f'{name}: checkpoint {tuple(value.shape)} vs '
                         f'config {tuple(model_state[name].shape)}')
    return found


def check_checkpoint_fits(model: torch.nn.Module,
                          checkpoint: dict,
                          classes: Optional[Sequence[str]] = None,
                          source: str = 'the checkpoint') -> None:
    """Raise :class:`CheckpointMismatchError` unless ``checkpoint`` fits.

    Args:
        model: The model built from the config (``module`` of a wrapper is
            used if present).
        checkpoint: A loaded checkpoint (``state_dict`` and ``meta``) or a
            bare state dict.
        classes: The class names the config evaluates on; compared with
            ``meta.dataset_meta.classes`` of the checkpoint if it has them.
        source: How to name the checkpoint in the message (its path).
    """
    model = getattr(model, 'module', model)
    state = checkpoint.get('state_dict', checkpoint)
    problems = shape_mismatches(model.state_dict(), state)
    if problems:
        raise CheckpointMismatchError(
            f'{source} does not fit the config (a head for another number '
            f'of classes?): ' + '; '.join(problems) + '. Set num_classes to '
            f'the checkpoint\'s, or fine-tune it with load_from in training.')
    saved = (checkpoint.get('meta') or {}).get('dataset_meta') or {}
    saved = {key.lower(): value for key, value in saved.items()}
    if classes is not None and 'classes' in saved and \
            tuple(saved['classes']) != tuple(classes):
        raise CheckpointMismatchError(
            f'{source} was trained on the classes {tuple(saved["classes"])} '
            f'but the config evaluates {tuple(classes)}: set the dataset '
            f'metainfo to the checkpoint\'s classes')


def dataset_classes(dataset_cfg) -> Optional[Sequence[str]]:
    """The class names a dataset config yields: its ``metainfo.classes``,
    else its class's ``METAINFO`` (through wrappers such as
    RepeatDataset's ``dataset``); None where neither says."""
    from mmdet.registry import DATASETS
    while dataset_cfg is not None:
        metainfo = dataset_cfg.get('metainfo') or {}
        if 'classes' in metainfo:
            return tuple(metainfo['classes'])
        dataset_type = dataset_cfg.get('type')
        cls = DATASETS.get(dataset_type) if isinstance(
            dataset_type, str) else dataset_type
        if cls is not None and 'classes' in getattr(cls, 'METAINFO', {}):
            return tuple(cls.METAINFO['classes'])
        dataset_cfg = dataset_cfg.get('dataset')
    return None
