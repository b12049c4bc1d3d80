# Copyright (c) OpenMMLab. All rights reserved.
"""Initialise sub-modules from differently named parts of a checkpoint.

MNC initialises its two fc pathways (``box_fcs`` = fc6/fc7 and
``mask_fcs`` = fc6_mask/fc7_mask) from the ImageNet VGG-16 fc6/fc7
(mnc_spec §2: the official ``VGG16.mask`` init holds them duplicated).
mmengine's ``Pretrained`` init can only strip a prefix; this one copies
checkpoint parts into module parts by a name map, e.g.::

    dict(type='PretrainedParts', checkpoint='open-mmlab://vgg16_caffe',
         parts={'box_fcs.0': 'classifier.0', 'box_fcs.2': 'classifier.3',
                'mask_fcs.0': 'classifier.0', 'mask_fcs.2': 'classifier.3'})
"""
from typing import Dict

import torch
from mmengine.logging import print_log
from mmengine.registry import WEIGHT_INITIALIZERS
from torch import nn


@WEIGHT_INITIALIZERS.register_module()
class PretrainedParts:
    """Copy ``<src>.*`` tensors of a checkpoint into ``<dst>.*`` of the
    module, for each ``dst: src`` of ``parts``.

    Every parameter and buffer of each destination must find a tensor of
    the same shape; otherwise nothing is copied and the error names the
    missing or mismatched keys and the checkpoint.

    Args:
        checkpoint (str): path or URL (loaded with mmengine's
            ``CheckpointLoader``).
        parts (dict[str, str]): module prefix -> checkpoint prefix.
        map_location (str): where to load the tensors ('cpu').
    """

    def __init__(self, checkpoint: str, parts: Dict[str, str],
                 map_location: str = 'cpu') -> None:
        if not parts:
            raise ValueError('PretrainedParts needs at least one part')
        self.checkpoint = checkpoint
        self.parts = dict(parts)
        self.map_location = map_location

    def __call__(self, module: nn.Module) -> None:
        from mmengine.runner.checkpoint import _load_checkpoint
        ckpt = _load_checkpoint(self.checkpoint, self.map_location)
        state = ckpt.get('state_dict', ckpt)
        state = {k[len('module.'):] if k.startswith('module.') else k: v
                 for k, v in state.items()}
        targets = module.state_dict()
        copies, problems = {}, []
        for dst, src in self.parts.items():
            names = [k[len(dst) + 1:] for k in targets
                     if k.startswith(dst + '.')]
            if not names:
                problems.append(f'the module has no part {dst!r}')
            for name in names:
                key = f'{src}.{name}'
                if key not in state:
                    problems.append(f'{key!r} (for {dst}.{name}) is missing')
                elif state[key].shape != targets[f'{dst}.{name}'].shape:
                    problems.append(
                        f'{key!r} has shape {tuple(state[key].shape)}, '
                        f'{dst}.{name} needs '
                        f'{tuple(targets[f"{dst}.{name}"].shape)}')
                else:
                    copies[f'{dst}.{name}'] = state[key]
        if problems:
            raise KeyError(f'PretrainedParts cannot initialise '
                           f'{type(module).__name__} from {self.checkpoint}: '
                           + '; '.join(problems))
        with torch.no_grad():
            for key, value in copies.items():
                targets[key].copy_(value)
        print_log(f'{type(module).__name__}: {", ".join(self.parts)} '
                  f'initialised from {", ".join(set(self.parts.values()))} '
                  f'of {self.checkpoint}', logger='current')

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(checkpoint={self.checkpoint!r}, '
                f'parts={self.parts!r})')
